"""The DINO / H-Deformable-DETR configs: they load, build the published models (parameter counts and
GFLOPs of the official detrex code, measured with fvcore on one 3x800x1333 image), and train with the real
criteria at tiny sizes."""

from pathlib import Path

import pytest
import torch

from detrkit.config import LazyConfig, instantiate
from detrkit.structures import Boxes, Instances
from detrkit.utils.analysis import flop_count, trainable_parameter_count

CONFIGS = Path(__file__).parents[3] / "projects" / "dino" / "configs"

# Measured from detrex's own DINO R50 4-scale and H-Deformable-DETR R50 two-stage code (fvcore, 800x1333).
OFFICIAL = {
    "dino_r50_4scale_12ep.py": (47_640_908, 292.7),
    "h_deformable_detr_r50_two_stage_12ep.py": (47_916_876, 282.9),
}


def load(name: str, overrides=()):
    cfg = LazyConfig.load(str(CONFIGS / name))
    cfg.model.device = "cpu"
    return LazyConfig.apply_overrides(cfg, list(overrides))


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_parameters_and_gflops_match_the_official_models(name):
    params, gflops = OFFICIAL[name]
    model = instantiate(load(name).model)
    assert trainable_parameter_count(model) == pytest.approx(params, rel=0.005)
    ours, _ = flop_count(model, torch.zeros(3, 800, 1333, dtype=torch.uint8))
    assert ours == pytest.approx(gflops, rel=0.03)


@pytest.mark.parametrize(
    "epochs, max_iter, drop", [(12, 90000, 82500), (24, 180000, 150000), (36, 270000, 225000)]
)
def test_dino_schedules(epochs, max_iter, drop):
    cfg = load(f"dino_r50_4scale_{epochs}ep.py")
    assert cfg.train.max_iter == max_iter
    multiplier = instantiate(cfg.lr_multiplier)
    assert multiplier((drop - 1) / max_iter) == 1.0 and multiplier(drop / max_iter) == pytest.approx(0.1)
    assert cfg.optimizer.lr == 1e-4 and cfg.train.clip_grad.params.max_norm == 0.1


TINY = [
    "model.backbone.depth=18",
    "model.neck.input_shapes.res3.channels=128",
    "model.neck.input_shapes.res4.channels=256",
    "model.neck.input_shapes.res5.channels=512",
    "model.transformer.encoder.num_layers=1",
    "model.transformer.encoder.feedforward_dim=64",
    "model.transformer.decoder.feedforward_dim=64",
    "model.num_classes=3",
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


@pytest.mark.parametrize(
    "name, extra",
    [
        ("dino_r50_4scale_12ep.py", ["model.num_queries=20", "model.dn_number=10"]),
        (
            "h_deformable_detr_r50_two_stage_12ep.py",
            [
                "model.num_queries_one2one=10",
                "model.num_queries_one2many=15",
                "model.transformer.two_stage_num_proposals=25",
                "model.criterion.criterion.num_classes=3",
            ],
        ),
    ],
)
def test_trains_with_the_real_criterion(name, extra):
    torch.manual_seed(0)
    model = instantiate(load(name, TINY + extra).model)
    model.train()
    losses = model(tiny_batch())
    assert set(losses) == set(model.criterion.weight_dict)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    model.eval()
    with torch.no_grad():
        result = model(tiny_batch()[:1])[0]["instances"]
    assert result.image_size == (64, 64) and len(result) > 0


def test_shapes_config_builds_dino_on_imagenet_mobilenet_and_trains():
    cfg = load("dino_shapes.py")
    model = instantiate(cfg.model)
    imagenet = torch.load(instantiate(cfg.model.backbone.path), weights_only=True)  # a lazy call: path
    assert torch.equal(model.backbone.features[0][0].weight, imagenet["features.0.0.weight"])
    assert cfg.train.max_iter * cfg.dataloader.train.total_batch_size > 0
    assert (model.num_queries, model.transformer.num_feature_levels) == (100, 3)
    model.train()
    losses = model(tiny_batch(size=128))  # 3 levels of 16x16, 8x8, 4x4 tokens: enough for 100 queries
    assert set(losses) == set(model.criterion.weight_dict) and all(torch.isfinite(v) for v in losses.values())
