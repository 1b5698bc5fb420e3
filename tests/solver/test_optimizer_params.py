"""get_default_optimizer_params on a hand-built model with hand-written expected groups."""

import pytest
import torch
from torch import nn

from detrkit.solver import get_default_optimizer_params


class TinyDetector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
        self.head = nn.Linear(4, 2)
        self.norm = nn.LayerNorm(2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)
        self.head_alias = self.head  # shared module: its parameters must be listed once


def hyperparams_by_name(model, groups):
    names = {id(p): n for n, p in model.named_parameters()}
    listed = [names[id(p)] for g in groups for p in g["params"]]
    assert len(listed) == len(set(listed)), "a parameter is in two groups"
    return {names[id(p)]: {k: v for k, v in g.items() if k != "params"} for g in groups for p in g["params"]}


def test_norm_bias_and_backbone_rules():
    model = TinyDetector()
    groups = get_default_optimizer_params(
        model,
        base_lr=1.0,
        weight_decay=0.1,
        weight_decay_norm=0.0,
        weight_decay_bias=0.05,
        lr_factor_func=lambda name: 0.1 if name.startswith("backbone.") else 1.0,
    )
    # the bias rule is an override of the parameter name "bias": it comes last, also for norm layers
    assert hyperparams_by_name(model, groups) == {
        "backbone.0.weight": {"lr": 0.1, "weight_decay": 0.1},
        "backbone.0.bias": {"lr": 0.1, "weight_decay": 0.05},
        "backbone.1.weight": {"lr": 0.1, "weight_decay": 0.0},
        "backbone.1.bias": {"lr": 0.1, "weight_decay": 0.05},
        "head.weight": {"lr": 1.0, "weight_decay": 0.1},
        "head.bias": {"lr": 1.0, "weight_decay": 0.05},
        "norm.weight": {"lr": 1.0, "weight_decay": 0.0},
        "norm.bias": {"lr": 1.0, "weight_decay": 0.05},
    }
    assert len(groups) == 6  # parameters with equal hyperparameters share a group


def test_defaults_are_left_to_the_optimizer():
    model = TinyDetector()
    groups = get_default_optimizer_params(model)
    assert len(groups) == 1 and set(groups[0]) == {"params"}
    assert [id(p) for p in groups[0]["params"]] == [id(p) for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(groups, lr=0.5, weight_decay=0.2)
    assert optimizer.param_groups[0]["lr"] == 0.5


def test_bias_lr_factor_and_overrides():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    groups = get_default_optimizer_params(
        model, base_lr=0.1, bias_lr_factor=2.0, weight_decay_norm=0.0, overrides={"weight": {"lr": 5.0}}
    )
    assert hyperparams_by_name(model, groups) == {
        "0.weight": {"lr": 5.0},
        "0.bias": {"lr": 0.2},
        "1.weight": {"lr": 5.0, "weight_decay": 0.0},
        "1.bias": {"lr": 0.2, "weight_decay": 0.0},
    }


@pytest.mark.parametrize("kwargs", [dict(lr_factor_func=lambda name: 1.0), dict(bias_lr_factor=2.0)])
def test_lr_factors_need_base_lr(kwargs):
    with pytest.raises(ValueError, match="base_lr"):
        get_default_optimizer_params(nn.Linear(2, 2), **kwargs)


def test_conflicting_bias_override():
    with pytest.raises(ValueError, match="overrides\\['bias'\\]"):
        get_default_optimizer_params(nn.Linear(2, 2), weight_decay_bias=0.0, overrides={"bias": {"lr": 1.0}})
