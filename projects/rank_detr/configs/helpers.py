"""Config helpers: turn a LazyCall config of detrkit's H-Deformable-DETR or DINO into Rank-DETR's, so that
every Rank-DETR config (COCO, shapes) states the changes once."""

from collections.abc import Sequence

from detrkit.config import LazyCall as L
from detrkit.config.criterion_edits import matching_criterion, set_class_loss, take_focal_parameters
from detrkit.config.model_edits import detrkit_decoder_class, detrkit_detector_class
from detrkit.modeling.criterion import FocalClassLoss
from detrkit_projects.rank_detr.modeling.giou_aware_loss import GIoUAwareClassLoss
from detrkit_projects.rank_detr.modeling.high_order_matcher import HighOrderMatcher
from detrkit_projects.rank_detr.modeling.query_rank import QueryRanking
from detrkit_projects.rank_detr.modeling.rank_adaptive_head import RankAdaptiveClassHead

__all__ = ["high_order_matcher", "to_rank_criterion", "to_rank_detr", "to_rank_dino", "with_rank_modules"]


def high_order_matcher(hungarian, matcher_change_iter: int, iou_order_alpha: float = 4.0):
    """A LazyCall :class:`HighOrderMatcher` with the standard costs of the LazyCall ``hungarian``."""
    costs = {k: v for k, v in hungarian.items() if k != "_target_"}
    return L(HighOrderMatcher)(
        **costs, iou_order_alpha=iou_order_alpha, matcher_change_iter=matcher_change_iter
    )


def to_rank_criterion(criterion, matcher_change_iter: int) -> None:
    """The LazyCall ``criterion`` (detrkit's or detrex's; inside a ``HybridMatchingCriterion`` the wrapped
    one) made Rank-DETR's in place: the GIoU-aware class loss (eq. 5) on the decoder layers and the
    denoising queries, the focal loss on the encoder proposals (official code), the high-order matcher from
    ``matcher_change_iter``."""
    criterion = matching_criterion(criterion)
    focal = take_focal_parameters(criterion)
    set_class_loss(criterion, L(GIoUAwareClassLoss)(**focal))
    criterion.enc_class_loss = L(FocalClassLoss)(**focal)
    criterion.matcher = high_order_matcher(criterion.matcher, matcher_change_iter)


def with_rank_modules(model, query_groups: Sequence[int | str]) -> None:
    """The LazyCall ``model`` (a detrkit ``TwoStageDETR`` subclass with a ``DeformableTransformerDecoder``
    subclass, or detrex's DINO / H-Deformable-DETR, replaced by detrkit's) given Rank-DETR's query ranking
    in place: the decoder's ``between_layers`` hook :class:`QueryRanking` (sorting by score, rank layers)
    and the detector's ``class_bias`` :class:`RankAdaptiveClassHead` (eq. 2), both over ``query_groups``
    (values or interpolations of the model's query counts)."""
    groups = list(query_groups)
    model._target_ = detrkit_detector_class(model._target_)
    model.class_bias = L(RankAdaptiveClassHead)(
        num_layers="${..transformer.decoder.num_layers}", num_queries=groups, num_classes="${..num_classes}"
    )
    decoder = model.transformer.decoder
    decoder._target_ = detrkit_decoder_class(decoder._target_)
    decoder.between_layers = L(QueryRanking)(
        query_groups=groups, num_layers="${..num_layers}", embed_dim="${..embed_dim}", query_rank_layer=True
    )


def to_rank_detr(model, matcher_change_iter: int) -> None:
    """``model`` (a LazyCall :class:`HDeformableDETR` with a :class:`HybridMatchingCriterion`, or detrex's
    H-Deformable-DETR config, whose criterion is plain) made Rank-DETR in place: rank-adaptive
    head, query rank layers (groups: the config's ``model.num_queries_one2one`` and
    ``model.num_queries_one2many``, followed through overrides), GIoU-aware class loss, high-order matcher
    from ``matcher_change_iter``."""
    with_rank_modules(model, ["${model.num_queries_one2one}", "${model.num_queries_one2many}"])
    to_rank_criterion(model.criterion, matcher_change_iter)


def to_rank_dino(model, matcher_change_iter: int) -> None:
    """``model`` (a LazyCall :class:`DINO` or subclass, or detrex's DINO config) made Rank-DETR on DINO in
    place: rank-adaptive head, query rank layers (over the config's ``model.num_queries``)
    with positions from the sorted boxes (DINO's decoder), GIoU-aware class loss, high-order matcher from
    ``matcher_change_iter``."""
    with_rank_modules(model, ["${model.num_queries}"])
    to_rank_criterion(model.criterion, matcher_change_iter)
