"""Optimizer parameter groups and learning-rate schedules (detectron2.solver equivalents)."""

from detrkit.solver.build import get_default_optimizer_params
from detrkit.solver.lr_scheduler import LRMultiplier, WarmupParamScheduler

__all__ = ["LRMultiplier", "WarmupParamScheduler", "get_default_optimizer_params"]
