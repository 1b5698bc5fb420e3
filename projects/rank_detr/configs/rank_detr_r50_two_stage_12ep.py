"""Rank-DETR R50 two-stage, 12 epochs on COCO (official `rank_detr_r50_two_stage_12ep.py`): the
high-order matching cost from iteration 67,500 of 90,000."""

from ...dino.configs.h_deformable_detr_r50_two_stage_12ep import dataloader, lr_multiplier, optimizer, train
from .models.rank_detr_r50 import model

train.output_dir = "./output/rank_detr_r50_two_stage_12ep"
model.device = train.device
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
