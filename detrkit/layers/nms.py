"""Batched (grouped) greedy box NMS.

:func:`batched_nms` runs the compiled kernel (``torch.ops.detrkit.batched_nms``); :func:`batched_nms_pytorch`
is the pure-PyTorch reference it falls back to, with one warning, where no kernel is compiled.

Both keep the same boxes as ``torchvision.ops.batched_nms`` (same IoU arithmetic, same greedy order: score
descending, equal scores by ascending index, as torchvision's NMS kernels sort) and return them sorted by
score with equal scores by ascending index. torchvision returns that order too, except on its per-group path
for large inputs, whose final unstable sort may permute kept boxes of exactly equal score.
"""

import torch

from detrkit._extension import has_kernel, warn_reference_fallback

__all__ = ["batched_nms", "batched_nms_pytorch"]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Greedy NMS inside each group; boxes of different groups never suppress each other.

    Args:
        boxes: ``(N, 4)`` float32/float64 ``(x1, y1, x2, y2)``.
        scores: ``(N,)``, same dtype as ``boxes``.
        groups: ``(N,)`` integer group id of each box (e.g. image * levels + level, or class).
        iou_threshold: a box is suppressed by a higher-scored kept box of its group when IoU > threshold.

    Returns:
        ``(K,)`` int64 indices of the kept boxes, sorted by score, descending; equal scores by index.
    """
    device_type = boxes.device.type
    if not has_kernel("batched_nms", device_type):
        warn_reference_fallback("batched_nms", device_type)
        return batched_nms_pytorch(boxes, scores, groups, iou_threshold)
    return torch.ops.detrkit.batched_nms(boxes, scores, groups, float(iou_threshold))


def _pairwise_iou(boxes: torch.Tensor) -> torch.Tensor:
    """``(n, n)`` IoU, each entry computed with the same float operations as torchvision's NMS kernels."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area[:, None] + area[None, :] - inter)


def batched_nms_pytorch(
    boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Reference of :func:`batched_nms` in plain PyTorch (an ``(n, n)`` IoU matrix per group)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    keep = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    for group in torch.unique(groups):
        members = torch.where(groups == group)[0]
        order = scores[members].sort(descending=True, stable=True)[1]
        # The kernels compare the IoU with the threshold in float64 (0.3 as a float32 is above 0.3).
        suppresses = _pairwise_iou(boxes[members][order]).double() > iou_threshold
        alive = torch.ones(len(members), dtype=torch.bool, device=boxes.device)
        for i in range(len(members)):
            if alive[i]:
                alive[i + 1 :] &= ~suppresses[i, i + 1 :]
        keep[members[order[alive]]] = True
    kept = torch.where(keep)[0]
    return kept[scores[kept].sort(descending=True, stable=True)[1]]
