"""DetectionCheckpointer: atomic saves, resume of every checkpointable, detectron2 .pkl and torchvision-style
.pth weights, and name matching by suffix."""

import itertools
import logging
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from detrkit.checkpoint import DetectionCheckpointer, align_and_update_state_dicts
from detrkit.engine import ModelEMA, SimpleTrainer, hooks


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(linear=nn.Linear(3, 2), norm=nn.BatchNorm1d(2)))


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0)


def test_save_writes_checkpoint_and_tag_without_temporary_files(tmp_path):
    model = small_model()
    checkpointer = DetectionCheckpointer(
        model, str(tmp_path), extra=torch.optim.SGD(model.parameters(), lr=1)
    )
    checkpointer.save("model_0000004", iteration=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000004.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000004.pth"
    data = torch.load(tmp_path / "model_0000004.pth")
    assert data["iteration"] == 4 and "extra" in data
    assert (
        DetectionCheckpointer(model, str(tmp_path), save_to_disk=False)
        .get_checkpoint_file()
        .endswith("model_0000004.pth")
    )


def test_failed_save_keeps_previous_checkpoint_and_tag(tmp_path, monkeypatch):
    model = small_model()
    checkpointer = DetectionCheckpointer(model, str(tmp_path))
    checkpointer.save("model_final")
    good_bytes = (tmp_path / "model_final.pth").read_bytes()

    def save_half_then_fail(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with torch.no_grad():
        model.linear.weight.add_(1.0)
    with pytest.raises(OSError, match="No space left"):
        checkpointer.save("model_final")  # overwriting the same file
    with pytest.raises(OSError, match="No space left"):
        checkpointer.save("model_0000009")
    monkeypatch.undo()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_final.pth"]
    assert (tmp_path / "model_final.pth").read_bytes() == good_bytes
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    restored = small_model(seed=1)
    DetectionCheckpointer(restored, str(tmp_path)).resume_or_load("", resume=True)
    assert_same_weights(restored, small_model())


class Killed(Exception):
    pass


def kill_before(iteration):
    def hook(trainer):
        if trainer.iter == iteration:
            raise Killed

    return hooks.CallbackHook(before_step=hook)


def make_trainer(tmp_path, seed=0, kill_before_iter=None):
    model = small_model(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = itertools.repeat(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0], [0.0, 1.0, -2.0]]))

    class Loss(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return {"loss": self.model(x).pow(2).mean()}

    trainer = SimpleTrainer(Loss(), data, optimizer)
    ema = ModelEMA(model, decay=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    checkpointer = DetectionCheckpointer(model, str(tmp_path), trainer=trainer, ema_state=ema)
    trainer.register_hooks(
        [
            hooks.EMAHook(ema),
            hooks.LRScheduler(scheduler=scheduler),
            hooks.PeriodicCheckpointer(checkpointer, period=2),
            kill_before(kill_before_iter),
        ]
    )
    return model, trainer, checkpointer, ema


def test_resume_restores_model_optimizer_scheduler_ema_and_iteration(tmp_path):
    reference, trainer, _, reference_ema = make_trainer(tmp_path / "reference")
    trainer.train(0, 6)

    model, trainer, _, _ = make_trainer(tmp_path / "run", kill_before_iter=5)
    with pytest.raises(Killed):
        trainer.train(0, 6)  # checkpoints after iterations 1 and 3; iteration 4 is lost
    assert (tmp_path / "run" / "last_checkpoint").read_text() == "model_0000003.pth"

    model, trainer, checkpointer, ema = make_trainer(tmp_path / "run", seed=1)
    checkpointer.resume_or_load("", resume=True)
    assert trainer.iter == 3
    saved = torch.load(tmp_path / "run" / "model_0000003.pth")
    assert trainer.optimizer.state_dict()["state"][0]["momentum_buffer"].equal(
        saved["trainer"]["optimizer"]["state"][0]["momentum_buffer"]
    )
    torch.testing.assert_close(ema.state["linear.weight"], saved["ema_state"]["linear.weight"])
    trainer.train(trainer.iter + 1, 6)
    assert_same_weights(model, reference)
    torch.testing.assert_close(ema.state["linear.weight"], reference_ema.state["linear.weight"])
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)  # StepLR continued


def test_resume_without_checkpoint_loads_the_given_weights_only(tmp_path):
    source = small_model(seed=3)
    DetectionCheckpointer(source, str(tmp_path / "init")).save("weights")
    model, trainer, checkpointer, _ = make_trainer(tmp_path / "empty")
    checkpointer.resume_or_load(str(tmp_path / "init" / "weights.pth"), resume=True)
    assert_same_weights(model, source)
    assert trainer.iter == 0


def test_loads_detectron2_pkl(tmp_path):
    source = small_model(seed=5)
    numpy_weights = {k: v.numpy() for k, v in source.state_dict().items()}
    path = tmp_path / "model_final_abc.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": numpy_weights, "__author__": "Detectron2 Model Zoo"}, f)
    model = small_model(seed=6)
    extra = DetectionCheckpointer(model).load(str(path))
    assert_same_weights(model, source)
    assert extra["__author__"] == "Detectron2 Model Zoo"

    # a converted backbone: names without the model's prefix, with matching_heuristics
    wrapped = nn.Sequential(OrderedDict(backbone=small_model(seed=6)))
    with open(path, "wb") as f:
        pickle.dump({"model": numpy_weights, "__author__": "torchvision", "matching_heuristics": True}, f)
    DetectionCheckpointer(wrapped).load(str(path))
    assert_same_weights(wrapped.backbone, source)

    with open(path, "wb") as f:
        pickle.dump({"blobs": {}}, f)
    with pytest.raises(ValueError, match=r"model_final_abc\.pkl.*'model' entry"):
        DetectionCheckpointer(model).load(str(path))


class TorchvisionLike(nn.Module):
    """Torchvision ResNet naming: conv1, bn1, layer1.0.conv1, fc."""

    def __init__(self, with_fc: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = nn.Sequential(nn.Sequential(OrderedDict(conv1=nn.Conv2d(4, 4, 1))))
        if with_fc:
            self.fc = nn.Linear(4, 10)


class Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.body = TorchvisionLike(with_fc=False)
        self.class_embed = nn.Linear(4, 5)


def test_loads_torchvision_state_dict_by_name_suffix(tmp_path, caplog):
    torch.manual_seed(0)
    source = TorchvisionLike()
    path = tmp_path / "resnet-tiny.pth"
    torch.save(source.state_dict(), path)
    detector = Detector()
    head_before = detector.class_embed.weight.detach().clone()
    with caplog.at_level(logging.WARNING):
        DetectionCheckpointer(detector).load(str(path))
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):
            torch.testing.assert_close(detector.backbone.body.state_dict()[key], value, rtol=0, atol=0)
    assert torch.equal(detector.class_embed.weight, head_before)
    assert "class_embed" in caplog.text  # missing in the checkpoint
    assert "fc" in caplog.text  # unused by the model


def test_suffix_matching_rules():
    model = {
        "a.layer.weight": torch.zeros(2),
        "b.layer.weight": torch.zeros(3),
        "c.xlayer.bias": torch.zeros(1),
    }
    ckpt = {"layer.weight": torch.ones(2), "layer.bias": torch.ones(1), "unused": torch.ones(1)}
    result = align_and_update_state_dicts(model, ckpt)
    # shape decides between a.* and b.*; "layer.bias" is no dotted suffix of "c.xlayer.bias"
    assert set(result) == {"a.layer.weight", "layer.bias", "unused"}
    assert torch.equal(result["a.layer.weight"], torch.ones(2))
    with pytest.raises(ValueError, match="'w' matches two keys of the model"):
        align_and_update_state_dicts({"x.w": torch.zeros(1), "y.w": torch.zeros(1)}, {"w": torch.ones(1)})


def test_numpy_pkl_values_become_tensors(tmp_path):
    path = tmp_path / "weights.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": {"weight": np.full((2, 3), 2.0, dtype=np.float32), "bias": np.zeros(2)}}, f)
    model = nn.Linear(3, 2)
    DetectionCheckpointer(model).load(str(path))
    assert torch.equal(model.weight, torch.full((2, 3), 2.0))
