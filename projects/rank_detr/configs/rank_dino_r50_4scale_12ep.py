"""Rank-DETR on DINO R50 4-scale, 12 epochs on COCO (DINO's recipe; the high-order matching cost from
iteration 67,500 of 90,000)."""

from ...dino.configs.dino_r50_4scale_12ep import dataloader, lr_multiplier, optimizer, train
from .models.rank_dino_r50 import model

train.output_dir = "./output/rank_dino_r50_4scale_12ep"
model.device = train.device
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
