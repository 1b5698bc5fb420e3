"""Foreground supervision of the token scores (Focus-DETR sec. 3.2): binary labels from the ground-truth
boxes by scale range, and the focal loss ``loss_select`` on the foreground logits of all tokens."""

import math
from collections.abc import Sequence

import torch
from torch import nn

from detrkit.modeling.losses import sigmoid_focal_loss

__all__ = [
    "CODE_SCALE_RANGES",
    "PAPER_SCALE_RANGES",
    "ForegroundLabelAssigner",
    "foreground_token_loss",
]

#: Official code: ranges of max(l, t, r, b) per level (strides 8, 16, 32, 64), adjacent, no overlap.
CODE_SCALE_RANGES = ((-1.0, 64.0), (64.0, 128.0), (128.0, 256.0), (256.0, math.inf))
#: Paper (sec. 3.2): adjacent ranges overlap by 50%.
PAPER_SCALE_RANGES = ((-1.0, 128.0), (64.0, 256.0), (128.0, 512.0), (256.0, math.inf))


class ForegroundLabelAssigner(nn.Module):
    """Binary foreground label of every token (Focus-DETR sec. 3.2, FCOS-style).

    Token ``(i, j)`` of level ``l`` sits at pixel ``(j * s_l + s_l // 2, i * s_l + s_l // 2)``; it is positive
    iff it lies strictly inside some ground-truth box whose largest side distance
    ``m = max(l, t, r, b)`` falls in the level's range, ``lo_l < m <= hi_l``.

    Args:
        strides: pixel stride of every level. Default ``(8, 16, 32, 64)``.
        scale_ranges: ``(lo, hi)`` per level; :data:`CODE_SCALE_RANGES` (default, official code) or
            :data:`PAPER_SCALE_RANGES`.
    """

    def __init__(
        self,
        strides: Sequence[int] = (8, 16, 32, 64),
        scale_ranges: Sequence[tuple[float, float]] = CODE_SCALE_RANGES,
    ):
        super().__init__()
        if len(strides) != len(scale_ranges):
            raise ValueError(f"{len(strides)} strides {tuple(strides)} but {len(scale_ranges)} scale ranges")
        self.strides = tuple(strides)
        self.scale_ranges = tuple((float(lo), float(hi)) for lo, hi in scale_ranges)

    def forward(self, boxes: list[torch.Tensor], spatial_shapes: torch.Tensor) -> torch.Tensor:
        """Labels ``(bs, S)`` (float 0/1, levels flattened in order) of ``bs`` images.

        Args:
            boxes: per image ``(n, 4)`` ground-truth boxes ``(x0, y0, x1, y1)`` in input-image pixels.
            spatial_shapes: ``(L, 2)`` ``(H_l, W_l)`` of the (padded) feature maps.
        """
        if spatial_shapes.shape[0] != len(self.strides):
            raise ValueError(
                f"{spatial_shapes.shape[0]} feature levels but {len(self.strides)} strides {self.strides}"
            )
        labels = []
        for image_boxes in boxes:
            levels = []
            for (height, width), stride, (lo, hi) in zip(
                spatial_shapes.tolist(), self.strides, self.scale_ranges, strict=True
            ):
                ys = (
                    torch.arange(height, dtype=torch.float32, device=image_boxes.device) * stride
                    + stride // 2
                )
                xs = (
                    torch.arange(width, dtype=torch.float32, device=image_boxes.device) * stride + stride // 2
                )
                y, x = torch.meshgrid(ys, xs, indexing="ij")
                x, y = x.reshape(-1, 1), y.reshape(-1, 1)
                x0, y0, x1, y1 = image_boxes.float().unbind(-1)
                sides = torch.stack([x - x0, y - y0, x1 - x, y1 - y], -1)  # (H_l * W_l, n, 4)
                inside = sides.min(-1)[0] > 0
                largest = sides.max(-1)[0]
                in_range = (largest > lo) & (largest <= hi)
                levels.append((inside & in_range).any(-1))
            labels.append(torch.cat(levels))
        return torch.stack(labels).float()


def foreground_token_loss(
    logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """``loss_select``: sigmoid focal loss summed over all tokens of an image, divided by the image's
    positive count (at least 1), averaged over the batch (official code).

    Args:
        logits: ``(bs, S)`` foreground logits; labels: ``(bs, S)`` 0/1.
    """
    per_token = sigmoid_focal_loss(logits, labels, alpha=alpha, gamma=gamma, reduction="none")
    return (per_token.sum(1) / labels.sum(1).clamp(min=1)).mean()
