"""Salience DETR's encoder and query selection + Rank-DETR's decoder, rank-adaptive head and high-order
matcher + StageInteractor's cross-stage label assignment, on DINO. Each piece comes from its own project;
this module only names their combinations."""

import torch

from detrkit_projects.rank_detr.modeling.lazy_configs import high_order_matcher
from detrkit_projects.rank_detr.modeling.rank_decoder import RankDINOTransformerDecoder
from detrkit_projects.rank_detr.modeling.rank_detr import RankAdaptiveHeadMixin
from detrkit_projects.salience_detr.modeling.criterion import SalienceDETRCriterion
from detrkit_projects.salience_detr.modeling.query_selector import RedundancyRemovalQuerySelector
from detrkit_projects.salience_detr.modeling.salience_detr import SalienceDETR
from detrkit_projects.stage_interactor.modeling.csla_criterion import CrossStageLabelAssignmentMixin

__all__ = [
    "CSLASalienceDETRCriterion",
    "FullRedundancyRemovalQuerySelector",
    "SalienceRankDETR",
    "to_salience_rank_csla",
]


class FullRedundancyRemovalQuerySelector(RedundancyRemovalQuerySelector):
    """Salience DETR's redundancy removal that must keep ``num_queries`` queries per image, as the official
    code requires and Rank-DETR's decoder and head need (they tell the denoising queries from the ranked ones
    by count). Arguments: :class:`RedundancyRemovalQuerySelector`'s."""

    def select_indices(
        self, scores: torch.Tensor, spatial_shapes: torch.Tensor, num_queries: int
    ) -> torch.Tensor:
        """The base's ``(bs, num_queries)`` indices; a clear error when an image keeps fewer tokens."""
        indices = super().select_indices(scores, spatial_shapes, num_queries)
        if indices.shape[1] < num_queries:
            raise ValueError(
                f"redundancy removal kept {indices.shape[1]} tokens in some image, fewer than the "
                f"{num_queries} queries the rank decoder needs: use larger images or fewer queries"
            )
        return indices


class SalienceRankDETR(RankAdaptiveHeadMixin, SalienceDETR):
    """:class:`SalienceDETR` with Rank-DETR's rank-adaptive classification head; its decoder must rank the
    queries (:class:`RankDINOTransformerDecoder`), which needs the query selector to return ``num_queries``
    queries (:class:`FullRedundancyRemovalQuerySelector`). Arguments: :class:`SalienceDETR`'s and
    ``rank_adaptive_classhead``."""


class CSLASalienceDETRCriterion(CrossStageLabelAssignmentMixin, SalienceDETRCriterion):
    """Salience DETR's criterion whose decoder layers take cross-stage class targets (focal loss on the
    gathered labels); the encoder proposals and denoising queries keep Salience's IoU-aware class loss, and
    ``loss_salience`` is unchanged. Arguments: :class:`SalienceDETRCriterion`'s, ``csla_scope`` and
    ``csla_iou_threshold``."""


def to_salience_rank_csla(
    model,
    matcher_change_iter: int,
    csla_scope: tuple[int, int | None] = (-1, None),
    csla_iou_threshold: float | None = 0.5,
):
    """``model`` (a LazyCall :class:`SalienceDETR`, e.g. from a Salience DETR config) given Rank-DETR's
    ranking decoder, rank-adaptive head and high-order matcher (from ``matcher_change_iter``) and
    cross-stage label assignment, in place (and returned)."""
    if model._target_ is not SalienceDETR:
        raise ValueError(f"to_salience_rank_csla needs a SalienceDETR config, got {model._target_}")
    model._target_ = SalienceRankDETR
    model.rank_adaptive_classhead = True
    model.transformer.query_selector._target_ = FullRedundancyRemovalQuerySelector
    decoder = model.transformer.decoder
    decoder._target_ = RankDINOTransformerDecoder
    decoder.num_queries = "${...num_queries}"
    decoder.rank_adaptive_classhead = "${...rank_adaptive_classhead}"
    decoder.query_rank_layer = True
    criterion = model.criterion
    criterion._target_ = CSLASalienceDETRCriterion
    criterion.matcher = high_order_matcher(criterion.matcher, matcher_change_iter)
    criterion.csla_scope = csla_scope
    criterion.csla_iou_threshold = csla_iou_threshold
    return model
