"""Config helper: turn a LazyCall config of detrkit's DINO into Salience DETR's, so that every Salience DETR
config (COCO, shapes) states the changes once."""

from collections.abc import Sequence

from detrkit.config import LazyCall as L
from detrkit.config.criterion_edits import add_extra_loss, set_class_loss, take_focal_parameters
from detrkit.config.model_edits import detrkit_dino_class
from detrkit.modeling.matcher import HungarianMatcher
from detrkit.modeling.transformer import SelectiveTokenEncoder
from detrkit_projects.salience_detr.modeling.background_embedding import BackgroundEmbedding
from detrkit_projects.salience_detr.modeling.criterion import IoUAwareClassLoss, SalienceLoss
from detrkit_projects.salience_detr.modeling.query_selector import RedundancyRemovalQuerySelector
from detrkit_projects.salience_detr.modeling.salience_detr_transformer import SalienceDETRTransformer
from detrkit_projects.salience_detr.modeling.salience_supervision import (
    CODE_SCALE_RANGES,
    SalienceTargetGenerator,
)
from detrkit_projects.salience_detr.modeling.token_filter import HierarchicalTokenSelector
from detrkit_projects.salience_detr.modeling.token_fusion import CrossLevelTokenFusion

__all__ = ["to_salience_detr"]


def to_salience_detr(
    model,
    level_ratios: Sequence[float] = (0.4, 0.8, 1.0, 1.0),
    layer_ratios: Sequence[float] = (1.0, 0.8, 0.6, 0.6, 0.4, 0.2),
    token_fusion: bool = True,
    scale_ranges: Sequence[tuple[float, float]] = CODE_SCALE_RANGES,
    salience_loss_weight: float = 2.0,
) -> None:
    """``model`` (a LazyCall DINO, detrkit's or detrex's) made Salience DETR in place, as the official
    ``salience_detr_resnet50_800_1333.py``: selective encoder (one layer ratio per encoder layer),
    hierarchical filtering (one level ratio and one scale range per feature level), absolute background
    embedding, cross-level token fusion unless ``token_fusion=False``, redundancy removal, IoU-aware class
    loss, ``loss_salience`` (weight ``salience_loss_weight``), neck convolutions without bias, inputs padded
    to a multiple of 32, IoUs and GIoUs without an eps in the criterion and the matcher (the official code
    uses torchvision's box ops; detrex's add 1e-6) (the backbone is the caller's: the official R50 freezes
    stem + res2)."""
    embed_dim = "${model.embed_dim}"  # follows a later override of model.embed_dim
    model._target_ = detrkit_dino_class(model._target_)
    model.size_divisibility = 32
    model.neck.bias = False
    transformer = model.transformer
    transformer._target_ = SalienceDETRTransformer
    transformer.encoder._target_ = SelectiveTokenEncoder
    transformer.query_selector = L(RedundancyRemovalQuerySelector)(
        embed_dim=embed_dim, num_queries="${..two_stage_num_proposals}"
    )
    transformer.token_selector = L(HierarchicalTokenSelector)(
        level_ratios=tuple(level_ratios), layer_ratios=tuple(layer_ratios)
    )
    transformer.background_embedding = L(BackgroundEmbedding)(embed_dim=embed_dim, mode="absolute")
    transformer.token_fusion = (
        L(CrossLevelTokenFusion)(embed_dim=embed_dim, num_feature_levels="${..num_feature_levels}")
        if token_fusion
        else None
    )
    criterion = model.criterion
    set_class_loss(criterion, L(IoUAwareClassLoss)(**take_focal_parameters(criterion)))
    target_generator = L(SalienceTargetGenerator)(
        scale_ranges=tuple(tuple(r) for r in scale_ranges), level_gating=True, confidence="code"
    )
    add_extra_loss(
        criterion, L(SalienceLoss)(target_generator=target_generator), {"loss_salience": salience_loss_weight}
    )
    criterion.iou_eps = 0.0
    matcher = model.criterion.matcher
    if not (isinstance(matcher._target_, type) and issubclass(matcher._target_, HungarianMatcher)):
        matcher._target_ = HungarianMatcher  # e.g. detrex's: the same keywords, but its IoUs have an eps
    matcher.iou_eps = 0.0
