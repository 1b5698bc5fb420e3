"""Every shipped config carries every ``train`` key that detrex's ``tools/train_net.py`` and detectron2's
``default_setup`` read, with detrex's defaults where the config does not set its own value, so detrex's
train_net runs our configs unchanged (tests/integration runs it)."""

import pytest
from omegaconf import OmegaConf

from detrkit.config import LazyConfig, get_config
from detrkit.config.project_configs import project_config_files

# detrex's configs/common/train.py (commit e244e6c): every key, with its default
DETREX_TRAIN = {
    "output_dir": "./output",
    "init_checkpoint": "",
    "max_iter": 90000,
    "amp": {"enabled": False},
    "ddp": {"broadcast_buffers": False, "find_unused_parameters": False, "fp16_compression": False},
    "clip_grad": {"enabled": False, "params": {"max_norm": 0.1, "norm_type": 2}},
    "seed": -1,
    "fast_dev_run": {"enabled": False},
    "checkpointer": {"period": 5000, "max_to_keep": 100},
    "eval_period": 5000,
    "log_period": 20,
    "wandb": {
        "enabled": False,
        "params": {"dir": "./wandb_output", "project": "detrex", "name": "detrex_experiment"},
    },
    "model_ema": {"enabled": False, "decay": 0.999, "device": "", "use_ema_weights_for_eval_only": False},
    "device": "cuda",
}
CONFIGS = [c for c in project_config_files() if c.name != "coco_r50_common.py"]


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_common_train_has_detrex_s_keys_and_defaults():
    ours = flatten(OmegaConf.to_container(get_config("common/train.py").train, resolve=True))
    detrex = flatten(DETREX_TRAIN)
    assert set(detrex) <= set(ours), sorted(set(detrex) - set(ours))
    # the device is the one default that differs: detrkit falls back to the CPU without a GPU
    assert {k: ours[k] for k in detrex if k != "device"} == {k: v for k, v in detrex.items() if k != "device"}


@pytest.mark.parametrize("path", CONFIGS, ids=[f"{p.parents[1].name}/{p.name}" for p in CONFIGS])
def test_shipped_config_has_every_detrex_train_key(path):
    cfg = LazyConfig.load(str(path))
    train = flatten(OmegaConf.to_container(cfg.train, resolve=False))
    for key, default in flatten(DETREX_TRAIN).items():
        assert key in train, f"{path.name}: train.{key} is missing"
        assert isinstance(train[key], type(default)) or train[key] is None, (
            f"{path.name}: train.{key}={train[key]!r} is not a {type(default).__name__}"
        )
