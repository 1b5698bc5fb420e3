"""Rank-DETR's modules: query ranking, rank-adaptive classification head, GIoU-aware class loss,
high-order matcher: modules for detrkit's slots (the decoder's ``between_layers`` hook, the detector's
``class_bias``, the criterion's class loss and matcher)."""

from detrkit_projects.rank_detr.modeling.giou_aware_loss import (
    GIoUAwareClassLoss,
    giou_aware_focal_loss,
)
from detrkit_projects.rank_detr.modeling.high_order_matcher import HighOrderMatcher
from detrkit_projects.rank_detr.modeling.query_rank import (
    QueryRanking,
    QueryRankLayer,
    gather_queries,
    rank_order,
    ranked_groups,
)
from detrkit_projects.rank_detr.modeling.rank_adaptive_head import RankAdaptiveClassHead

__all__ = [
    "GIoUAwareClassLoss",
    "HighOrderMatcher",
    "QueryRankLayer",
    "QueryRanking",
    "RankAdaptiveClassHead",
    "gather_queries",
    "giou_aware_focal_loss",
    "rank_order",
    "ranked_groups",
]
