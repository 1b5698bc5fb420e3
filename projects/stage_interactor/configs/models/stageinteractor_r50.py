"""StageInteractor R50 (the official `stageinteractor_r50_1x_coco.py` model): ResNet-50 (frozen BN, stem and
res2 frozen) C2-C5 -> 1x1 convolutions to 256 channels (strides 4/8/16/32), 100 queries covering the image,
6 stages (8 heads, FFN 2048, G=4 groups, 8x8 points in stage 0 and 4x8 after, 128 output points) reusing
filters from stage 2 on; quality focal loss 2 on cross-stage labels (with the official code's hard targets),
L1 5, GIoU 2; Hungarian costs 2/5/2."""

from detrkit.config import LazyCall as L
from detrkit.layers import ShapeSpec
from detrkit.modeling.backbone import ResNet
from detrkit.modeling.criterion import SetCriterion, build_weight_dict
from detrkit.modeling.matcher import HungarianMatcher
from detrkit.modeling.neck import ChannelMapper
from detrkit_projects.stage_interactor.modeling.cross_stage_label_assignment import CrossStageClassLoss
from detrkit_projects.stage_interactor.modeling.decoder import StageInteractorDecoder
from detrkit_projects.stage_interactor.modeling.query_generator import InitialQueryGenerator
from detrkit_projects.stage_interactor.modeling.stage_interactor import StageInteractor

model = L(StageInteractor)(
    backbone=L(ResNet)(depth=50, out_features=("res2", "res3", "res4", "res5"), freeze_at=2, norm="FrozenBN"),
    neck=L(ChannelMapper)(
        input_shapes={
            "res2": ShapeSpec(channels=256),
            "res3": ShapeSpec(channels=512),
            "res4": ShapeSpec(channels=1024),
            "res5": ShapeSpec(channels=2048),
        },
        in_features=["res2", "res3", "res4", "res5"],
        out_channels=256,
        num_outs=4,
        kernel_size=1,
    ),
    query_generator=L(InitialQueryGenerator)(num_queries=100, embed_dim=256),
    decoder=L(StageInteractorDecoder)(
        num_stages=6,
        embed_dim=256,
        num_heads=8,
        feedforward_dim=2048,
        num_classes="${..num_classes}",
        num_groups=4,
        first_stage_points=8,
        num_points=4,
        num_subpoints=8,
        out_points=128,
        filter_reuse=True,
        reuse_start=2,
        max_reused_filters=None,
        adapters=True,
        static_mixing="channel_spatial",
    ),
    num_classes=80,
    criterion=L(SetCriterion)(
        num_classes="${..num_classes}",
        matcher=L(HungarianMatcher)(
            cost_class=2.0,
            cost_bbox=5.0,
            cost_giou=2.0,
            cost_class_type="focal_loss_cost",
            alpha=0.25,
            gamma=2.0,
            iou_eps=0.0,  # mmdet's box overlaps: eps-free for boxes of positive area
        ),
        weight_dict=build_weight_dict(
            {"loss_class": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0}, num_decoder_layers=6, two_stage=False
        ),
        class_loss=L(CrossStageClassLoss)(
            scope=(-1, None),
            iou_threshold=0.5,
            quality_target="label",  # the official code's hard 0/1 targets (README: paper vs code)
            alpha=0.25,
            gamma=2.0,
        ),
        l1_box_format="xyxy",  # the official L1 on normalised xyxy boxes
        iou_eps=0.0,  # mmdet's box overlaps: eps-free for boxes of positive area
    ),
    feature_strides=(4, 8, 16, 32),
    pixel_mean=[123.675, 116.280, 103.530],
    pixel_std=[58.395, 57.120, 57.375],
    select_box_nums_for_evaluation=100,
    size_divisibility=32,
    input_format="RGB",
)
