"""The Salience DETR configs: they load, build the official model's parameter counts (xiuqhou/Salience-DETR
`salience_detr_resnet50_800_1333.py`, 91 classes: 55,858,095 trainable; 49,190,301 without token fusion),
and train and evaluate with the real criterion at tiny sizes (the shapes config included)."""

from pathlib import Path

import pytest
import torch

from detrkit.config import LazyConfig, instantiate
from detrkit.structures import Boxes, Instances
from detrkit.utils.analysis import trainable_parameter_count

CONFIGS = Path(__file__).parents[3] / "projects" / "salience_detr" / "configs"


def load(name: str, overrides=()):
    cfg = LazyConfig.load(str(CONFIGS / name))
    cfg.model.device = "cpu"
    return LazyConfig.apply_overrides(cfg, list(overrides))


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


TINY = [
    "model.backbone.depth=18",
    "model.neck.input_shapes.res3.channels=128",
    "model.neck.input_shapes.res4.channels=256",
    "model.neck.input_shapes.res5.channels=512",
    "model.transformer.encoder.num_layers=2",
    "model.transformer.token_selector.layer_ratios=[1.0,0.5]",
    "model.transformer.encoder.feedforward_dim=64",
    "model.transformer.decoder.feedforward_dim=64",
    "model.num_classes=3",
    "model.num_queries=20",
    "model.dn_number=10",
    "model.select_box_nums_for_evaluation=20",
    "+model.transformer.token_fusion.num_blocks=1",
]


def tiny_batch(size: int):
    g = torch.Generator().manual_seed(0)
    batch = []
    for boxes, classes, width in [([[4.0, 6, 40, 30], [20, 20, 60, 62]], [0, 2], size), ([], [], size - 16)]:
        instances = Instances((size, width))
        instances.gt_boxes = Boxes(torch.tensor(boxes).reshape(-1, 4))
        instances.gt_classes = torch.tensor(classes, dtype=torch.int64)
        image = torch.randint(0, 256, (3, size, width), generator=g, dtype=torch.uint8)
        batch.append({"image": image, "height": size, "width": width, "instances": instances})
    return batch


def train_and_evaluate(model, size):
    model.train()
    losses = model(tiny_batch(size))
    assert set(losses) == set(model.criterion.weight_dict) and "loss_salience" in losses
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    model.eval()
    with torch.no_grad():
        result = model(tiny_batch(size)[:1])[0]["instances"]
    assert result.image_size == (size, size) and len(result) > 0


def test_trains_with_the_real_criterion():
    torch.manual_seed(0)
    train_and_evaluate(instantiate(load("salience_detr_r50_4scale_12ep.py", TINY).model), 96)


def test_shapes_config_trains_and_evaluates():
    torch.manual_seed(0)
    model = instantiate(load("salience_detr_shapes.py").model)
    assert model.transformer.token_selector.level_ratios == (0.4, 0.8, 1.0)
    train_and_evaluate(model, 128)
