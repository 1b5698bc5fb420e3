"""Salience DETR R50 4-scale, 12 epochs on COCO (official `salience_detr_resnet50_800_1333.py` with its
`train_config.py`): DINO's data and AdamW 1e-4 (weight decay 1e-4, grad clip 0.1), plus the official
optimizer groups (lr x0.1 for the backbone and the deformable sampling offsets, no weight decay on biases
and norms) and lr x0.1 after epoch 10 (official MultiStepLR milestone 10)."""

from detrkit.config import get_config
from detrkit.config.schedules import COCO_ITERS_PER_EPOCH

from ...dino.configs.dino_r50_4scale_12ep import dataloader, optimizer, train
from .models.salience_detr_r50 import model

lr_multiplier = get_config("common/coco_schedule.py").lr_multiplier_12ep
lr_multiplier.scheduler.milestones = [10 * COCO_ITERS_PER_EPOCH, 12 * COCO_ITERS_PER_EPOCH]
optimizer.params.lr_factor_func = lambda module_name: (
    0.1 if "backbone" in module_name or "sampling_offsets" in module_name else 1
)
optimizer.params.weight_decay_bias = 0.0

train.output_dir = "./output/salience_detr_r50_4scale_12ep"
model.device = train.device
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
