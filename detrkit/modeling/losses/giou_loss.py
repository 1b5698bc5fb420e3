"""Generalised IoU loss (Rezatofighi et al. 2019) on paired boxes, with detrex's signature."""

import torch

from detrkit.modeling.losses.reduction import weight_reduce_loss

__all__ = ["giou_loss", "paired_generalized_box_iou"]


def paired_generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """GIoU of each box with the box at the same position (not all pairs).

    Args:
        boxes1, boxes2: ``(..., 4)`` xyxy boxes of the same shape, with x2 >= x1 and y2 >= y1.
        eps: added to the union and to the enclosing area before dividing.

    Returns:
        ``(...)`` tensor: ``IoU - (hull - union) / hull`` per pair.
    """
    if (boxes1[..., 2:] < boxes1[..., :2]).any() or (boxes2[..., 2:] < boxes2[..., :2]).any():
        raise ValueError("GIoU needs xyxy boxes with x2 >= x1 and y2 >= y1")
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])
    inter_wh = (
        torch.min(boxes1[..., 2:], boxes2[..., 2:]) - torch.max(boxes1[..., :2], boxes2[..., :2])
    ).clamp(min=0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = area1 + area2 - inter
    hull_wh = torch.max(boxes1[..., 2:], boxes2[..., 2:]) - torch.min(boxes1[..., :2], boxes2[..., :2])
    hull = hull_wh[..., 0] * hull_wh[..., 1]
    return inter / (union + eps) - (hull - union) / (hull + eps)


def giou_loss(
    preds: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    eps: float = 1e-6,
    reduction: str = "mean",
    avg_factor: float | None = None,
) -> torch.Tensor:
    """``1 - GIoU(preds[i], targets[i])`` per box, then weighted and reduced.

    Args:
        preds, targets: ``(N, 4)`` xyxy boxes (any common scale), x2 >= x1 and y2 >= y1.
        weight: optional ``(N,)`` weight.
        eps: see :func:`paired_generalized_box_iou`.
        reduction, avg_factor: see :func:`detrkit.modeling.losses.weight_reduce_loss`.

    With no targets the result is ``preds.sum() * 0``: zero, still in the graph.
    """
    if targets.numel() == 0:
        return preds.sum() * 0
    if preds.shape != targets.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and targets {tuple(targets.shape)} differ in shape")
    loss = 1 - paired_generalized_box_iou(preds, targets, eps)
    return weight_reduce_loss(loss, weight, reduction, avg_factor)
