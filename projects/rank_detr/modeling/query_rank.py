"""Query ranking (Rank-DETR sec. 3.1): the permutation that sorts the queries of each group by their class
score, the query rank layer that fuses the sorted queries with rank-aware content embeddings, and
:class:`QueryRanking`, the decoder's ``between_layers`` hook that applies both after every layer."""

from collections.abc import Sequence

import torch
from torch import nn

from detrkit.modeling.transformer import NextLayerInputs

__all__ = ["QueryRankLayer", "QueryRanking", "gather_queries", "rank_order", "ranked_groups"]


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


class QueryRanking(nn.Module):
    """Rank-DETR's query ranking as a deformable decoder's ``between_layers`` hook
    (:class:`~detrkit.modeling.transformer.DeformableTransformerDecoder`).

    Between layers ``l`` and ``l + 1`` the ranking score of a query is ``max_c sigmoid(class_embed_l(h_l))``
    (the decoder's plain class head, without the rank-adaptive bias); each group of :func:`ranked_groups` is
    sorted by it (stable, descending), and the content queries, the refined reference boxes (detached and,
    for the losses, undetached) and the given positional queries follow. With ``query_rank_layer`` the sorted
    content goes through layer ``l``'s :class:`QueryRankLayer` (eq. 3). The outputs of layer ``l`` are in the
    order the layer saw; its references in the order of layer ``l + 1`` (the detector adds box deltas of
    layer ``l + 1`` to them), also after the last layer, as the official code does. In H-DETR's decoder the
    positional queries move with their query (official code); DINO's decoder recomputes them from the sorted
    boxes (eq. 4). The self-attention mask must be invariant to permutations inside each group (DINO's
    denoising mask and H-DETR's hybrid mask are).

    The permutations compose into the decoder's ``query_ids``, with which the detector returns every layer's
    predictions in one query order; :meth:`query_order` gives them again from the layer outputs where a
    (detrex) transformer does not pass them on.

    Args:
        query_groups: sizes of the ranked groups in query order (H-DETR ``(300, 1500)``: one-to-one, then
            one-to-many; DINO ``(900,)``); groups of size 0 are left out (H-DETR without one-to-many
            queries). Queries in front of them (denoising) are not ranked.
        num_layers: the decoder's layers (``num_layers - 1`` rank layers).
        embed_dim: the decoder's width ``C``.
        query_rank_layer: fuse the sorted queries with the rank-aware content embeddings; False only sorts
            (for the rank-adaptive head). Default True.
    """

    def __init__(
        self, query_groups: Sequence[int], num_layers: int, embed_dim: int, query_rank_layer: bool = True
    ):
        super().__init__()
        groups = tuple(int(size) for size in query_groups if size != 0)
        if not groups or min(groups) < 0:
            raise ValueError(
                f"QueryRanking: query_groups must be group sizes >= 0, not all 0; got {query_groups}"
            )
        self.query_groups = groups
        self.rank_layers = (
            nn.ModuleList(QueryRankLayer(sum(groups), embed_dim) for _ in range(num_layers - 1))
            if query_rank_layer
            else None
        )

    def forward(
        self,
        layer_idx: int,
        num_layers: int,
        class_embed: Sequence[nn.Module] | None,
        output: torch.Tensor,
        layer_output: torch.Tensor,
        query_pos: torch.Tensor | None,
        reference_points: torch.Tensor,
        new_reference_points: torch.Tensor,
    ) -> NextLayerInputs:
        """Sorts each group by layer ``layer_idx``'s scores: the references, and, when a layer follows, the
        content and positional queries, the content then fused by the rank layer.

        Args:
            layer_idx: the layer just run, of ``num_layers``.
            class_embed: the decoder's per-layer class heads (``C -> num_classes``).
            output: ``(bs, nq, C)`` the layer's output.
            layer_output: ``(bs, nq, C)`` what it contributes to the decoder's outputs (the scores' input).
            query_pos: ``(bs, nq, C)`` or None.
            reference_points, new_reference_points: ``(bs, nq, 4)`` refined boxes, detached and not.

        Returns:
            The sorted inputs of layer ``layer_idx + 1`` and the ``(bs, nq)`` permutation.
        """
        if self.rank_layers is not None and len(self.rank_layers) != num_layers - 1:
            raise ValueError(
                f"QueryRanking: {len(self.rank_layers)} rank layers for a decoder of {num_layers} layers"
            )
        order = self.query_order(layer_idx, layer_output, class_embed)
        reference_points = gather_queries(reference_points, order)
        new_reference_points = gather_queries(new_reference_points, order)
        if layer_idx + 1 < num_layers:
            output = gather_queries(output, order)
            if query_pos is not None:
                query_pos = gather_queries(query_pos, order)
            if self.rank_layers is not None:
                num_unranked, _ = ranked_groups(output.shape[1], self.query_groups)
                output = self.rank_layers[layer_idx](output, num_unranked)
        return NextLayerInputs(output, query_pos, reference_points, new_reference_points, order)

    def query_order(
        self, layer_idx: int, layer_output: torch.Tensor, class_embed: Sequence[nn.Module] | None
    ) -> torch.Tensor:
        """The ``(bs, nq)`` permutation that sorts each group of :func:`ranked_groups` by layer
        ``layer_idx``'s scores ``max_c sigmoid(class_embed_l(h_l))`` of its ``(bs, nq, C)`` output ``h_l``."""
        if class_embed is None:
            raise RuntimeError("QueryRanking: the decoder has no class_embed (the detector sets it)")
        num_unranked, groups = ranked_groups(layer_output.shape[1], self.query_groups)
        scores = class_embed[layer_idx](layer_output).sigmoid().max(-1).values
        return rank_order(scores, groups, num_unranked)
