"""Rank-DETR's modules: query ranking, rank-adaptive classification head, GIoU-aware class loss,
high-order matcher, and the decoders / detectors / criteria that combine them with detrkit's bases."""

from detrkit_projects.rank_detr.modeling.giou_aware_loss import (
    GIoUAwareClassLossMixin,
    RankDetrCriterion,
    RankDINOCriterion,
    giou_aware_focal_loss,
)
from detrkit_projects.rank_detr.modeling.high_order_matcher import HighOrderMatcher
from detrkit_projects.rank_detr.modeling.query_rank import (
    QueryRankLayer,
    gather_queries,
    rank_order,
    ranked_groups,
)
from detrkit_projects.rank_detr.modeling.rank_adaptive_head import RankAdaptiveClassHead
from detrkit_projects.rank_detr.modeling.rank_decoder import (
    QueryRankingDecoderMixin,
    RankDetrTransformerDecoder,
    RankDINOTransformerDecoder,
)
from detrkit_projects.rank_detr.modeling.rank_detr import RankAdaptiveHeadMixin, RankDETR, RankDINO

__all__ = [
    "GIoUAwareClassLossMixin",
    "HighOrderMatcher",
    "QueryRankLayer",
    "QueryRankingDecoderMixin",
    "RankAdaptiveClassHead",
    "RankAdaptiveHeadMixin",
    "RankDETR",
    "RankDINO",
    "RankDINOCriterion",
    "RankDINOTransformerDecoder",
    "RankDetrCriterion",
    "RankDetrTransformerDecoder",
    "gather_queries",
    "giou_aware_focal_loss",
    "rank_order",
    "ranked_groups",
]
