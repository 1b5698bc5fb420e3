"""Rank-DETR detectors: H-Deformable-DETR (the official code) and DINO (the paper) with the rank-adaptive
classification head on every decoder layer's logits."""

import torch

from detrkit.modeling.meta_arch import DINO, HDeformableDETR
from detrkit.modeling.meta_arch.two_stage_detr import in_initial_query_order
from detrkit.modeling.transformer import compose_query_orders
from detrkit_projects.rank_detr.modeling.rank_adaptive_head import RankAdaptiveClassHead

__all__ = ["RankAdaptiveHeadMixin", "RankDETR", "RankDINO"]


class RankAdaptiveHeadMixin:
    """Adds the :class:`RankAdaptiveClassHead` biases (``rank_adaptive_classhead_emb``, one table of
    ``num_queries`` rows per decoder layer) to the logits of :meth:`TwoStageDETR.predict_layers`. The
    decoder must sort its queries between layers (a :class:`QueryRankingDecoderMixin` decoder), so that row
    ``i`` is the ``i``-th ranked query.

    Args:
        rank_adaptive_classhead: add the biases (False: the plain heads). Default True.
        others: the detector's.
    """

    def __init__(self, *args, rank_adaptive_classhead: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        decoder = self.transformer.decoder
        if rank_adaptive_classhead and not getattr(decoder, "ranks_queries", False):
            raise ValueError(
                f"{type(self).__name__}: rank_adaptive_classhead needs a decoder that ranks its queries, got "
                f"{type(decoder).__name__}"
            )
        self.rank_adaptive_classhead = rank_adaptive_classhead
        self.rank_adaptive_classhead_emb = (
            RankAdaptiveClassHead(decoder.num_layers, self.num_queries, self.num_classes).to(self.device)
            if rank_adaptive_classhead
            else None
        )

    def predict_layers(
        self,
        inter_states: torch.Tensor,
        init_reference: torch.Tensor,
        inter_references: torch.Tensor,
        query_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The base's per-layer logits (plus the rank biases, added in each layer's ranked order) and boxes,
        each layer's then put back in the decoder's initial query order by the decoder's ``query_ids``
        ``(num_layers, bs, nq)`` (:func:`~detrkit.modeling.meta_arch.two_stage_detr.in_initial_query_order`;
        per-layer matching, losses and the top-k postprocess do not depend on the order). detrex's
        transformers do not pass the order on (``query_ids`` None): the decoder's rule
        (``query_order``) gives it again from the layers' outputs."""
        decoder = self.transformer.decoder
        if query_ids is None and decoder.ranks_queries:
            orders = [decoder.query_order(layer, states) for layer, states in enumerate(inter_states[:-1])]
            query_ids = compose_query_orders(orders)
        outputs_class, outputs_coord = super().predict_layers(inter_states, init_reference, inter_references)
        if self.rank_adaptive_classhead_emb is not None:
            outputs_class = self.rank_adaptive_classhead_emb(outputs_class)
        return tuple(in_initial_query_order(x, query_ids) for x in (outputs_class, outputs_coord))


class RankDETR(RankAdaptiveHeadMixin, HDeformableDETR):
    """Rank-DETR (official code): :class:`~detrkit.modeling.meta_arch.HDeformableDETR` with the rank-adaptive
    classification head; its transformer's decoder is a :class:`RankDetrTransformerDecoder` and its
    criterion uses the GIoU-aware class loss and the high-order matcher (see the configs).

    Args: :class:`~detrkit.modeling.meta_arch.HDeformableDETR`'s and ``rank_adaptive_classhead``.
    """


class RankDINO(RankAdaptiveHeadMixin, DINO):
    """Rank-DETR on DINO (paper): :class:`~detrkit.modeling.meta_arch.DINO` with the rank-adaptive
    classification head over the ``num_queries`` matching queries (the denoising queries get no bias); its
    decoder is a :class:`RankDINOTransformerDecoder`.

    Args: :class:`~detrkit.modeling.meta_arch.DINO`'s and ``rank_adaptive_classhead``.
    """
