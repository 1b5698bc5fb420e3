"""Checkpoint and config files are read without running code from them: crafted .pth, .pkl and .yaml files
whose payload would create a marker file are refused with a message naming the file and what it asked for;
DETRKIT_TRUST_PICKLE=1 is the explicit opt-in (with a warning)."""

import io
import logging
import os
import pickle
import re
import shlex
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from detrkit.checkpoint import DetectionCheckpointer
from detrkit.checkpoint.safe_load import (
    TRUST_PICKLE_ENV,
    CheckpointFormatError,
    UnsafePickleError,
    load_checkpoint_file,
)
from detrkit.config import LazyConfig


class Payload:
    """Unpickling it runs ``os.system("touch <marker>")``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(self.marker)}",)


class StorageFromBytes:
    """Pickles as ``torch.storage._load_from_bytes(data)``, the call a plainly pickled tensor makes."""

    def __init__(self, data: bytes):
        self.data = data

    def __reduce__(self):
        return torch.storage._load_from_bytes, (self.data,)


@pytest.fixture(autouse=True)
def untrusted(monkeypatch):
    monkeypatch.delenv(TRUST_PICKLE_ENV, raising=False)


def weights() -> dict:
    return {"linear.weight": torch.ones(2, 3), "linear.bias": torch.zeros(2)}


def linear() -> nn.Module:
    return nn.Sequential(OrderedDict(linear=nn.Linear(3, 2)))


def write_pth(path, payload) -> None:
    torch.save({"model": weights(), "extra": payload}, path)


def write_pkl(path, payload) -> None:
    with open(path, "wb") as f:
        pickle.dump({"model": {k: v.numpy() for k, v in weights().items()}, "extra": payload}, f)


@pytest.mark.parametrize("write, suffix", [(write_pth, ".pth"), (write_pkl, ".pkl")])
def test_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path, write, suffix):
    marker = tmp_path / "pwned"
    path = tmp_path / f"model{suffix}"
    write(path, Payload(marker))
    with pytest.raises(UnsafePickleError, match=rf"model\{suffix}: refusing to unpickle posix\.system"):
        DetectionCheckpointer(linear()).load(str(path))
    assert not marker.exists()


@pytest.mark.parametrize("write, suffix", [(write_pth, ".pth"), (write_pkl, ".pkl")])
def test_trusted_checkpoint_is_unpickled_in_full_with_a_warning(tmp_path, monkeypatch, caplog, write, suffix):
    marker = tmp_path / "ran"
    path = tmp_path / f"model{suffix}"
    write(path, Payload(marker))
    monkeypatch.setenv(TRUST_PICKLE_ENV, "1")
    model = linear()
    with caplog.at_level(logging.WARNING, logger="detrkit.checkpoint.safe_load"):
        DetectionCheckpointer(model).load(str(path))
    assert marker.exists()  # the opt-in is real: the file's code ran
    assert "posix.system" in caplog.text and "trusted" in caplog.text
    assert torch.equal(model.linear.weight, torch.ones(2, 3))


def test_code_inside_a_pickled_tensor_storage_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    inner = io.BytesIO()
    torch.save(Payload(marker), inner)
    path = tmp_path / "model.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": {"w": StorageFromBytes(inner.getvalue())}}, f)
    with pytest.raises(UnsafePickleError, match=r"model\.pkl: refusing .* inside a tensor's storage"):
        load_checkpoint_file(path)
    assert not marker.exists()


def test_allowed_contents_load(tmp_path):
    """Tensors and numpy arrays/scalars in plain pickles (detectron2 .pkl, Python 2 ones included) and in
    torch.save files."""
    content = {
        "model": OrderedDict(w=torch.arange(3.0), a=np.full((2, 2), 2.0, dtype=np.float32)),
        "scalar": np.float64(0.5),
        "meta": {"tags": ("x", "y"), "ids": {1, 2}},
    }
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(content, protocol=protocol))
        loaded = load_checkpoint_file(path)
        assert torch.equal(loaded["model"]["w"], torch.arange(3.0))
        assert np.array_equal(loaded["model"]["a"], content["model"]["a"])
        assert loaded["scalar"] == 0.5 and loaded["meta"] == content["meta"]
    torch.save(content, tmp_path / "c.pth")
    loaded = load_checkpoint_file(tmp_path / "c.pth")
    assert torch.equal(loaded["model"]["w"], torch.arange(3.0))
    assert np.array_equal(loaded["model"]["a"], content["model"]["a"]) and loaded["scalar"] == 0.5


@pytest.mark.parametrize("content", [b"", b"model: not a checkpoint\n", bytes(range(7, 200))])
def test_a_file_of_another_kind_is_named(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointFormatError, match=r"weights\.pth: neither a PyTorch checkpoint nor"):
        load_checkpoint_file(path)


def test_crafted_config_yaml_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "config.yaml"
    path.write_text(f"train:\n  x: !!python/object/apply:os.system [{shlex.quote(f'touch {marker}')}]\n")
    with pytest.raises(ValueError, match=r"config\.yaml is not a config YAML that can be read safely"):
        LazyConfig.load(path)
    assert not marker.exists()
    path.write_text("a: !!python/object:os.PathLike {}\n")
    with pytest.raises(ValueError, match=r"!!python/object:os\.PathLike is not allowed"):
        LazyConfig.load(path)


SHAPE_SPEC_TAG = "!!python/object:detrkit.layers.shape_spec.ShapeSpec"


def test_a_saved_project_config_loads_back_with_the_safe_loader(tmp_path):
    """What LazyConfig.save writes beyond plain data (tuples, ShapeSpec) is what the safe loader admits."""
    cfg = LazyConfig.load(Path(__file__).parents[2] / "projects" / "dino" / "configs" / "dino_shapes.py")
    path = tmp_path / "config.yaml"
    LazyConfig.save(cfg, str(path))
    text = path.read_text()
    # omegaconf >= 2.4 writes tuples as !!python/tuple (older ones as lists); ShapeSpec is always an object
    assert set(re.findall(r"!!python/\S+", text)) <= {"!!python/tuple", SHAPE_SPEC_TAG}
    assert SHAPE_SPEC_TAG in text
    assert not (tmp_path / "config.yaml.pkl").exists()
    reloaded = LazyConfig.load(path)
    assert reloaded.model.neck.input_shapes.res3.channels == cfg.model.neck.input_shapes["res3"].channels
    assert list(reloaded.model.neck.in_features) == list(cfg.model.neck.in_features)
