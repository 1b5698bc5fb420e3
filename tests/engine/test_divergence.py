"""A diverging training run (the tiny DINO of tests/modeling/meta_arch with the real DINOCriterion and
Hungarian matcher, SGD at lr 1e6): it stops with a FloatingPointError that names the non-finite predictions
and the iteration, instead of failing inside the matcher's GIoU, and the checkpoint ``last_checkpoint``
names (the one ``--resume`` loads) holds finite weights. With two gloo processes, a failed forward pass on
one stops both at the same iteration."""

import itertools
import math
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from detrkit.checkpoint import DetectionCheckpointer
from detrkit.engine import SimpleTrainer, hooks
from detrkit.modeling.criterion import DINOCriterion, build_weight_dict
from detrkit.modeling.matcher import HungarianMatcher

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "modeling" / "meta_arch"))
from tiny_detectors import NUM_CLASSES, StandInCriterion, hand_made_batch, tiny_dino  # noqa: E402


def all_finite(state_dict: dict) -> bool:
    return all(torch.isfinite(v).all() for v in state_dict.values() if v.is_floating_point())


def diverging_run(tmp_path, lr: float) -> tuple[torch.nn.Module, SimpleTrainer, FloatingPointError]:
    """Trains the tiny DINO with SGD at ``lr`` and a checkpoint after every iteration until it fails."""
    weights = build_weight_dict({"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}, 2, denoising=True)
    model = tiny_dino(criterion=DINOCriterion(NUM_CLASSES, HungarianMatcher(2.0, 5.0, 2.0), weights))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    trainer = SimpleTrainer(model, itertools.repeat(hand_made_batch()), optimizer)
    checkpointer = DetectionCheckpointer(model, str(tmp_path), trainer=trainer)
    trainer.register_hooks([hooks.PeriodicCheckpointer(checkpointer, period=1, max_iter=20)])
    with pytest.raises(FloatingPointError) as error:
        trainer.train(0, 20)
    assert "generalized_box_iou" not in str(error.value)
    return model, trainer, error.value


def assert_resumes_from_finite_checkpoint(tmp_path, last_iter: int) -> torch.nn.Module:
    """``last_checkpoint`` names model_<last_iter>, the newest file, and every saved model is finite;
    returns the tiny DINO (stand-in criterion) resumed from it."""
    saved = sorted(p.name for p in tmp_path.glob("model_*.pth"))
    assert saved == [f"model_{i:07d}.pth" for i in range(last_iter + 1)]
    assert (tmp_path / "last_checkpoint").read_text() == saved[-1]
    assert all(all_finite(torch.load(tmp_path / name, weights_only=True)["model"]) for name in saved)
    resumed = tiny_dino(criterion=StandInCriterion())
    DetectionCheckpointer(resumed, str(tmp_path)).resume_or_load("", resume=True)
    assert all_finite(resumed.state_dict())
    return resumed.train()


def test_nan_predictions_stop_before_the_matcher_naming_outputs_and_iteration(tmp_path):
    # lr 1e3: a step leaves finite weights whose predictions are NaN at the next iteration
    model, trainer, error = diverging_run(tmp_path, lr=1e3)
    message = str(error)
    assert message.startswith(f"At iteration={trainer.iter}: Model outputs are not finite (NaN or inf)")
    assert "outputs['pred_boxes']" in message and "outputs['aux_outputs'][0]['pred_boxes']" in message
    assert all_finite(model.state_dict())
    # the weights of the last checkpoint are finite but already give NaN predictions: resuming stops at
    # once with the same clear error (not inside the matcher)
    resumed = assert_resumes_from_finite_checkpoint(tmp_path, trainer.iter - 1)
    with pytest.raises(FloatingPointError, match=r"outputs\['pred_boxes'\]"):
        resumed(hand_made_batch())


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    # lr 1e6: the step itself makes weights NaN/inf; the checkpoint after it is refused
    model, trainer, error = diverging_run(tmp_path, lr=1e6)
    message = str(error)
    assert message.startswith(f"Not saving model_{trainer.iter:07d}.pth: the model's parameters hold NaN")
    named = message.split("(")[1].split(")")[0].split(" and ")[0].split(", ")
    parameters = dict(model.named_parameters())
    assert all(not torch.isfinite(parameters[name]).all() for name in named)
    assert message.endswith(f"model_{trainer.iter - 1:07d}.pth")
    resumed = assert_resumes_from_finite_checkpoint(tmp_path, trainer.iter - 1)
    with torch.no_grad():
        assert math.isfinite(float(sum(resumed(hand_made_batch()).values())))


class FailingForward(torch.nn.Module):
    """``loss = |w|^2``; the forward pass of process ``failing_rank`` raises FloatingPointError (as a
    detector's prediction check does) at its call ``fail_at``."""

    def __init__(self, failing_rank: int, fail_at: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))
        self.failing_rank, self.fail_at, self.calls = failing_rank, fail_at, 0

    def forward(self, batch):
        self.calls += 1
        if dist.get_rank() == self.failing_rank and self.calls - 1 == self.fail_at:
            raise FloatingPointError(
                "Model outputs are not finite (NaN or inf) before Criterion: outputs['x']"
            )
        return {"loss": (self.w**2).sum()}


def _two_process_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=2, timeout=timedelta(seconds=30)
    )
    try:
        model = FailingForward(failing_rank=1, fail_at=2)
        trainer = SimpleTrainer(model, itertools.repeat(None), torch.optim.SGD(model.parameters(), lr=0.1))
        try:
            trainer.train(0, 5)
        except FloatingPointError as error:
            Path(out_dir, f"rank{rank}.txt").write_text(str(error))
    finally:
        dist.destroy_process_group()


def test_a_forward_failure_on_one_process_stops_every_process_at_the_same_iteration(tmp_path):
    mp.start_processes(
        _two_process_worker, args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=2, start_method="fork"
    )
    failing, other = (tmp_path / "rank1.txt").read_text(), (tmp_path / "rank0.txt").read_text()
    assert failing.startswith("At iteration=2: Model outputs are not finite (NaN or inf) before Criterion")
    assert other.startswith("At iteration=2: the forward pass of another process raised FloatingPointError")
