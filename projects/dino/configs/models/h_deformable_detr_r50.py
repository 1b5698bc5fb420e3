"""H-Deformable-DETR R50 two-stage with box refinement (detrex's `h_deformable_detr_r50.py` with
`with_box_refine = as_two_stage = True`): 300 one-to-one + 1500 one-to-many queries, the ground truth
repeated k = 6 times for the one-to-many branch (lambda 1), mixed query selection, 1800 proposals in training
and 300 at eval, class-agnostic (binary) encoder proposals, losses class 2 / L1 5 / GIoU 2."""

from detrkit.config import LazyCall as L
from detrkit.modeling.criterion import HybridMatchingCriterion, TwoStageCriterion, build_weight_dict
from detrkit.modeling.meta_arch import HDeformableDETR
from detrkit.modeling.transformer import (
    HDeformableDetrTransformer,
    HDeformableDetrTransformerDecoder,
    HDeformableDetrTransformerEncoder,
)

from .dino_r50 import _LAYERS
from .dino_r50 import model as _dino

model = L(HDeformableDETR)(
    backbone=_dino.backbone,
    position_embedding=_dino.position_embedding,
    neck=_dino.neck,
    transformer=L(HDeformableDetrTransformer)(
        encoder=L(HDeformableDetrTransformerEncoder)(
            **_LAYERS, post_norm=False, num_feature_levels="${..num_feature_levels}"
        ),
        decoder=L(HDeformableDetrTransformerDecoder)(
            **_LAYERS,
            return_intermediate=True,
            look_forward_twice=True,
            num_feature_levels="${..num_feature_levels}",
        ),
        as_two_stage=True,
        num_feature_levels=4,
        two_stage_num_proposals=1800,
        mixed_selection=True,
    ),
    embed_dim=256,
    num_classes=80,
    num_queries_one2one=300,
    num_queries_one2many=1500,
    aux_loss=True,
    with_box_refine=True,
    as_two_stage=True,
    criterion=L(HybridMatchingCriterion)(
        criterion=L(TwoStageCriterion)(
            num_classes=80,
            matcher=_dino.criterion.matcher,
            weight_dict=build_weight_dict(
                {"loss_class": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0}, num_decoder_layers=6, one2many=True
            ),
            loss_class_type="focal_loss",
            alpha=0.25,
            gamma=2.0,
            two_stage_binary_cls=True,
        ),
        k_one2many=6,
        lambda_one2many=1.0,
    ),
    pixel_mean=_dino.pixel_mean,
    pixel_std=_dino.pixel_std,
    select_box_nums_for_evaluation=300,
    mixed_selection=True,
)
