"""Focus-DETR R50 4-scale, 36 epochs on COCO (detrex's `focus_detr_r50_4scale_36ep.py`; DINO's recipe)."""

from ...dino.configs.dino_r50_4scale_36ep import dataloader, lr_multiplier, optimizer, train
from .models.focus_detr_r50 import model

train.output_dir = "./output/focus_detr_r50_4scale_36ep"
model.device = train.device
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
