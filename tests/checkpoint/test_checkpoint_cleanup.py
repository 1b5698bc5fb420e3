"""What the checkpointer cleans up and refuses: temporary files of a save killed with SIGKILL, periodic
checkpoints beyond ``max_to_keep`` after ``--resume``, and models with NaN/inf parameters."""

import itertools
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from detrkit.checkpoint import DetectionCheckpointer
from detrkit.engine import SimpleTrainer, hooks

REPO = Path(__file__).resolve().parents[2]


class Quadratic(nn.Module):
    """``loss = |w - 1|^2`` for a ``(3,)`` parameter ``w``."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))

    def forward(self, batch):
        return {"loss": ((self.w - 1) ** 2).sum()}


def test_temporary_files_of_a_killed_save_are_removed_by_the_next_checkpointer(tmp_path):
    # a process SIGKILLed in the middle of writing model_0000004.pth (after some bytes of torch.save)
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        from detrkit.checkpoint import DetectionCheckpointer

        def killed_save(obj, f):
            f.write(b"partial")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        checkpointer = DetectionCheckpointer(torch.nn.Linear(2, 2), {str(tmp_path)!r})
        checkpointer.save("model_0000001")
        torch.save = killed_save
        checkpointer.save("model_0000004")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    leftovers = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model_0000004.pth.")
    (tmp_path / ".notes.tmp").write_text("not the checkpointer's")

    DetectionCheckpointer(nn.Linear(2, 2), str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == [".notes.tmp", "last_checkpoint", "model_0000001.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    DetectionCheckpointer(nn.Linear(2, 2), str(tmp_path), save_to_disk=False)  # a reader removes nothing
    assert (tmp_path / ".notes.tmp").exists()


def periodic_run(output_dir: Path, start_iter: int, max_iter: int, stop_at: int | None = None) -> None:
    """Trains Quadratic with a checkpoint after every iteration (max_to_keep=2), resuming from
    ``output_dir`` when ``start_iter > 0``; an exception at ``stop_at`` stands for a killed run."""
    model = Quadratic()
    trainer = SimpleTrainer(model, itertools.repeat(None), torch.optim.SGD(model.parameters(), lr=0.1))
    checkpointer = DetectionCheckpointer(model, str(output_dir), trainer=trainer)
    if start_iter > 0:
        checkpointer.resume_or_load("", resume=True)
        assert trainer.iter + 1 == start_iter

    def interrupt(t):
        if t.iter == stop_at:
            raise KeyboardInterrupt

    trainer.register_hooks(
        [
            hooks.CallbackHook(before_step=interrupt),
            hooks.PeriodicCheckpointer(checkpointer, period=1, max_to_keep=2),
        ]
    )
    trainer.train(start_iter, max_iter)


def test_max_to_keep_holds_after_resume(tmp_path):
    uninterrupted, resumed = tmp_path / "uninterrupted", tmp_path / "resumed"
    periodic_run(uninterrupted, 0, 7)
    with pytest.raises(KeyboardInterrupt):
        periodic_run(resumed, 0, 7, stop_at=4)
    assert sorted(p.name for p in resumed.glob("*.pth")) == ["model_0000002.pth", "model_0000003.pth"]
    periodic_run(resumed, 4, 7)
    expected = sorted(p.name for p in uninterrupted.glob("*.pth"))
    assert expected == ["model_0000005.pth", "model_0000006.pth", "model_final.pth"]
    assert sorted(p.name for p in resumed.glob("*.pth")) == expected


def test_a_model_with_non_finite_parameters_is_not_saved(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    checkpointer = DetectionCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000000")
    with torch.no_grad():
        model[1].bias.fill_(float("inf"))
        model[0].weight[1, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"Not saving model_0000001\.pth.*\(0\.weight, 1\.bias\)"):
        checkpointer.save("model_0000001")
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000000.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000000.pth"
