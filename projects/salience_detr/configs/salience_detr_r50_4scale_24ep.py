"""Salience DETR R50 4-scale, 24 epochs on COCO (the 12-epoch config's optimizer, DINO's 24-epoch schedule:
lr x0.1 after epoch 20)."""

from detrkit.config import get_config
from detrkit.config.schedules import COCO_ITERS_PER_EPOCH

from .salience_detr_r50_4scale_12ep import dataloader, model, optimizer, train

lr_multiplier = get_config("common/coco_schedule.py").lr_multiplier_24ep
train.max_iter = 24 * COCO_ITERS_PER_EPOCH
train.output_dir = "./output/salience_detr_r50_4scale_24ep"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
