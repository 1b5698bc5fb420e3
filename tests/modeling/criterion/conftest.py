"""Shared references for the criterion tests: losses from matched indices, with torchvision's focal loss and
box conversion and a hand-written GIoU."""

import pytest
import torch
from torchvision.ops import box_convert, sigmoid_focal_loss


def _giou_by_hand(a: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    """GIoU of paired xyxy boxes as detrex's ``box_ops`` writes it: inter / (union + eps) - (hull - union) /
    (hull + eps), eps 0 being torchvision's arithmetic."""
    inter = (torch.min(a[:, 2:], b[:, 2:]) - torch.max(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    union = (a[:, 2:] - a[:, :2]).prod(-1) + (b[:, 2:] - b[:, :2]).prod(-1) - inter
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).prod(-1)
    return inter / (union + eps) - (hull - union) / (hull + eps)


def _reference_losses(
    layer, targets, indices, num_boxes, num_classes, alpha=0.25, gamma=2.0, iou_eps=1e-6
) -> dict:
    """loss_class / loss_bbox / loss_giou of one layer for given (query, target) indices per image."""
    logits, boxes = layer["pred_logits"], layer["pred_boxes"]
    onehot = torch.zeros_like(logits)
    src, tgt = [], []
    for b, ((q, j), t) in enumerate(zip(indices, targets, strict=True)):
        onehot[b, q, t["labels"][j]] = 1.0
        src.append(boxes[b, q])
        tgt.append(t["boxes"][j])
    src, tgt = torch.cat(src), torch.cat(tgt)
    giou = 1 - _giou_by_hand(box_convert(src, "cxcywh", "xyxy"), box_convert(tgt, "cxcywh", "xyxy"), iou_eps)
    return {
        "loss_class": sigmoid_focal_loss(logits, onehot, alpha, gamma, reduction="sum") / num_boxes,
        "loss_bbox": (src - tgt).abs().sum() / num_boxes,
        "loss_giou": giou.sum() / num_boxes,
    }


def _random_layer(bs, num_queries, num_classes, generator, requires_grad=True) -> dict:
    """Random logits ``(bs, nq, C)`` and valid cxcywh boxes ``(bs, nq, 4)``, leaf tensors."""
    xy = torch.rand(bs, num_queries, 2, generator=generator) * 0.6 + 0.2
    wh = torch.rand(bs, num_queries, 2, generator=generator) * 0.3 + 0.05
    return {
        "pred_logits": (torch.randn(bs, num_queries, num_classes, generator=generator) * 2).requires_grad_(
            requires_grad
        ),
        "pred_boxes": torch.cat([xy, wh], -1).requires_grad_(requires_grad),
    }


def _random_targets(sizes, num_classes, generator) -> list[dict]:
    targets = []
    for n in sizes:
        xy = torch.rand(n, 2, generator=generator) * 0.6 + 0.2
        wh = torch.rand(n, 2, generator=generator) * 0.3 + 0.05
        labels = torch.randint(num_classes, (n,), generator=generator)
        targets.append({"labels": labels, "boxes": torch.cat([xy, wh], -1)})
    return targets


@pytest.fixture
def giou_by_hand():
    return _giou_by_hand


@pytest.fixture
def reference_losses():
    return _reference_losses


@pytest.fixture
def random_layer():
    return _random_layer


@pytest.fixture
def random_targets():
    return _random_targets
