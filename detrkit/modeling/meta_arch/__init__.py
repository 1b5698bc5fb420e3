"""Detectors (detectron2 model I/O): DINO and H-Deformable-DETR on the shared two-stage base, itself on the
query-based detectors' base."""

from detrkit.modeling.meta_arch.dino import DINO
from detrkit.modeling.meta_arch.h_deformable_detr import HDeformableDETR
from detrkit.modeling.meta_arch.query_detector import QueryDetector
from detrkit.modeling.meta_arch.two_stage_detr import TwoStageDETR

__all__ = ["DINO", "HDeformableDETR", "QueryDetector", "TwoStageDETR"]
