"""Training engine with detectron2's names: ``launch``, the default command line and set-up, trainers
(``SimpleTrainer``, ``AMPTrainer``), ``hooks`` and model EMA."""

from detrkit.engine import hooks
from detrkit.engine.defaults import (
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
)
from detrkit.engine.ema import ModelEMA
from detrkit.engine.launch import launch
from detrkit.engine.train_loop import AMPTrainer, HookBase, SimpleTrainer, TrainerBase

__all__ = [
    "AMPTrainer",
    "HookBase",
    "ModelEMA",
    "SimpleTrainer",
    "TrainerBase",
    "create_ddp_model",
    "default_argument_parser",
    "default_setup",
    "default_writers",
    "hooks",
    "launch",
]
