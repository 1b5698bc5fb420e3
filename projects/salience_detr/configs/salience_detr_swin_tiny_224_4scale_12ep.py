"""Salience DETR Swin-T (ImageNet 224) 4-scale, 12 epochs on COCO (the R50 config's recipe, images without
objects filtered out)."""

from ...dino.configs.models.backbones import SWIN_TINY_224_WEIGHTS
from .models.salience_detr_swin_tiny_224 import model
from .salience_detr_r50_4scale_12ep import dataloader, lr_multiplier, optimizer, train

train.init_checkpoint = SWIN_TINY_224_WEIGHTS
train.output_dir = "./output/salience_detr_swin_tiny_224_4scale_12ep"
model.device = train.device
dataloader.train.dataset.filter_empty = True
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
