"""The Focus-DETR configs: they load, build the official model's parameter count (detrex
`focus_detr_r50_4scale_12ep.py`: 49,330,512, fvcore), select the published token counts, and train and
evaluate with the real criterion at tiny sizes (the shapes config included)."""

from pathlib import Path

import pytest
import torch

from detrkit.config import LazyConfig, instantiate
from detrkit.structures import Boxes, Instances
from detrkit.utils.analysis import trainable_parameter_count

CONFIGS = Path(__file__).parents[3] / "projects" / "focus_detr" / "configs"


def load(name: str, overrides=()):
    cfg = LazyConfig.load(str(CONFIGS / name))
    cfg.model.device = "cpu"
    return LazyConfig.apply_overrides(cfg, list(overrides))


def test_r50_has_the_official_parameter_count():
    model = instantiate(load("focus_detr_r50_4scale_12ep.py").model)
    assert trainable_parameter_count(model) == pytest.approx(49_330_512, rel=0.005)
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
]


def tiny_batch(size: int = 64):
    g = torch.Generator().manual_seed(0)
    batch = []
    for boxes, classes in [([[4.0, 6, 40, 30], [20, 20, 60, 62]], [0, 2]), ([], [])]:
        instances = Instances((size, size))
        instances.gt_boxes = Boxes(torch.tensor(boxes).reshape(-1, 4))
        instances.gt_classes = torch.tensor(classes, dtype=torch.int64)
        image = torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
        batch.append({"image": image, "height": size, "width": size, "instances": instances})
    return batch


def train_and_evaluate(model, size):
    model.train()
    losses = model(tiny_batch(size))
    assert set(losses) == set(model.criterion.weight_dict) and "loss_select" in losses
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    assert model.transformer.token_scorer.alpha.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        result = model(tiny_batch(size)[:1])[0]["instances"]
    assert result.image_size == (size, size) and len(result) > 0


def test_trains_with_the_real_criterion():
    torch.manual_seed(0)
    train_and_evaluate(instantiate(load("focus_detr_r50_4scale_12ep.py", TINY).model), 64)


def test_shapes_config_trains_and_evaluates():
    torch.manual_seed(0)
    cfg = load("focus_detr_shapes.py")
    model = instantiate(cfg.model)
    assert model.transformer.token_selector.layer_ratios == (1.0,)
    train_and_evaluate(model, 128)
