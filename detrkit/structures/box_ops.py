"""Box conversions and IoUs on raw ``(..., 4)`` tensors, with detrex's function names.

The IoU functions take ``eps``, added to the union (and, for the GIoU, to the enclosing area) before
dividing. ``eps=0`` is torchvision's arithmetic (used by Salience DETR's official code); detrex's
``box_ops`` (DINO, H-Deformable-DETR, Focus-DETR and the Rank-DETR fork) divide by ``union + 1e-6`` and
``hull + 1e-6``, which detrkit's criteria and matchers pass as their ``iou_eps``."""

import torch

__all__ = ["box_cxcywh_to_xyxy", "box_xyxy_to_cxcywh", "box_iou", "generalized_box_iou", "paired_box_iou"]


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` ``(cx, cy, w, h)`` -> ``(x1, y1, x2, y2)``."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` ``(x1, y1, x2, y2)`` -> ``(cx, cy, w, h)``."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def box_iou(
    boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU ``inter / (union + eps)`` and union (without ``eps``), both ``(N, M)``, of ``(N, 4)`` and
    ``(M, 4)`` xyxy boxes."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area1[:, None] + area2[None, :] - inter
    return inter / (union + eps), union


def paired_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """``(...)`` IoU ``inter / (union + eps)`` of each xyxy box of ``boxes1`` ``(..., 4)`` with the box at the
    same position of ``boxes2`` (not all pairs); 0 where the union is empty."""
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])
    inter_wh = (
        torch.min(boxes1[..., 2:], boxes2[..., 2:]) - torch.max(boxes1[..., :2], boxes2[..., :2])
    ).clamp(min=0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = area1 + area2 - inter
    return torch.where(union > 0, inter / (union + eps).clamp(min=torch.finfo(union.dtype).tiny), 0.0)


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """``(N, M)`` generalised IoU (Rezatofighi et al. 2019) of xyxy boxes:
    ``inter / (union + eps) - (hull - union) / (hull + eps)``."""
    if not (boxes1[:, 2:] >= boxes1[:, :2]).all() or not (boxes2[:, 2:] >= boxes2[:, :2]).all():
        raise ValueError("generalized_box_iou needs boxes with x2 >= x1 and y2 >= y1")
    iou, union = box_iou(boxes1, boxes2, eps)
    lt = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])
    hull = (rb - lt).clamp(min=0).prod(-1)
    return iou - (hull - union) / (hull + eps)
