"""Query ranking (Rank-DETR sec. 3.1): the permutation that sorts the queries of each group by their class
score, and the query rank layer that fuses the sorted queries with rank-aware content embeddings."""

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["QueryRankLayer", "gather_queries", "rank_order", "ranked_groups"]


def ranked_groups(num_queries: int, query_groups: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    """Which of ``num_queries`` queries are ranked, and in which groups.

    ``query_groups`` are the sizes of the ranked groups in query order (H-DETR ``(300, 1500)``: one-to-one,
    one-to-many; DINO ``(900,)``). With at least ``sum(query_groups)`` queries, all groups are ranked and the
    ``num_queries - sum(query_groups)`` queries before them (DINO's denoising queries, which the detector
    prepends) are not; with fewer, the queries must be exactly the first groups (H-DETR at inference runs
    only the one-to-one group).

    Returns:
        ``(num_unranked, groups)``: the number of leading unranked queries and the ranked group sizes.
    """
    total = sum(query_groups)
    if num_queries >= total:
        return int(num_queries - total), tuple(query_groups)
    prefix = [sum(query_groups[: i + 1]) for i in range(len(query_groups))]
    if num_queries not in prefix:
        raise ValueError(
            f"{num_queries} queries are neither all query groups {tuple(query_groups)} (plus leading "
            "denoising queries) nor their first groups"
        )
    return 0, tuple(query_groups[: prefix.index(num_queries) + 1])


def rank_order(scores: torch.Tensor, query_groups: Sequence[int], num_unranked: int = 0) -> torch.Tensor:
    """``(bs, nq)`` permutation that sorts each group of queries by descending score (stable: ties keep their
    order), leaving the first ``num_unranked`` queries in place; no query leaves its group.

    Args:
        scores: ``(bs, nq)`` ranking scores, ``nq = num_unranked + sum(query_groups)``.
        query_groups: sizes of the consecutive groups after the unranked queries.
        num_unranked: leading queries that keep their position (denoising queries).
    """
    bs, nq = scores.shape
    if num_unranked + sum(query_groups) != nq:
        raise ValueError(
            f"rank_order: {nq} scores for {num_unranked} unranked queries and groups {tuple(query_groups)}"
        )
    order = [torch.arange(int(num_unranked), device=scores.device).expand(bs, -1)]
    start = int(num_unranked)
    for size in query_groups:
        group = scores[:, start : start + size]
        order.append(group.sort(dim=1, descending=True, stable=True).indices + start)
        start += size
    return torch.cat(order, dim=1).detach()


def gather_queries(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``x[b, order[b, i]]`` for ``x`` ``(bs, nq, D)`` and ``order`` ``(bs, nq)``: queries, boxes or
    positional embeddings moved to their ranked positions."""
    return torch.gather(x, 1, order[..., None].expand(-1, -1, x.shape[-1]))


class QueryRankLayer(nn.Module):
    """The rank-aware content of sorted queries (paper eq. 3):

        q'_i = fuse([q_i, content_proj(C[i])]),   fuse: Linear(2C -> C), content_proj: Linear(C -> C)

    with ``C`` a learnable ``(num_queries, C)`` embedding of the rank positions (row ``i`` for the ``i``-th
    ranked query; the groups use consecutive rows, H-DETR's one-to-many group rows 300..1799). Leading
    unranked (denoising) queries take the fusion with a zero rank embedding.

    Args:
        num_queries: rank positions (all ranked queries of the largest run, 1800 for H-DETR).
        embed_dim: query width ``C``.
    """

    def __init__(self, num_queries: int, embed_dim: int):
        super().__init__()
        self.rank_content = nn.Embedding(num_queries, embed_dim)
        nn.init.zeros_(self.rank_content.weight)
        self.content_proj = nn.Linear(embed_dim, embed_dim)
        self.fuse = nn.Linear(2 * embed_dim, embed_dim)

    def forward(self, queries: torch.Tensor, num_unranked: int = 0) -> torch.Tensor:
        """``(bs, nq, C)`` ranked queries (the first ``num_unranked`` unranked) -> ``(bs, nq, C)``."""
        bs, nq, _ = queries.shape
        num_ranked = nq - num_unranked
        if num_ranked > self.rank_content.num_embeddings:
            raise ValueError(
                f"QueryRankLayer: {num_ranked} ranked queries, only {self.rank_content.num_embeddings} "
                "rank positions"
            )
        content = self.rank_content.weight[:num_ranked]
        content = torch.cat([content.new_zeros(num_unranked, content.shape[1]), content])
        content = self.content_proj(content)[None].expand(bs, -1, -1)
        return self.fuse(torch.cat([queries, content], dim=-1))
