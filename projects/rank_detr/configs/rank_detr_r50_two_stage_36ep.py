"""Rank-DETR R50 two-stage, 36 epochs on COCO (official `rank_detr_r50_two_stage_36ep.py`): the
high-order matching cost from iteration 202,500 of 270,000."""

from detrkit.config import get_config
from detrkit.config.schedules import COCO_ITERS_PER_EPOCH

from .rank_detr_r50_two_stage_12ep import dataloader, model, optimizer, train

lr_multiplier = get_config("common/coco_schedule.py").lr_multiplier_36ep

train.max_iter = 36 * COCO_ITERS_PER_EPOCH
model.criterion.criterion.matcher.matcher_change_iter = 27 * COCO_ITERS_PER_EPOCH
train.output_dir = "./output/rank_detr_r50_two_stage_36ep"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
