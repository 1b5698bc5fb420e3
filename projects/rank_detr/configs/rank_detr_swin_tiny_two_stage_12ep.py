"""Rank-DETR Swin-T (ImageNet-1k 224) two-stage, 12 epochs on COCO (official
`rank_detr_swin_tiny_two_stage_12ep.py`): levels p1-p3 of Swin-T (192/384/768 channels) + one extra level,
drop path 0.2, activation checkpointing in the encoder and decoder."""

from detrkit.config import LazyCall as L
from detrkit.layers import ShapeSpec
from detrkit.modeling.backbone import SwinTransformer

from .rank_detr_r50_two_stage_12ep import dataloader, lr_multiplier, model, optimizer, train

model.backbone = L(SwinTransformer)(
    pretrain_img_size=224,
    embed_dim=96,
    depths=(2, 2, 6, 2),
    num_heads=(3, 6, 12, 24),
    drop_path_rate=0.2,
    window_size=7,
    out_indices=(1, 2, 3),
)
model.neck.input_shapes = {
    "p1": ShapeSpec(channels=192),
    "p2": ShapeSpec(channels=384),
    "p3": ShapeSpec(channels=768),
}
model.neck.in_features = ["p1", "p2", "p3"]
model.transformer.encoder.use_checkpoint = True
model.transformer.decoder.use_checkpoint = True

train.init_checkpoint = "./pretrained/swin_tiny_patch4_window7_224.pth"
train.output_dir = "./output/rank_detr_swin_tiny_two_stage_12ep"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
