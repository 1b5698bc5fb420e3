"""Detectors (detectron2 model I/O): DINO and H-Deformable-DETR on the shared two-stage base."""

from detrkit.modeling.meta_arch.dino import DINO
from detrkit.modeling.meta_arch.h_deformable_detr import HDeformableDETR
from detrkit.modeling.meta_arch.two_stage_detr import TwoStageDETR

__all__ = ["DINO", "HDeformableDETR", "TwoStageDETR"]
