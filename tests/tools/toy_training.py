"""A toy regression task for the end-to-end tests of tools/train_net.py: a linear model that returns a
loss dict, a deterministic training loader sharded over processes, a test loader and an evaluator.

Batches depend on the iteration (read from the event storage), not on how often the loader was iterated,
so a resumed run sees the same data as an uninterrupted one.
"""

import os
import signal

import torch
from torch import nn

from detrkit.evaluation import DatasetEvaluator
from detrkit.utils import comm
from detrkit.utils.events import current_training_iteration, get_event_storage

NUM_SAMPLES = 32
IN_FEATURES, OUT_FEATURES = 4, 2


def toy_dataset() -> list[dict]:
    """``[{"x": (4,) tensor, "y": (2,) tensor}]``: a noisy linear relation."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(NUM_SAMPLES, IN_FEATURES, generator=generator)
    true_weight = torch.randn(IN_FEATURES, OUT_FEATURES, generator=generator)
    y = x @ true_weight + 0.1 * torch.randn(NUM_SAMPLES, OUT_FEATURES, generator=generator)
    return [{"x": xi, "y": yi} for xi, yi in zip(x, y, strict=True)]


class ToyRegressor(nn.Module):
    """Linear regression. Training: ``{"loss_l2", "loss_l1"}``; eval: ``[{"pred": (2,) tensor}]``.

    Args:
        kill_at_iter: SIGKILLs its own process when told this training iteration (None: never).
        nan_at_iter: makes ``loss_l1`` NaN at this iteration (None: never).
    """

    def __init__(self, kill_at_iter: int | None = None, nan_at_iter: int | None = None):
        super().__init__()
        self.linear = nn.Linear(IN_FEATURES, OUT_FEATURES)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(OUT_FEATURES, IN_FEATURES, generator=generator))
            self.linear.bias.zero_()
        self.kill_at_iter = kill_at_iter
        self.nan_at_iter = nan_at_iter

    def forward(self, batched_inputs: list[dict]):
        iteration = current_training_iteration() if self.training else None
        if self.kill_at_iter is not None and iteration == self.kill_at_iter:
            os.kill(os.getpid(), signal.SIGKILL)
        device = self.linear.weight.device
        pred = self.linear(torch.stack([d["x"] for d in batched_inputs]).to(device))
        if not self.training:
            return [{"pred": p} for p in pred]
        residual = pred - torch.stack([d["y"] for d in batched_inputs]).to(device)
        losses = {"loss_l2": residual.pow(2).mean(), "loss_l1": 0.5 * residual.abs().mean()}
        if self.nan_at_iter is not None and iteration == self.nan_at_iter:
            losses["loss_l1"] = losses["loss_l1"] * float("nan")
        return losses


class ToyTrainLoader:
    """Endless batches: at iteration ``i`` the total batch is samples ``i*B .. i*B+B-1`` (mod the dataset
    size), of which each process takes its contiguous ``B / world_size`` share."""

    def __init__(self, total_batch_size: int = 8):
        self.dataset = toy_dataset()
        self.total_batch_size = total_batch_size

    def __iter__(self):
        world, rank = comm.get_world_size(), comm.get_rank()
        if self.total_batch_size % world:
            raise ValueError(
                f"total_batch_size={self.total_batch_size} is not divisible by {world} processes"
            )
        per_process = self.total_batch_size // world
        while True:
            start = get_event_storage().iter * self.total_batch_size + rank * per_process
            yield [self.dataset[(start + k) % NUM_SAMPLES] for k in range(per_process)]


def toy_test_loader(batch_size: int = 4) -> list[list[dict]]:
    """The dataset in batches, every ``world_size``-th batch on each process."""
    dataset = toy_dataset()
    batches = [dataset[i : i + batch_size] for i in range(0, NUM_SAMPLES, batch_size)]
    return batches[comm.get_rank() :: comm.get_world_size()]


class ToyEvaluator(DatasetEvaluator):
    """Mean squared error of the predictions over all processes: ``{"regression": {"mse": value}}``."""

    def reset(self) -> None:
        self.squared_errors = []

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        for sample, output in zip(inputs, outputs, strict=True):
            self.squared_errors.append((output["pred"].cpu() - sample["y"]).pow(2).mean().item())

    def evaluate(self) -> dict:
        errors = [e for part in comm.gather(self.squared_errors) for e in part]
        if not comm.is_main_process():
            return {}
        return {"regression": {"mse": sum(errors) / len(errors)}}
