"""The StageInteractor detector configs: the COCO recipes (schedule, optimizer, queries), the R50 model's
trainable parameter count, and the shapes config building on the demo's ImageNet MobileNetV2 and training."""

from pathlib import Path

import pytest
import torch
from tiny_configs import config_loader

from detrkit.config import instantiate
from detrkit.structures import Boxes, Instances
from detrkit.utils.analysis import trainable_parameter_count

CONFIGS = Path(__file__).parents[3] / "projects" / "stage_interactor" / "configs"

# tools/analyze_model.py --tasks parameter on stageinteractor_r50_1x_coco.py (the project README)
R50_TRAINABLE_PARAMETERS = 136_672_264


load = config_loader(CONFIGS)


def test_1x_recipe_is_the_official_one():
    cfg = load("stageinteractor_r50_1x_coco.py")
    assert (cfg.optimizer.lr, cfg.optimizer.weight_decay) == (2.5e-5, 1e-4)
    assert cfg.train.clip_grad.enabled and cfg.train.clip_grad.params.max_norm == 1.0
    assert cfg.train.max_iter == 90000 and cfg.dataloader.train.total_batch_size == 16
    scheduler = instantiate(cfg.lr_multiplier)
    assert scheduler(250 / 90000) == pytest.approx(0.001 + 0.999 * 0.5, rel=1e-3)
    assert scheduler(59999 / 90000) == 1.0
    assert scheduler(60001 / 90000) == pytest.approx(0.1)
    assert scheduler(82501 / 90000) == pytest.approx(0.01)
    assert cfg.model.query_generator.num_queries == 100 and cfg.model.decoder.num_stages == 6


def test_3x_recipe_has_300_queries_crop_augmentation_and_36_epochs():
    cfg = load("stageinteractor_r50_300_query_crop_mstrain_480-800_3x_coco.py")
    assert cfg.model.query_generator.num_queries == 300 and cfg.model.select_box_nums_for_evaluation == 300
    assert cfg.dataloader.train.mapper.augmentation_with_crop is not None
    assert cfg.train.max_iter == 270000
    scheduler = instantiate(cfg.lr_multiplier)
    assert scheduler(179999 / 270000) == 1.0 and scheduler(180001 / 270000) == pytest.approx(0.1)
    assert scheduler(247501 / 270000) == pytest.approx(0.01)


def test_r50_model_parameter_count():
    model = instantiate(load("stageinteractor_r50_1x_coco.py").model)
    assert trainable_parameter_count(model) == R50_TRAINABLE_PARAMETERS


def test_shapes_config_builds_on_imagenet_mobilenet_and_trains():
    cfg = load("stageinteractor_shapes.py")
    model = instantiate(cfg.model)
    imagenet = torch.load(instantiate(cfg.model.backbone.path), weights_only=True)
    assert torch.equal(model.backbone.features[0][0].weight, imagenet["features.0.0.weight"])
    assert model.feature_strides == (8, 16, 32) and len(model.decoder.stages) == 3
    assert [s.mixing.num_reused_filters for s in model.decoder.stages] == [0, 1, 2]
    instances = Instances((96, 128))
    instances.gt_boxes = Boxes(torch.tensor([[10.0, 20.0, 60.0, 70.0]]))
    instances.gt_classes = torch.tensor([2])
    model.train()
    losses = model([{"image": torch.rand(3, 96, 128) * 255, "instances": instances}])
    assert set(losses) == set(model.criterion.weight_dict) and all(torch.isfinite(v) for v in losses.values())
