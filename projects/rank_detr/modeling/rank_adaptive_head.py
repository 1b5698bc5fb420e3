"""The rank-adaptive classification head (Rank-DETR sec. 3.1, eq. 2)."""

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["RankAdaptiveClassHead"]


class RankAdaptiveClassHead(nn.ModuleList):
    """Per decoder layer ``l`` a learnable ``(num_queries, num_classes)`` logit bias ``S_l`` of the rank
    positions, zero at initialisation, added to the class logits of the queries in rank order:

        logits_l[i] = class_embed_l(q_l[i]) + S_l[i]

    ``S_l`` is ``self[l].weight`` (an ``nn.Embedding``; the official parameter names). Leading queries beyond
    the table (DINO's denoising queries, prepended) get no bias; with fewer queries than rows (H-DETR at
    inference, one-to-one queries only) the first rows are used.

    A detector takes it in its ``class_bias`` slot (:class:`~detrkit.modeling.meta_arch.TwoStageDETR`), which
    applies it to the ``(num_layers, bs, nq, num_classes)`` logits in each layer's ranked order; the
    decoder's ``between_layers`` hook ranks the queries (:class:`QueryRanking`).

    Args:
        num_layers: decoder layers.
        num_queries: rank positions (H-DETR 1800: one-to-one then one-to-many; DINO 900), or the sizes of
            the ranked query groups, which take consecutive rows (H-DETR ``(300, 1500)``).
        num_classes: classes.
    """

    def __init__(self, num_layers: int, num_queries: int | Sequence[int], num_classes: int):
        rows = num_queries if isinstance(num_queries, int) else sum(num_queries)
        super().__init__(nn.Embedding(rows, num_classes) for _ in range(num_layers))
        for embedding in self:
            nn.init.zeros_(embedding.weight)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """``(num_layers, bs, nq, num_classes)`` logits -> the same with the rank biases added."""
        if logits.shape[0] != len(self):
            raise ValueError(
                f"RankAdaptiveClassHead: {logits.shape[0]} layers of logits for {len(self)} biases"
            )
        num_ranked = min(logits.shape[2], self[0].num_embeddings)
        bias = torch.stack([embedding.weight[:num_ranked] for embedding in self])
        return torch.cat(
            [logits[:, :, : logits.shape[2] - num_ranked], logits[:, :, -num_ranked:] + bias[:, None]], dim=2
        )
