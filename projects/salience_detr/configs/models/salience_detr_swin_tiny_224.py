"""Salience DETR Swin-T (ImageNet 224) 4-scale: levels p1-p3 of Swin-T (192/384/768 channels) + one extra
level, drop path 0.1 (the backbone of detrex's Swin-T DINO configs)."""

from ....dino.configs.models.backbones import set_swin_tiny_224_backbone
from .salience_detr_r50 import model

set_swin_tiny_224_backbone(model, drop_path_rate=0.1)
