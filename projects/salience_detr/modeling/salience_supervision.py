"""Salience supervision of the token scores (Salience DETR sec. 3.2): a soft target per token from its place
inside the ground-truth boxes (eq. 1-2), and the focal loss with soft targets ``loss_salience``."""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CODE_SCALE_RANGES", "SalienceTargetGenerator", "salience_focal_loss"]

#: Official code: per level (strides 8, 16, 32, 64), the range of max(l, t, r, b) of a box that may make the
#: level's targets nonzero.
CODE_SCALE_RANGES = ((-1.0, 64.0), (64.0, 128.0), (128.0, 256.0), (256.0, math.inf))


class SalienceTargetGenerator(nn.Module):
    """Soft salience target of every token of every level.

    Token ``(i, j)`` of a level with stride ``s = (S_y, S_x)`` (padded input size / feature size, per axis)
    sits at ``((j + 0.5) S_x, (i + 0.5) S_y)``. For a box that strictly contains it, with ``l, t, r, b`` the
    distances to the box sides, ``dx = (l - r) / (l + r)`` and ``dy = (t - b) / (t + b)`` (the offset from the
    centre relative to the half size, in [-1, 1]); its confidence is

    - official code: ``c = 1 - sqrt(dx^2 + dy^2) / 2`` (1 at the centre, 1/2 at an edge midpoint);
    - paper eq. 1-2: ``c = 1 - sqrt(2 (Dx / w)^2 + 2 (Dy / h)^2) = 1 - sqrt((dx^2 + dy^2) / 2)`` with
      ``Dx, Dy`` the distance to the centre (1 at the centre, 0 at a corner).

    The target is the highest confidence over the containing boxes, 0 outside every box. With level gating
    (official code), a level's target is 0 unless a containing box has ``lo < max(l, t, r, b) <= hi`` for the
    level's range ``(lo, hi)``; the paper's targets are scale independent (no gating).

    Args:
        scale_ranges: ``(lo, hi)`` per level, used with ``level_gating``. Default :data:`CODE_SCALE_RANGES`.
        level_gating: zero a level's target unless a containing box is in its scale range. Default True.
        confidence: ``"code"`` (default) or ``"paper"``, the formula above.
    """

    def __init__(
        self,
        scale_ranges: Sequence[tuple[float, float]] = CODE_SCALE_RANGES,
        level_gating: bool = True,
        confidence: str = "code",
    ):
        super().__init__()
        if confidence not in ("code", "paper"):
            raise ValueError(f"SalienceTargetGenerator: confidence={confidence!r} must be 'code' or 'paper'")
        self.scale_ranges = tuple((float(lo), float(hi)) for lo, hi in scale_ranges)
        self.level_gating = level_gating
        self.confidence = confidence

    def level_targets(
        self, boxes: torch.Tensor, height: int, width: int, stride: tuple[float, float], level: int
    ) -> torch.Tensor:
        """``(height * width,)`` targets of one level of one image; ``boxes`` ``(n, 4)`` xyxy input pixels,
        ``stride`` ``(S_y, S_x)``."""
        ys = torch.linspace(0.5, height - 0.5, height, dtype=torch.float32, device=boxes.device) * stride[0]
        xs = torch.linspace(0.5, width - 0.5, width, dtype=torch.float32, device=boxes.device) * stride[1]
        y, x = torch.meshgrid(ys, xs, indexing="ij")
        x, y = x.reshape(-1, 1), y.reshape(-1, 1)
        x0, y0, x1, y1 = boxes.float().unbind(-1)
        left, top, right, bottom = x - x0, y - y0, x1 - x, y1 - y  # (P, n)
        sides = torch.stack([left, top, right, bottom], -1)
        inside = sides.min(-1)[0] > 0
        offset = torch.sqrt(((left - right) / (left + right)) ** 2 + ((top - bottom) / (top + bottom)) ** 2)
        scale = 0.5 if self.confidence == "code" else math.sqrt(0.5)
        confidence = (1 - offset * scale).masked_fill(~inside, 0.0)
        targets = confidence.max(-1)[0] if boxes.shape[0] else x.new_zeros(x.shape[0])
        if self.level_gating:
            lo, hi = self.scale_ranges[level]
            largest = sides.max(-1)[0]
            gate = (inside & (largest > lo) & (largest <= hi)).any(-1)
            targets = targets.masked_fill(~gate, 0.0)
        return targets

    def forward(
        self, boxes: list[torch.Tensor], spatial_shapes: torch.Tensor, input_size: tuple[int, int]
    ) -> torch.Tensor:
        """Targets ``(bs, S)`` (levels flattened in order) of ``bs`` images.

        Args:
            boxes: per image ``(n, 4)`` ground-truth boxes ``(x0, y0, x1, y1)`` in input-image pixels.
            spatial_shapes: ``(L, 2)`` ``(H_l, W_l)`` of the (padded) feature maps.
            input_size: ``(H, W)`` of the padded input batch (the strides are ``H / H_l``, ``W / W_l``).
        """
        shapes = spatial_shapes.tolist()
        if self.level_gating and len(shapes) != len(self.scale_ranges):
            raise ValueError(
                f"{len(shapes)} feature levels but {len(self.scale_ranges)} scale ranges {self.scale_ranges}"
            )
        strides = [(input_size[0] / h, input_size[1] / w) for h, w in shapes]
        return torch.stack(
            [
                torch.cat(
                    [
                        self.level_targets(image_boxes, h, w, stride, level)
                        for level, ((h, w), stride) in enumerate(zip(shapes, strides, strict=True))
                    ]
                )
                for image_boxes in boxes
            ]
        )


def salience_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """``loss_salience``: focal loss with soft targets ``t`` (official code), summed over all tokens of the
    batch (padding included, as negatives) and divided by the number of tokens with ``t > 0`` (at least 1)::

        w = (1 - alpha) p^gamma (1 - t) + alpha t (1 - p)^gamma,     loss = sum(BCE(x, t) * w) / #(t > 0)

    Args:
        logits: ``(bs, S)`` salience logits ``x`` (``p = sigmoid(x)``); targets: ``(bs, S)`` in [0, 1].
    """
    prob = logits.sigmoid()
    weight = (1 - alpha) * prob**gamma * (1 - targets) + alpha * targets * (1 - prob) ** gamma
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * weight
    return loss.sum() / (targets > 0).sum().clamp(min=1)
