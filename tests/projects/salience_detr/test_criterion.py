"""The IoU-aware classification loss against its formula in float64 (its IoU targets are detrkit's
paired_box_iou, tested in tests/structures)."""

import torch

from detrkit_projects.salience_detr.modeling import (
    IoUAwareClassLoss,
    SalienceLoss,
    SalienceTargetGenerator,
    iou_aware_focal_loss,
    salience_focal_loss,
)


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


def test_iou_aware_class_loss_takes_the_matched_iou_as_quality():
    """Query 0 (cxcywh .5, .5, .2, .4) matched to the target (.5, .5, .4, .4): IoU 0.5 by hand; query 1 is
    unmatched. With eps 1e-3 the union is 0.16 + 1e-3."""
    logits = torch.tensor([[[0.5, -1.0], [2.0, 0.0]]], dtype=torch.float64)
    outputs = {
        "pred_logits": logits,
        "pred_boxes": torch.tensor([[[0.5, 0.5, 0.2, 0.4], [0.1, 0.1, 0.05, 0.05]]], dtype=torch.float64),
    }
    targets = [{"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])}]
    indices = [(torch.tensor([0]), torch.tensor([0]))]
    onehot = torch.tensor([[[0.0, 1.0], [0.0, 0.0]]], dtype=torch.float64)
    for eps, iou in ((0.0, 0.5), (1e-3, 0.08 / (0.16 + 1e-3))):
        loss = IoUAwareClassLoss()(outputs, targets, indices, num_boxes=2.0, iou_eps=eps)
        expected = (
            iou_aware_focal_loss(logits, onehot, torch.tensor([[iou, 0.0]], dtype=torch.float64)).sum() / 2
        )
        torch.testing.assert_close(loss, expected)


def test_salience_loss_is_an_extra_loss_of_dino_criterion():
    """``DINOCriterion(extra_losses=[SalienceLoss()])`` adds ``loss_salience``: the salience focal loss of the
    logits against the generator's targets."""
    generator = SalienceTargetGenerator()
    spatial_shapes = torch.tensor([[8, 8], [4, 4], [2, 2], [1, 1]])
    logits = torch.randn(1, 85, generator=torch.Generator().manual_seed(0))
    targets = [
        {
            "labels": torch.tensor([0]),
            "boxes": torch.tensor([[0.5, 0.5, 0.5, 0.5]]),
            "boxes_xyxy": torch.tensor([[8.0, 8.0, 24.0, 24.0]]),
            "input_size": (32, 32),
        }
    ]
    losses = SalienceLoss(generator)({"salience_logits": logits, "spatial_shapes": spatial_shapes}, targets)
    expected = salience_focal_loss(logits, generator([targets[0]["boxes_xyxy"]], spatial_shapes, (32, 32)))
    torch.testing.assert_close(losses["loss_salience"], expected)
