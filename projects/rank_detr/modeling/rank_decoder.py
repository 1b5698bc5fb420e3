"""Deformable decoders with Rank-DETR's query ranking between layers (sec. 3.1): after each layer the
queries of every group are sorted by their class score; the next layer gets the sorted content (through the
:class:`QueryRankLayer`), reference boxes and positional queries.

:class:`RankDetrTransformerDecoder` is the official code's (H-Deformable-DETR's decoder, fixed positional
queries that move with their content query); :class:`RankDINOTransformerDecoder` is the paper's DINO
version: the positional query is recomputed from the sorted boxes in every layer (eq. 4), and DINO's
denoising queries keep their place.
"""

from collections.abc import Sequence

import torch
from torch import nn

from detrkit.modeling.transformer import DINOTransformerDecoder, HDeformableDetrTransformerDecoder
from detrkit_projects.rank_detr.modeling.query_rank import (
    QueryRankLayer,
    gather_queries,
    rank_order,
    ranked_groups,
)

__all__ = ["QueryRankingDecoderMixin", "RankDINOTransformerDecoder", "RankDetrTransformerDecoder"]


class QueryRankingDecoderMixin:
    """Query ranking for a :class:`~detrkit.modeling.transformer.DeformableTransformerDecoder` subclass,
    through its ``between_layers`` hook (``layer_query_pos`` and ``layer_output`` are used as they are).

    Between layers ``l`` and ``l + 1`` the ranking score of a query is ``max_c sigmoid(class_embed_l(h_l))``
    (the plain class head, without the rank-adaptive bias); each group of :func:`ranked_groups` is sorted
    by it (stable, descending), and the content queries, the refined reference boxes (detached and, for the
    losses, undetached) and the given positional queries follow. With ``query_rank_layer`` the sorted
    content goes through layer ``l``'s :class:`QueryRankLayer`. The outputs of layer ``l`` are in the order
    the layer saw; its references in the order of layer ``l + 1`` (the detector adds box deltas of layer
    ``l + 1`` to them).

    The hook returns each sort's permutation, so the decoder's output carries ``query_ids``
    ``(num_layers, bs, nq)``: the position in layer 0's input of the query at each position of each layer's
    output, with which the detector returns every layer's predictions in one query order.
    """

    def _init_query_ranking(
        self, query_groups: Sequence[int], query_rank_layer: bool, rank_adaptive_classhead: bool
    ) -> None:
        if not query_groups or min(query_groups) < 1:
            raise ValueError(f"query_groups must be positive group sizes, got {query_groups}")
        self.query_groups = tuple(query_groups)
        self.query_rank_layer = query_rank_layer
        self.rank_adaptive_classhead = rank_adaptive_classhead
        self.rank_layers = (
            nn.ModuleList(
                QueryRankLayer(sum(self.query_groups), self.embed_dim) for _ in range(self.num_layers - 1)
            )
            if query_rank_layer
            else None
        )

    @property
    def ranks_queries(self) -> bool:
        """Queries are sorted between layers (for the rank layer or for the rank-adaptive head)."""
        return self.query_rank_layer or self.rank_adaptive_classhead

    def between_layers(
        self,
        layer_idx: int,
        output: torch.Tensor,
        layer_output: torch.Tensor,
        query_pos: torch.Tensor | None,
        reference_points: torch.Tensor,
        new_reference_points: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Sorts each group by layer ``layer_idx``'s scores: the references (also after the last layer, as
        the official code does), and, when a layer follows, the content and positional queries, the content
        then fused by the rank layer. The self-attention mask must be invariant to permutations inside each
        group (DINO's denoising mask and H-DETR's hybrid mask are). Shapes as in the base hook; the
        permutation ``(bs, nq)`` is returned with them."""
        if not self.ranks_queries:
            return output, query_pos, reference_points, new_reference_points, None
        order = self.query_order(layer_idx, layer_output)
        reference_points = gather_queries(reference_points, order)
        new_reference_points = gather_queries(new_reference_points, order)
        if layer_idx + 1 < self.num_layers:
            output = gather_queries(output, order)
            if query_pos is not None:
                query_pos = gather_queries(query_pos, order)
            if self.rank_layers is not None:
                num_unranked, _ = ranked_groups(output.shape[1], self.query_groups)
                output = self.rank_layers[layer_idx](output, num_unranked)
        return output, query_pos, reference_points, new_reference_points, order

    def query_order(self, layer_idx: int, layer_output: torch.Tensor) -> torch.Tensor:
        """The ``(bs, nq)`` permutation that sorts each group of :func:`ranked_groups` by layer
        ``layer_idx``'s scores ``max_c sigmoid(class_embed_l(h_l))`` of its ``(bs, nq, C)`` output."""
        if self.class_embed is None:
            raise RuntimeError(f"{type(self).__name__}: the detector has not set class_embed")
        num_unranked, groups = ranked_groups(layer_output.shape[1], self.query_groups)
        scores = self.class_embed[layer_idx](layer_output).sigmoid().max(-1).values
        return rank_order(scores, groups, num_unranked)


class RankDetrTransformerDecoder(QueryRankingDecoderMixin, HDeformableDetrTransformerDecoder):
    """Rank-DETR's decoder (official code): H-Deformable-DETR's decoder with query ranking.

    Args (keywords):
        num_queries_one2one: one-to-one queries (ranked as one group). Default 300.
        num_queries_one2many: one-to-many queries (ranked as a second group; 0: none). Default 1500.
        rank_adaptive_classhead: sort the queries between layers (the detector's rank-adaptive head needs
            it). Default True.
        query_rank_layer: fuse the sorted queries with the rank-aware content embeddings. Default True.
        **decoder_kwargs: the decoder's (``embed_dim``, ..., ``use_checkpoint``: see
            :class:`~detrkit.modeling.transformer.DeformableTransformerDecoder`).
    """

    def __init__(
        self,
        *,
        num_queries_one2one: int = 300,
        num_queries_one2many: int = 1500,
        rank_adaptive_classhead: bool = True,
        query_rank_layer: bool = True,
        **decoder_kwargs,
    ):
        super().__init__(**decoder_kwargs)
        groups = (
            (num_queries_one2one, num_queries_one2many) if num_queries_one2many else (num_queries_one2one,)
        )
        self._init_query_ranking(groups, query_rank_layer, rank_adaptive_classhead)


class RankDINOTransformerDecoder(QueryRankingDecoderMixin, DINOTransformerDecoder):
    """Rank-DETR on DINO (paper eq. 4): DINO's decoder with query ranking; each layer's positional query is
    ``ref_point_head(PE(b))`` of the sorted boxes, and the denoising queries in front are neither sorted nor
    given a rank embedding.

    Args (keywords):
        num_queries: the matching queries (ranked as one group). Default 900.
        rank_adaptive_classhead, query_rank_layer: see :class:`RankDetrTransformerDecoder`.
        **decoder_kwargs: the decoder's (see :class:`~detrkit.modeling.transformer.DINOTransformerDecoder`).
    """

    def __init__(
        self,
        *,
        num_queries: int = 900,
        rank_adaptive_classhead: bool = True,
        query_rank_layer: bool = True,
        **decoder_kwargs,
    ):
        super().__init__(**decoder_kwargs)
        self._init_query_ranking((num_queries,), query_rank_layer, rank_adaptive_classhead)
