"""detrex's own ``tools/train_net.py`` runs detrkit's shapes configs unchanged: each paper's trains a few
iterations under detrex's trainer and detectron2's hooks, ``--resume`` continues, and the README's recipe
(the command line, through tools/run_detrex_on_cpu.py) trains and evaluates Salience DETR. And detrkit's
``tools/train_net.py`` trains detrex's own DINO and H-Deformable-DETR configs."""

import subprocess
import sys

import pytest
import torch
from detrex_env import (
    DINO_CONFIG,
    H_DETR_CONFIG,
    REPO,
    skip_unless_available,
    tiny_detrex_config,
    train_with_detrex,
)

DETREX_ROOT = skip_unless_available()

from detectron2.config import LazyConfig

SHAPES_CONFIGS = [
    "dino/configs/dino_shapes.py",
    "salience_detr/configs/salience_detr_shapes.py",
    "focus_detr/configs/focus_detr_shapes.py",
    "rank_detr/configs/rank_detr_shapes.py",
    "stage_interactor/configs/dino_csla_shapes.py",
    "stage_interactor/configs/stageinteractor_shapes.py",
    "mix_and_match/configs/mix_salience_rank_csla_shapes.py",
    "mix_and_match/configs/mix_focus_rank_csla_shapes.py",
]


def load(config: str):
    """A shipped config, loaded by detectron2's LazyConfig as detrex's train_net does, at batch 2."""
    cfg = LazyConfig.load(str(REPO / "projects" / config))
    cfg.dataloader.train.total_batch_size = 2
    return cfg


@pytest.mark.parametrize("config", SHAPES_CONFIGS, ids=[c.split("/")[-1][:-3] for c in SHAPES_CONFIGS])
def test_shapes_config_trains_under_detrex(config, tmp_path):
    torch.manual_seed(0)
    records = train_with_detrex(load(config), tmp_path, max_iter=3)
    losses = [r for r in records if "total_loss" in r]
    assert [r["iteration"] for r in losses] == [0, 1, 2]
    assert all(r["total_loss"] == r["total_loss"] for r in losses)  # not NaN
    assert (tmp_path / "model_final.pth").is_file()


def test_resume_under_detrex(tmp_path):
    cfg = load("dino/configs/dino_shapes.py")
    cfg.train.checkpointer.period = 1
    train_with_detrex(cfg, tmp_path, max_iter=2)
    assert (tmp_path / "last_checkpoint").read_text().strip() == "model_final.pth"
    records = train_with_detrex(load("dino/configs/dino_shapes.py"), tmp_path, max_iter=4, resume=True)
    # metrics.json is appended to: the resumed run went on at iteration 2 (a fresh start would repeat 0, 1)
    assert [r["iteration"] for r in records if "total_loss" in r] == [0, 1, 2, 3]
    final = torch.load(tmp_path / "model_final.pth", map_location="cpu", weights_only=False)
    assert final["iteration"] == 3


def test_the_readme_recipe_trains_and_evaluates_salience_detr(tmp_path):
    command = [
        sys.executable,
        str(REPO / "tools" / "run_detrex_on_cpu.py"),
        "tools/train_net.py",
        "--config-file",
        str(REPO / "projects/salience_detr/configs/salience_detr_shapes.py"),
        "train.max_iter=2",
        f"train.output_dir={tmp_path}",
        "dataloader.train.total_batch_size=2",
    ]
    result = subprocess.run(command, cwd=DETREX_ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "copypaste: AP,AP50,AP75" in log  # detectron2's evaluation printout of our COCOEvaluator
    assert (tmp_path / "coco_instances_results.json").is_file()


@pytest.mark.parametrize("config", [DINO_CONFIG, H_DETR_CONFIG], ids=["dino", "h_deformable_detr"])
def test_detrkit_train_net_trains_detrex_s_own_config(config, tmp_path):
    torch.manual_seed(0)
    records = train_with_detrex(tiny_detrex_config(config), tmp_path, max_iter=3, trainer="detrkit")
    assert [r["iteration"] for r in records if "total_loss" in r] == [0, 1, 2]
    assert (tmp_path / "model_final.pth").is_file()
