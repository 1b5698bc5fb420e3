"""Every shipped config loads with detectron2's LazyConfig and builds with its ``instantiate``: the model, the
optimizer on it and the LR schedule; the data loaders too for the shapes configs (COCO's need the images)."""

from pathlib import Path

import pytest
from detrex_env import skip_unless_available

skip_unless_available()

from detectron2.config import LazyConfig, instantiate

from detrkit.config.project_configs import project_config_files

CONFIGS = [p for p in project_config_files() if p.name != "coco_r50_common.py"]


@pytest.mark.parametrize("path", CONFIGS, ids=[f"{p.parents[1].name}/{p.name}" for p in CONFIGS])
def test_detectron2_builds_the_config(path: Path):
    cfg = LazyConfig.load(str(path))
    cfg.train.init_checkpoint = ""
    if "device" in cfg.model:
        cfg.model.device = "cpu"
    model = instantiate(cfg.model)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == sum(
        1 for p in model.parameters() if p.requires_grad
    )
    assert instantiate(cfg.lr_multiplier)(0.0) > 0
    if path.name.endswith("_shapes.py"):
        cfg.dataloader.train.num_workers = 0
        batch = next(iter(instantiate(cfg.dataloader.train)))
        assert len(batch) == cfg.dataloader.train.total_batch_size and "instances" in batch[0]
        assert len(instantiate(cfg.dataloader.test)) > 0
