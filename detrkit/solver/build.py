"""Optimizer parameter groups with per-parameter learning rate and weight decay rules."""

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["get_default_optimizer_params"]

NORM_MODULE_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def get_default_optimizer_params(
    model: nn.Module,
    base_lr: float | None = None,
    weight_decay: float | None = None,
    weight_decay_norm: float | None = None,
    bias_lr_factor: float | None = 1.0,
    weight_decay_bias: float | None = None,
    lr_factor_func: Callable[[str], float] | None = None,
    overrides: dict[str, dict[str, float]] | None = None,
) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim`` optimizers (same arguments as detectron2's).

    Args:
        model: the model; each trainable parameter is listed once (shared parameters too).
        base_lr: lr of every group; ``None`` leaves it to the optimizer's ``lr``.
        weight_decay: weight decay of every group; ``None`` leaves it to the optimizer.
        weight_decay_norm: weight decay of the parameters of normalization layers (BatchNorm,
            GroupNorm, LayerNorm, ...), e.g. 0.0.
        bias_lr_factor: lr multiplier of parameters named ``bias`` (needs ``base_lr``).
        weight_decay_bias: weight decay of parameters named ``bias``.
        lr_factor_func: maps a full parameter name (``"backbone.conv1.weight"``) to an lr multiplier,
            e.g. 0.1 for the backbone (needs ``base_lr``).
        overrides: hyperparameters by parameter name within its module, e.g.
            ``{"embedding": {"lr": 0.01, "weight_decay": 0.0}}``; applied last.

    Returns:
        a list of ``{"params": [...], "lr": ..., "weight_decay": ...}``, one group per distinct set of
        hyperparameters, in the order parameters first appear in ``model.named_modules()``.
    """
    overrides = dict(overrides or {})
    defaults: dict[str, float] = {}
    if base_lr is not None:
        defaults["lr"] = base_lr
    if weight_decay is not None:
        defaults["weight_decay"] = weight_decay
    if (bias_lr_factor not in (None, 1.0) or lr_factor_func is not None) and base_lr is None:
        raise ValueError("bias_lr_factor and lr_factor_func need base_lr")
    bias_overrides: dict[str, float] = {}
    if bias_lr_factor not in (None, 1.0):
        bias_overrides["lr"] = base_lr * bias_lr_factor
    if weight_decay_bias is not None:
        bias_overrides["weight_decay"] = weight_decay_bias
    if bias_overrides:
        if "bias" in overrides:
            raise ValueError("overrides['bias'] conflicts with bias_lr_factor/weight_decay_bias")
        overrides["bias"] = bias_overrides

    groups: dict[tuple, list[torch.nn.Parameter]] = {}
    seen: set[torch.nn.Parameter] = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or param in seen:
                continue
            seen.add(param)
            hyperparams = dict(defaults)
            if weight_decay_norm is not None and isinstance(module, NORM_MODULE_TYPES):
                hyperparams["weight_decay"] = weight_decay_norm
            if lr_factor_func is not None:
                full_name = f"{module_name}.{param_name}" if module_name else param_name
                hyperparams["lr"] *= lr_factor_func(full_name)
            hyperparams.update(overrides.get(param_name, {}))
            groups.setdefault(tuple(sorted(hyperparams.items())), []).append(param)
    return [{"params": params, **dict(key)} for key, params in groups.items()]
