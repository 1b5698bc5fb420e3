"""The IoU-aware classification loss against its formula in float64 (its IoU targets are detrkit's
paired_box_iou, tested in tests/structures)."""

import torch

from detrkit_projects.salience_detr.modeling import iou_aware_focal_loss


def test_iou_aware_loss_formula():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    onehot = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    quality = torch.tensor([[0.7, 0.0, 0.2]], dtype=torch.float64)
    loss = iou_aware_focal_loss(logits, onehot, quality)
    p = logits.detach().sigmoid()
    q = onehot * quality[..., None]
    bce = -(q * logits.sigmoid().log() + (1 - q) * (1 - logits.sigmoid()).log())
    expected = bce * (0.75 * p**2 * (1 - onehot) + q)
    assert torch.allclose(loss, expected)
    # the weight is detached: only the BCE carries gradient
    loss.sum().backward()
    grad = (logits.detach().sigmoid() - q) * (0.75 * p**2 * (1 - onehot) + q)
    assert torch.allclose(logits.grad, grad)
