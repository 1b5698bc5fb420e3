"""DINO R50 4-scale, 12 epochs on COCO (detrex's `dino_r50_4scale_12ep.py`)."""

from detrkit.config import get_config
from detrkit.config.schedules import COCO_ITERS_PER_EPOCH

from .coco_r50_common import dataloader, optimizer, train
from .models.dino_r50 import model

lr_multiplier = get_config("common/coco_schedule.py").lr_multiplier_12ep

train.max_iter = 12 * COCO_ITERS_PER_EPOCH
train.output_dir = "./output/dino_r50_4scale_12ep"
model.device = train.device
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
