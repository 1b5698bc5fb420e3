"""The DINO / H-Deformable-DETR configs: they load, build the published models (parameter counts and
GFLOPs of the official detrex code, measured with fvcore on one 3x800x1333 image), and train with the real
criteria at tiny sizes."""

from pathlib import Path

import pytest
import torch
from tiny_configs import TINY, config_loader, tiny_batch, train_and_evaluate

from detrkit.config import instantiate
from detrkit.utils.analysis import flop_count, trainable_parameter_count

REPO = Path(__file__).parents[3]
CONFIGS = REPO / "projects" / "dino" / "configs"

# Measured from detrex's own DINO R50 4-scale and H-Deformable-DETR R50 two-stage code (fvcore, 800x1333).
OFFICIAL = {
    "dino_r50_4scale_12ep.py": (47_640_908, 292.7),
    "h_deformable_detr_r50_two_stage_12ep.py": (47_916_876, 282.9),
}


load = config_loader(CONFIGS)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_parameters_and_gflops_match_the_official_models(name):
    params, gflops = OFFICIAL[name]
    model = instantiate(load(name).model)
    assert trainable_parameter_count(model) == params
    ours, _ = flop_count(model, torch.zeros(3, 800, 1333, dtype=torch.uint8))
    assert ours == pytest.approx(gflops, rel=0.03)


# The configs that take their backbone and neck inputs from configs/models/backbones.py: trainable parameters
# of the backbone and of the whole model, as counted when each config had its own copy of the backbone block
# (Swin-T with its three output norms; MobileNetV2 with its stem frozen).
SHARED_BACKBONE_CONFIGS = {
    "projects/focus_detr/configs/focus_detr_swin_tiny_224_4scale_12ep.py": (27_520_506, 49_882_954),
    "projects/salience_detr/configs/salience_detr_swin_tiny_224_4scale_12ep.py": (27_520_506, 56_600_924),
    "projects/rank_detr/configs/rank_detr_swin_tiny_two_stage_12ep.py": (27_520_506, 52_622_918),
    "projects/dino/configs/dino_shapes.py": (2_188_096, 6_044_636),
    "projects/stage_interactor/configs/stageinteractor_shapes.py": (2_188_096, 22_903_637),
}


@pytest.mark.parametrize("name", sorted(SHARED_BACKBONE_CONFIGS))
def test_shared_backbones_parameter_counts(name):
    model = instantiate(load(REPO / name).model)
    counts = (trainable_parameter_count(model.backbone), trainable_parameter_count(model))
    assert counts == SHARED_BACKBONE_CONFIGS[name]


@pytest.mark.parametrize(
    "epochs, max_iter, drop", [(12, 90000, 82500), (24, 180000, 150000), (36, 270000, 225000)]
)
def test_dino_schedules(epochs, max_iter, drop):
    cfg = load(f"dino_r50_4scale_{epochs}ep.py")
    assert cfg.train.max_iter == max_iter
    multiplier = instantiate(cfg.lr_multiplier)
    assert multiplier((drop - 1) / max_iter) == 1.0 and multiplier(drop / max_iter) == pytest.approx(0.1)
    assert cfg.optimizer.lr == 1e-4 and cfg.train.clip_grad.params.max_norm == 0.1


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
    train_and_evaluate(instantiate(load(name, TINY + extra).model), tiny_batch())


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
