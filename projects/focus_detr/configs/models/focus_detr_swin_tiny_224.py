"""Focus-DETR Swin-T (ImageNet 224) 4-scale (detrex's `focus_detr_swin_tiny_224.py`): levels p1-p3 of Swin-T
(192/384/768 channels) + one extra level, drop path 0.1."""

from ....dino.configs.models.backbones import set_swin_tiny_224_backbone
from .focus_detr_r50 import model

set_swin_tiny_224_backbone(model, drop_path_rate=0.1)
