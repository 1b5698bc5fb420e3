"""Rank-DETR Swin-T (ImageNet-1k 224) two-stage, 12 epochs on COCO (official
`rank_detr_swin_tiny_two_stage_12ep.py`): levels p1-p3 of Swin-T (192/384/768 channels) + one extra level,
drop path 0.2, activation checkpointing in the encoder and decoder."""

from ...dino.configs.models.backbones import SWIN_TINY_224_WEIGHTS, set_swin_tiny_224_backbone
from .rank_detr_r50_two_stage_12ep import dataloader, lr_multiplier, model, optimizer, train

set_swin_tiny_224_backbone(model, drop_path_rate=0.2)
model.transformer.encoder.use_checkpoint = True
model.transformer.decoder.use_checkpoint = True

train.init_checkpoint = SWIN_TINY_224_WEIGHTS
train.output_dir = "./output/rank_detr_swin_tiny_two_stage_12ep"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
