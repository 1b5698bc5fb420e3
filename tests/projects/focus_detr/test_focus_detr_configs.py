"""The Focus-DETR configs: they load, build the official model's parameter count (detrex
`focus_detr_r50_4scale_12ep.py`: 49,330,512, fvcore), select the published token counts, and train and
evaluate with the real criterion at tiny sizes (the shapes config included)."""

from pathlib import Path

import pytest
import torch
from tiny_configs import TINY, config_loader, tiny_batch, train_and_evaluate

from detrkit.config import instantiate
from detrkit.utils.analysis import trainable_parameter_count

CONFIGS = Path(__file__).parents[3] / "projects" / "focus_detr" / "configs"


load = config_loader(CONFIGS)


def test_r50_has_the_official_parameter_count():
    model = instantiate(load("focus_detr_r50_4scale_12ep.py").model)
    assert trainable_parameter_count(model) == 49_330_512
    assert model.transformer.encoder.class_heads[0] is model.class_embed[-1]


def conv_stride2(size: int) -> int:
    """Output size of the stride-2 convolutions/pooling of ResNet and of the extra level (pads k // 2)."""
    return (size - 1) // 2 + 1


def test_encoder_tokens_per_layer_at_800x1333():
    cfg = load("focus_detr_r50_4scale_12ep.py")
    height, width = 800, 1333
    shapes = []
    for halvings in range(6):  # stem conv, max pool, res3, res4, res5, extra level
        height, width = conv_stride2(height), conv_stride2(width)
        if halvings >= 2:
            shapes.append((height, width))
    assert shapes == [(100, 167), (50, 84), (25, 42), (13, 21)]
    num_tokens = sum(h * w for h, w in shapes)
    selector = instantiate(cfg.model.transformer.token_selector)
    selection = selector(torch.randn(1, num_tokens), torch.zeros(1, num_tokens, dtype=torch.bool))
    assert [i.shape[1] for i in selection.layer_indices] == [11112, 8889, 6667, 6667, 4444, 2222]
    rho03 = instantiate(load("focus_detr_r50_4scale_36ep_rho03.py").model.transformer.token_selector)
    assert (
        rho03(torch.randn(1, num_tokens), torch.zeros(1, num_tokens, dtype=torch.bool))
        .layer_indices[0]
        .shape[1]
        == int(num_tokens * 0.3) + 1
    )


@pytest.mark.parametrize(
    "name",
    [
        "focus_detr_r50_4scale_24ep.py",
        "focus_detr_r101_4scale_12ep.py",
        "focus_detr_swin_tiny_224_4scale_12ep.py",
    ],
)
def test_variants_load(name):
    cfg = load(name)
    assert cfg.model.criterion.weight_dict["loss_select"] == 1.5
    assert cfg.model.transformer.token_selector.keep_ratio == 0.5


FOCUS_TINY = [
    *TINY,
    "model.transformer.encoder.num_layers=2",
    "model.transformer.token_selector.layer_ratios=[1.0,0.5]",
    "model.num_queries=20",
    "model.dn_number=10",
]


def train_and_evaluate_focus(model, size):
    """A training and evaluation step, with the selection loss and a gradient to the score modulation."""
    losses = train_and_evaluate(model, tiny_batch(size))
    assert "loss_select" in losses and model.transformer.token_scorer.alpha.grad.abs().sum() > 0


def test_trains_with_the_real_criterion():
    torch.manual_seed(0)
    train_and_evaluate_focus(instantiate(load("focus_detr_r50_4scale_12ep.py", FOCUS_TINY).model), 64)


def test_shapes_config_trains_and_evaluates():
    torch.manual_seed(0)
    cfg = load("focus_detr_shapes.py")
    model = instantiate(cfg.model)
    assert model.transformer.token_selector.layer_ratios == (1.0,)
    train_and_evaluate_focus(model, 128)
