"""Salience DETR Swin-T (ImageNet 224) 4-scale: levels p1-p3 of Swin-T (192/384/768 channels) + one extra
level, drop path 0.1 (the backbone of detrex's Swin-T DINO configs)."""

from detrkit.config import LazyCall as L
from detrkit.layers import ShapeSpec
from detrkit.modeling.backbone import SwinTransformer

from .salience_detr_r50 import model

model.backbone = L(SwinTransformer)(
    pretrain_img_size=224,
    embed_dim=96,
    depths=(2, 2, 6, 2),
    num_heads=(3, 6, 12, 24),
    drop_path_rate=0.1,
    window_size=7,
    out_indices=(1, 2, 3),
)
model.neck.input_shapes = {
    "p1": ShapeSpec(channels=192),
    "p2": ShapeSpec(channels=384),
    "p3": ShapeSpec(channels=768),
}
model.neck.in_features = ["p1", "p2", "p3"]
