"""The configs shipped under detrkit/config/configs/common, loaded with get_config."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from detrkit.config import LazyConfig, get_config, get_config_file, instantiate


def tiny_model():
    return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))


def decay_by_param(optimizer):
    return {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}


def test_train_defaults():
    train = get_config("common/train.py").train
    assert train.output_dir == "./output" and train.init_checkpoint == "" and train.max_iter == 90000
    assert not train.amp.enabled and not train.clip_grad.enabled and not train.model_ema.enabled
    assert dict(train.ddp) == dict(
        broadcast_buffers=False, find_unused_parameters=False, fp16_compression=False
    )
    assert dict(train.clip_grad.params) == dict(max_norm=0.1, norm_type=2)
    assert dict(train.checkpointer) == dict(period=5000, max_to_keep=100)
    assert (train.eval_period, train.log_period, train.seed) == (5000, 20, -1)
    assert train.model_ema.decay == 0.999 and train.model_ema.device == ""
    assert train.device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_adamw_takes_lr_from_its_own_node():
    cfg = get_config("common/optim.py").AdamW
    cfg.lr = 2e-4
    model = tiny_model()
    cfg.params.model = model
    optimizer = instantiate(cfg)
    assert isinstance(optimizer, torch.optim.AdamW) and tuple(optimizer.defaults["betas"]) == (0.9, 0.999)
    linear, norm = model
    assert decay_by_param(optimizer) == {
        id(linear.weight): (2e-4, 0.1),
        id(linear.bias): (2e-4, 0.1),
        id(norm.weight): (2e-4, 0.0),
        id(norm.bias): (2e-4, 0.0),
    }


def test_sgd():
    cfg = get_config("common/optim.py").SGD
    model = tiny_model()
    cfg.params.model = model
    optimizer = instantiate(cfg)
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    linear, norm = model
    assert decay_by_param(optimizer) == {
        id(linear.weight): (0.02, 1e-4),
        id(linear.bias): (0.02, 1e-4),
        id(norm.weight): (0.02, 0.0),
        id(norm.bias): (0.02, 0.0),
    }


@pytest.mark.parametrize(
    "name, total_iters, drop_iter",
    [
        ("lr_multiplier_12ep", 12 * 7500, 11 * 7500),
        ("lr_multiplier_24ep", 24 * 7500, 20 * 7500),
        ("lr_multiplier_36ep", 36 * 7500, 30 * 7500),
        ("lr_multiplier_50ep", 50 * 7500, 40 * 7500),
    ],
)
def test_coco_step_schedules(name, total_iters, drop_iter):
    multiplier = instantiate(get_config("common/coco_schedule.py")[name])
    # LRMultiplier evaluates the multiplier at iteration / max_iter
    for iteration, expected in [
        (0, 1.0),
        (1, 1.0),
        (drop_iter - 1, 1.0),
        (drop_iter, 0.1),
        (total_iters - 1, 0.1),
    ]:
        assert multiplier(iteration / total_iters) == pytest.approx(expected), iteration


def test_coco_schedule_with_warmup():
    multiplier = instantiate(get_config("common/coco_schedule.py").lr_multiplier_12ep_warmup)
    # warmup over 1e-3 epochs = 7.5 iterations, linearly from 0.001 to 1.0
    assert multiplier(0.0) == pytest.approx(0.001)
    assert multiplier(3 / 90000) == pytest.approx(0.001 + 0.999 * 3 / 7.5)
    assert multiplier(8 / 90000) == pytest.approx(1.0)
    assert multiplier(82500 / 90000) == pytest.approx(0.1)


def test_unknown_shipped_config_is_named():
    with pytest.raises(FileNotFoundError, match="common/nope.py"):
        get_config_file("common/nope.py")


def test_shipped_configs_survive_save_and_load(tmp_path):
    cfg = OmegaConf.create(
        {
            "optimizer": get_config("common/optim.py").AdamW,
            "lr_multiplier": get_config("common/coco_schedule.py").lr_multiplier_24ep,
            "train": get_config("common/train.py").train,
        },
        flags={"allow_objects": True},
    )
    LazyConfig.save(cfg, str(tmp_path / "config.yaml"))
    assert not (tmp_path / "config.yaml.pkl").exists()
    reloaded = LazyConfig.load(tmp_path / "config.yaml")
    assert OmegaConf.to_container(reloaded.train) == OmegaConf.to_container(cfg.train)
    assert reloaded.optimizer._target_ == "torch.optim.AdamW"
    assert OmegaConf.to_container(reloaded.optimizer.params)["base_lr"] == "${..lr}"
    reloaded.optimizer.lr = 3e-4
    assert reloaded.optimizer.params.base_lr == 3e-4
    original, restored = instantiate(cfg.lr_multiplier), instantiate(reloaded.lr_multiplier)
    assert [restored(w) for w in (0.0, 0.83, 0.84, 0.99)] == [original(w) for w in (0.0, 0.83, 0.84, 0.99)]
    assert [restored(w) for w in (0.83, 0.84)] == [1.0, 0.1]  # drop at 20 of 24 epochs = 0.8333
