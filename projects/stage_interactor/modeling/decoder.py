"""The StageInteractor decoder: a cascade of :class:`StageInteractorStage` s sharing a filter bank."""

from collections.abc import Sequence

import torch
from torch import nn

from .dynamic_mixing import STATIC_MIXING_TYPES, CascadeDynamicMixing
from .stage_head import StageInteractorStage, refine_xyzr

__all__ = ["StageInteractorDecoder"]


class StageInteractorDecoder(nn.Module):
    """``num_stages`` stages; each refines the boxes of the one before (boxes detached between stages).

    Filter reuse (official schedule): the filter bank holds the filters of stages ``reuse_start - 1`` to
    ``i - 1``; stage ``i >= reuse_start`` reuses the last ``min(max_reused_filters, i - reuse_start + 1)``
    channel filters of the bank and the spatial filter of stage ``i - 1`` (half of its output points).

    Args:
        num_stages: 6 in the paper.
        embed_dim, num_heads, feedforward_dim, num_classes: of every stage.
        num_groups: ``G`` of the sampler and the mixing.
        first_stage_points: ``P`` of stage 0 (8); num_points: ``P`` of the others (4).
        num_subpoints: ``K`` (8).
        out_points: ``P_out`` of the spatial mixing (128).
        filter_reuse: reuse filters across stages (False: AdaMixer's independent mixing in every stage).
        reuse_start: the first stage that reuses (2).
        max_reused_filters: cap on the channel filters a stage reuses (None: all in the bank).
        adapters: eq. 3's adapters on reused filters (False: plain reuse).
        static_mixing: the static mixing between dynamic mixings (see
            :class:`~.dynamic_mixing.StaticMixing`).
    """

    def __init__(
        self,
        num_stages: int = 6,
        embed_dim: int = 256,
        num_heads: int = 8,
        feedforward_dim: int = 2048,
        num_classes: int = 80,
        num_groups: int = 4,
        first_stage_points: int = 8,
        num_points: int = 4,
        num_subpoints: int = 8,
        out_points: int = 128,
        filter_reuse: bool = True,
        reuse_start: int = 2,
        max_reused_filters: int | None = None,
        adapters: bool = True,
        static_mixing: str = "channel_spatial",
    ):
        super().__init__()
        if static_mixing not in STATIC_MIXING_TYPES:
            raise ValueError(f"static_mixing must be one of {STATIC_MIXING_TYPES}, got {static_mixing!r}")
        if reuse_start < 1:
            raise ValueError(f"reuse_start must be >= 1 (stage 0 has nothing to reuse), got {reuse_start}")
        if max_reused_filters is not None and max_reused_filters < 0:
            raise ValueError(f"max_reused_filters must be >= 0 or None, got {max_reused_filters}")
        self.num_stages = num_stages
        self.num_layers = num_stages
        self.filter_reuse = filter_reuse
        self.reuse_start = reuse_start
        stages = []
        for i in range(num_stages):
            points = first_stage_points if i == 0 else num_points
            reuses = filter_reuse and i >= reuse_start
            num_reused = i - reuse_start + 1 if reuses else 0
            if max_reused_filters is not None:
                num_reused = min(num_reused, max_reused_filters)
            mixing = CascadeDynamicMixing(
                embed_dim,
                num_groups,
                points,
                num_subpoints,
                out_points,
                num_reused_filters=num_reused,
                reuse_spatial=reuses,
                adapters=adapters,
                static_mixing=static_mixing,
            )
            stages.append(
                StageInteractorStage(
                    embed_dim,
                    num_heads,
                    feedforward_dim,
                    num_classes,
                    num_groups,
                    points,
                    num_subpoints,
                    mixing,
                )
            )
        self.stages = nn.ModuleList(stages)

    def forward(
        self,
        features: Sequence[torch.Tensor],
        strides: Sequence[int],
        query: torch.Tensor,
        xyzr: torch.Tensor,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Runs the stages.

        Args:
            features: ``L`` maps ``(B, C, H_l, W_l)``; strides: their strides in pixels.
            query: ``(B, N, C)`` initial content; xyzr: ``(B, N, 4)`` initial boxes (pixels).

        Returns:
            Per stage, class logits ``(B, N, num_classes)`` and refined boxes ``(B, N, 4)`` xyzr
            (differentiable through the stage's deltas only).
        """
        logits, boxes, bank = [], [], []
        xyzr = xyzr.detach()
        for i, stage in enumerate(self.stages):
            stage_logits, delta, query, filters = stage(features, strides, query, xyzr, bank)
            refined = refine_xyzr(xyzr, delta)
            logits.append(stage_logits)
            boxes.append(refined)
            xyzr = refined.detach()
            if self.filter_reuse and i >= self.reuse_start - 1:
                bank.append(filters)
        return logits, boxes
