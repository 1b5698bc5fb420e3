"""The Salience DETR configs: they load, build the official model's parameter counts (xiuqhou/Salience-DETR
`salience_detr_resnet50_800_1333.py`, 91 classes: 55,858,095 trainable; 49,190,301 without token fusion),
and train and evaluate with the real criterion at tiny sizes (the shapes config included)."""

from pathlib import Path

import pytest
import torch
from tiny_configs import TINY, config_loader, tiny_batch, train_and_evaluate

from detrkit.config import instantiate
from detrkit.utils.analysis import trainable_parameter_count

CONFIGS = Path(__file__).parents[3] / "projects" / "salience_detr" / "configs"


load = config_loader(CONFIGS)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("salience_detr_r50_4scale_12ep.py", 55_858_095),
        ("salience_detr_r50_4scale_12ep_noctf.py", 49_190_301),
    ],
)
def test_r50_has_the_official_parameter_count(name, expected):
    model = instantiate(load(name, ["model.num_classes=91"]).model)
    assert trainable_parameter_count(model) == expected
    assert model.transformer.encoder.class_heads[0] is model.class_embed[-1]


@pytest.mark.parametrize(
    "name", ["salience_detr_r50_4scale_24ep.py", "salience_detr_swin_tiny_224_4scale_12ep.py"]
)
def test_variants_load(name):
    cfg = load(name)
    assert cfg.model.criterion.weight_dict["loss_salience"] == 2.0
    assert cfg.model.transformer.token_selector.level_ratios == (0.4, 0.8, 1.0, 1.0)
    assert cfg.model.transformer.token_fusion is not None


SALIENCE_TINY = [
    *TINY,
    "model.transformer.encoder.num_layers=2",
    "model.transformer.token_selector.layer_ratios=[1.0,0.5]",
    "model.num_queries=20",
    "model.dn_number=10",
    "+model.transformer.token_fusion.num_blocks=1",
]


def train_and_evaluate_salience(model, size):
    """A training and evaluation step on a padded batch (the second image 16 px narrower), with the
    salience loss."""
    assert "loss_salience" in train_and_evaluate(model, tiny_batch(size, second_width=size - 16))


def test_trains_with_the_real_criterion():
    torch.manual_seed(0)
    train_and_evaluate_salience(
        instantiate(load("salience_detr_r50_4scale_12ep.py", SALIENCE_TINY).model), 96
    )


def test_shapes_config_trains_and_evaluates():
    torch.manual_seed(0)
    model = instantiate(load("salience_detr_shapes.py").model)
    assert model.transformer.token_selector.level_ratios == (0.4, 0.8, 1.0)
    train_and_evaluate_salience(model, 128)


def test_the_added_modules_follow_an_embed_dim_override():
    cfg = load("salience_detr_r50_4scale_12ep.py", ["model.embed_dim=64"])
    transformer = cfg.model.transformer
    modules = (transformer.query_selector, transformer.background_embedding, transformer.token_fusion)
    assert [m.embed_dim for m in modules] == [64, 64, 64]
