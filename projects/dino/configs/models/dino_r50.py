"""DINO R50 4-scale (detrex's `dino_r50.py` settings): ResNet-50 (frozen BN, stem frozen) -> C3-C5 + one
stride-2 level through ChannelMapper (1x1 conv + GroupNorm(32)), 6 + 6 deformable layers, 900 queries,
contrastive denoising (100 queries, label noise 0.5, box noise 1.0), Hungarian matching 2/5/2 and losses
class 1 / L1 5 / GIoU 2 on every decoder layer, the encoder proposals and the denoising queries."""

from torch import nn

from detrkit.config import LazyCall as L
from detrkit.layers import PositionEmbeddingSine, ShapeSpec
from detrkit.modeling.backbone import ResNet
from detrkit.modeling.criterion import DINOCriterion, build_weight_dict
from detrkit.modeling.matcher import HungarianMatcher
from detrkit.modeling.meta_arch import DINO
from detrkit.modeling.neck import ChannelMapper
from detrkit.modeling.transformer import DINOTransformer, DINOTransformerDecoder, DINOTransformerEncoder

# Both stacks: 6 layers, d=256, 8 heads, FFN 2048, no dropout.
_LAYERS = dict(
    embed_dim=256,
    num_heads=8,
    feedforward_dim=2048,
    attn_dropout=0.0,
    ffn_dropout=0.0,
    num_layers=6,
)

model = L(DINO)(
    backbone=L(ResNet)(depth=50, out_features=("res3", "res4", "res5"), freeze_at=1, norm="FrozenBN"),
    position_embedding=L(PositionEmbeddingSine)(
        num_pos_feats=128, temperature=10000, normalize=True, offset=-0.5
    ),
    neck=L(ChannelMapper)(
        input_shapes={
            "res3": ShapeSpec(channels=512),
            "res4": ShapeSpec(channels=1024),
            "res5": ShapeSpec(channels=2048),
        },
        in_features=["res3", "res4", "res5"],
        out_channels=256,
        num_outs=4,
        kernel_size=1,
        norm_layer=L(nn.GroupNorm)(num_groups=32, num_channels=256),
    ),
    transformer=L(DINOTransformer)(
        encoder=L(DINOTransformerEncoder)(
            **_LAYERS, post_norm=False, num_feature_levels="${..num_feature_levels}"
        ),
        decoder=L(DINOTransformerDecoder)(
            **_LAYERS, return_intermediate=True, num_feature_levels="${..num_feature_levels}"
        ),
        num_feature_levels=4,
        two_stage_num_proposals="${..num_queries}",
    ),
    embed_dim=256,
    num_classes=80,
    num_queries=900,
    aux_loss=True,
    criterion=L(DINOCriterion)(
        num_classes="${..num_classes}",
        matcher=L(HungarianMatcher)(
            cost_class=2.0,
            cost_bbox=5.0,
            cost_giou=2.0,
            cost_class_type="focal_loss_cost",
            alpha=0.25,
            gamma=2.0,
        ),
        weight_dict=build_weight_dict(
            {"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}, num_decoder_layers=6, denoising=True
        ),
        loss_class_type="focal_loss",
        alpha=0.25,
        gamma=2.0,
        two_stage_binary_cls=False,
    ),
    dn_number=100,
    label_noise_ratio=0.5,
    box_noise_scale=1.0,
    pixel_mean=[123.675, 116.280, 103.530],
    pixel_std=[58.395, 57.120, 57.375],
    select_box_nums_for_evaluation=300,
    input_format="RGB",
)
