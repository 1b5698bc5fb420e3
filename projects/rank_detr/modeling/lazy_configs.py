"""Config helpers: turn a LazyCall config of detrkit's H-Deformable-DETR or DINO into Rank-DETR's, so that
every Rank-DETR config (COCO, shapes) states the changes once."""

from detrkit.config import LazyCall as L
from detrkit_projects.rank_detr.modeling.giou_aware_loss import RankDetrCriterion, RankDINOCriterion
from detrkit_projects.rank_detr.modeling.high_order_matcher import HighOrderMatcher
from detrkit_projects.rank_detr.modeling.rank_decoder import (
    RankDetrTransformerDecoder,
    RankDINOTransformerDecoder,
)
from detrkit_projects.rank_detr.modeling.rank_detr import RankDETR, RankDINO

__all__ = ["high_order_matcher", "to_rank_detr", "to_rank_dino"]


def high_order_matcher(hungarian, matcher_change_iter: int, iou_order_alpha: float = 4.0):
    """A LazyCall :class:`HighOrderMatcher` with the standard costs of the LazyCall ``hungarian``."""
    costs = {k: v for k, v in hungarian.items() if k != "_target_"}
    return L(HighOrderMatcher)(
        **costs, iou_order_alpha=iou_order_alpha, matcher_change_iter=matcher_change_iter
    )


def to_rank_detr(model, matcher_change_iter: int):
    """``model`` (a LazyCall :class:`HDeformableDETR` with a :class:`HybridMatchingCriterion`, or detrex's
    H-Deformable-DETR config, whose criterion is plain) made Rank-DETR in place (and returned): rank-adaptive
    head, query rank layers, GIoU-aware class loss, high-order matcher from ``matcher_change_iter``."""
    model._target_ = RankDETR
    model.rank_adaptive_classhead = True
    decoder = model.transformer.decoder
    decoder._target_ = RankDetrTransformerDecoder
    decoder.num_queries_one2one = "${...num_queries_one2one}"
    decoder.num_queries_one2many = "${...num_queries_one2many}"
    decoder.rank_adaptive_classhead = "${...rank_adaptive_classhead}"
    decoder.query_rank_layer = True
    criterion = model.criterion.get("criterion", model.criterion)
    criterion._target_ = RankDetrCriterion
    criterion.matcher = high_order_matcher(criterion.matcher, matcher_change_iter)
    return model


def to_rank_dino(model, matcher_change_iter: int):
    """``model`` (a LazyCall :class:`DINO`) made Rank-DETR on DINO in place (and returned): rank-adaptive
    head, query rank layers with positions from the sorted boxes, GIoU-aware class loss, high-order matcher
    from ``matcher_change_iter``."""
    model._target_ = RankDINO
    model.rank_adaptive_classhead = True
    decoder = model.transformer.decoder
    decoder._target_ = RankDINOTransformerDecoder
    decoder.num_queries = "${...num_queries}"
    decoder.rank_adaptive_classhead = "${...rank_adaptive_classhead}"
    decoder.query_rank_layer = True
    model.criterion._target_ = RankDINOCriterion
    model.criterion.matcher = high_order_matcher(model.criterion.matcher, matcher_change_iter)
    return model
