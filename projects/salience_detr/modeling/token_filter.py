"""Hierarchical salience filtering (Salience DETR sec. 3.3): which tokens each encoder layer updates, with a
budget per feature level and a shrinking share per encoder layer. A selection policy of detrkit's
:class:`~detrkit.modeling.transformer.SelectiveTokenEncoder`."""

from collections.abc import Sequence

import torch
from torch import nn

from detrkit.modeling.transformer import TokenSelection

__all__ = ["HierarchicalTokenSelector"]


class HierarchicalTokenSelector(nn.Module):
    """Per image, level ``l`` keeps ``int(valid_l * level_ratios[l])`` tokens (``valid_l`` its unpadded
    tokens); the batch takes the top ``max_i`` of that per level by salience logit (padding filled with the
    level's lowest logit), the levels' picks are merged and sorted by logit, and encoder layer ``k`` lists
    the first ``int(N * layer_ratios[k])`` of the ``N`` merged tokens. Image ``i`` updates at most
    ``sum_l int(valid_l * level_ratios[l])`` of them (official code, float32 products).

    Args:
        level_ratios: kept fraction per feature level (finest first). Default ``(0.4, 0.8, 1.0, 1.0)``.
        layer_ratios: fraction of the kept tokens each encoder layer updates. Default
            ``(1.0, 0.8, 0.6, 0.6, 0.4, 0.2)``.
    """

    def __init__(
        self,
        level_ratios: Sequence[float] = (0.4, 0.8, 1.0, 1.0),
        layer_ratios: Sequence[float] = (1.0, 0.8, 0.6, 0.6, 0.4, 0.2),
    ):
        super().__init__()
        for name, ratios in (("level_ratios", level_ratios), ("layer_ratios", layer_ratios)):
            if not ratios or any(not 0.0 < r <= 1.0 for r in ratios):
                raise ValueError(f"HierarchicalTokenSelector: {name}={tuple(ratios)} must all be in (0, 1]")
        self.level_ratios = tuple(level_ratios)
        self.layer_ratios = tuple(layer_ratios)

    def forward(
        self,
        scores: torch.Tensor,
        padding_mask: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
    ) -> TokenSelection:
        """Selection from ``(bs, S)`` salience logits and the ``(bs, S)`` padding mask (True at padding) of
        ``L`` levels (``spatial_shapes`` ``(L, 2)``, ``level_start_index`` ``(L,)``)."""
        num_levels = spatial_shapes.shape[0]
        if num_levels != len(self.level_ratios):
            raise ValueError(
                f"HierarchicalTokenSelector has {len(self.level_ratios)} level ratios {self.level_ratios} "
                f"for {num_levels} feature levels"
            )
        bounds = level_start_index.tolist() + [scores.shape[1]]
        levels = [slice(bounds[i], bounds[i + 1]) for i in range(num_levels)]
        valid = torch.stack([(~padding_mask[:, level]).sum(1) for level in levels], -1)  # (bs, L)
        kept = (valid * torch.tensor(self.level_ratios, dtype=torch.float32, device=scores.device)).int()
        per_level = kept.max(0)[0].tolist()
        picked_scores, picked_indices = [], []
        for level, k in zip(levels, per_level, strict=True):
            level_scores = scores[:, level]
            level_scores = level_scores.masked_fill(padding_mask[:, level], level_scores.min())
            top_scores, top_indices = level_scores.topk(k, dim=1)
            picked_scores.append(top_scores)
            picked_indices.append(top_indices + level.start)
        order = torch.sort(torch.cat(picked_scores, 1), dim=1, descending=True)[1]
        merged = torch.cat(picked_indices, 1).gather(1, order)
        counts = (merged.shape[1] * torch.tensor(self.layer_ratios, dtype=torch.float32)).long().tolist()
        return TokenSelection(
            layer_indices=[merged[:, :k] for k in counts],
            num_updated=kept.sum(-1).long(),
            scores=scores.masked_fill(padding_mask, scores.min()),
        )
