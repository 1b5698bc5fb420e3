"""Rank-DETR detectors: H-Deformable-DETR (the official code) and DINO (the paper) with the rank-adaptive
classification head on every decoder layer's logits."""

import torch

from detrkit.modeling.meta_arch import DINO, HDeformableDETR
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
        self, inter_states: torch.Tensor, init_reference: torch.Tensor, inter_references: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The base's per-layer logits (plus the rank biases) and boxes, each layer's put back in the
        decoder's initial query order (:meth:`unrank`)."""
        outputs_class, outputs_coord = super().predict_layers(inter_states, init_reference, inter_references)
        if self.rank_adaptive_classhead_emb is not None:
            outputs_class = self.rank_adaptive_classhead_emb(outputs_class)
        return self.unrank(outputs_class), self.unrank(outputs_coord)

    def unrank(self, per_layer: torch.Tensor) -> torch.Tensor:
        """``per_layer`` ``(num_layers, bs, nq, D)``, each layer in its ranked order, moved to the decoder's
        initial query order: index ``q`` is then the same query in every layer, as cross-layer criteria
        (StageInteractor's cross-stage label assignment) need; per-layer matching, losses and the top-k
        postprocess do not depend on the order."""
        decoder = self.transformer.decoder
        if not decoder.ranks_queries:
            return per_layer
        positions = decoder.last_query_ids.argsort(-1)
        return per_layer.gather(2, positions[..., None].expand_as(per_layer))


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
