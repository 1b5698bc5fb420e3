"""Checkpoints with detectron2's names: ``DetectionCheckpointer`` (atomic writes, resume, detectron2 ``.pkl``
and torchvision ``.pth`` weights) and fvcore's ``PeriodicCheckpointer``."""

from fvcore.common.checkpoint import Checkpointer, PeriodicCheckpointer

from detrkit.checkpoint.detection_checkpoint import DetectionCheckpointer
from detrkit.checkpoint.key_matching import align_and_update_state_dicts

__all__ = ["Checkpointer", "DetectionCheckpointer", "PeriodicCheckpointer", "align_and_update_state_dicts"]
