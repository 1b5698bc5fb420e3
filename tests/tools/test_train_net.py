"""tools/train_net.py end to end on a toy regression config (CPU): a run killed with SIGKILL resumes from
its last checkpoint and ends with the same weights, optimizer state and EMA as an uninterrupted run; two
gloo processes match one; a NaN loss stops the run naming the loss and keeps the last good checkpoint;
--eval-only evaluates train.init_checkpoint."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFIG = HERE / "configs" / "toy_regression.py"
sys.path.insert(0, str(HERE))  # the toy task module next to this file

from toy_training import ToyRegressor, toy_dataset  # noqa: E402


def train_net(output_dir: Path, *args: str, overrides: tuple = (), num_gpus: int = 1):
    """Runs tools/train_net.py on the toy config; returns the CompletedProcess (output in .stdout)."""
    command = [sys.executable, str(REPO / "tools" / "train_net.py"), "--config-file", str(CONFIG)]
    command += ["--num-gpus", str(num_gpus), "--dist-url", "auto", *args, f"train.output_dir={output_dir}"]
    command += list(overrides)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}
    return subprocess.run(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300
    )


def checkpoint(output_dir: Path, name: str) -> dict:
    return torch.load(output_dir / name, weights_only=True)


def assert_close_nested(actual, expected, path="checkpoint"):
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), path
        for key in expected:
            assert_close_nested(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close_nested(a, e, f"{path}[{i}]")
    elif isinstance(expected, torch.Tensor):
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6, msg=lambda m: f"{path}: {m}")
    else:
        assert actual == expected, path


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted 8-iteration run (checkpoints after iterations 1, 3, 5, 7 and model_final)."""
    output_dir = tmp_path_factory.mktemp("reference")
    result = train_net(output_dir)
    assert result.returncode == 0, result.stdout
    return output_dir


def test_uninterrupted_run_writes_checkpoints_metrics_and_evaluates(reference):
    names = {p.name for p in reference.iterdir()}
    assert {"model_0000001.pth", "model_0000007.pth", "model_final.pth", "last_checkpoint"} <= names
    assert {"config.yaml", "log.txt", "metrics.json"} <= names
    assert any(name.startswith("events.out.tfevents") for name in names)
    final = checkpoint(reference, "model_final.pth")
    assert final["iteration"] == 7 and final["trainer"]["iteration"] == 7
    assert set(final) >= {"model", "trainer", "ema_state"}
    metrics = [json.loads(line) for line in (reference / "metrics.json").read_text().splitlines()]
    assert [m["iteration"] for m in metrics if "total_loss" in m] == [1, 3, 5, 7]
    assert metrics[3]["lr"] == pytest.approx(0.005)  # multiplier 0.1 from iteration 6 on
    # evaluations after iteration 3 (eval_period 4) and after training, with and without EMA weights
    evaluated = [m["iteration"] for m in metrics if "regression/mse" in m and "regression_ema/mse" in m]
    assert evaluated == [3, 8]
    log = (reference / "log.txt").read_text()
    assert "iter: 7/8 (100.0%)" in log and "loss_l1" in log


def test_killed_run_resumes_from_its_last_checkpoint(reference, tmp_path):
    killed = train_net(tmp_path, overrides=("model.kill_at_iter=5",))
    assert killed.returncode == -signal.SIGKILL, killed.stdout
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000003.pth"
    assert not (tmp_path / "model_final.pth").exists()
    # the state saved before the kill is the uninterrupted run's at the same iteration
    assert_close_nested(checkpoint(tmp_path, "model_0000003.pth"), checkpoint(reference, "model_0000003.pth"))

    resumed = train_net(tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stdout
    assert "Starting training from iteration 4" in resumed.stdout
    # model, optimizer (AdamW moments), LR scheduler, EMA and iteration continue exactly
    assert_close_nested(checkpoint(tmp_path, "model_final.pth"), checkpoint(reference, "model_final.pth"))


def test_two_gloo_processes_match_one_process(reference, tmp_path):
    result = train_net(tmp_path, num_gpus=2)
    assert result.returncode == 0, result.stdout
    assert "World size: 2" in result.stdout
    assert (tmp_path / "log.txt.rank1").exists()
    two, one = checkpoint(tmp_path, "model_final.pth"), checkpoint(reference, "model_final.pth")
    for key in ("model", "ema_state"):
        assert_close_nested(two[key], one[key], key)


def test_nan_loss_stops_with_the_loss_name_and_keeps_the_last_checkpoint(tmp_path):
    result = train_net(tmp_path, overrides=("model.nan_at_iter=4",))
    assert result.returncode != 0
    assert "FloatingPointError: Loss became infinite or NaN at iteration=4: loss_l1=nan" in result.stdout
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000003.pth"
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["model_0000001.pth", "model_0000003.pth"]


def test_eval_only_evaluates_init_checkpoint(reference, tmp_path):
    weights = reference / "model_final.pth"
    result = train_net(tmp_path, "--eval-only", overrides=(f"train.init_checkpoint={weights}",))
    assert result.returncode == 0, result.stdout
    model = ToyRegressor()
    model.load_state_dict(checkpoint(reference, "model_final.pth")["model"])
    with torch.no_grad():
        data = toy_dataset()
        pred = model.linear(torch.stack([d["x"] for d in data]))
        errors = (pred - torch.stack([d["y"] for d in data])).pow(2).mean(dim=1)
    printed = result.stdout.strip().splitlines()[-1]
    mse = eval(printed)["regression"]["mse"]  # the printed dict: {'regression': {'mse': ...}}
    assert mse == pytest.approx(errors.mean().item(), rel=1e-5)
