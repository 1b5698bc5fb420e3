"""launch: in-process for one process; two gloo CPU processes train to the same weights (and log the same
reduced losses) as one process on the same total batch; `comm.average_over_processes` averages over them."""

import itertools
import os

import torch
from torch import nn

from detrkit.engine import SimpleTrainer, create_ddp_model, launch
from detrkit.utils import comm

TOTAL_BATCH = 8


class Regression(nn.Module):
    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.linear = nn.Linear(3, 2)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(2, 3, generator=generator))
            self.linear.bias.zero_()

    def forward(self, batch):
        x, y = batch
        residual = self.linear(x) - y
        return {"loss_l2": residual.pow(2).mean(), "loss_l1": 0.5 * residual.abs().mean()}


def sharded_batches():
    """The same total batch every process shares: this process's contiguous slice of it."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(TOTAL_BATCH, 3, generator=generator)
    y = torch.randn(TOTAL_BATCH, 2, generator=generator)
    per_process = TOTAL_BATCH // comm.get_world_size()
    part = slice(comm.get_rank() * per_process, (comm.get_rank() + 1) * per_process)
    return itertools.repeat((x[part], y[part]))


def train_and_report(out_dir: str) -> None:
    model = Regression()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    trainer = SimpleTrainer(create_ddp_model(model), sharded_batches(), optimizer)
    trainer.train(0, 5)
    report = {
        "rank": comm.get_rank(),
        "local_rank": comm.get_local_rank(),
        "world_size": comm.get_world_size(),
        "threads": torch.get_num_threads(),
        "weights": {k: v.clone() for k, v in model.state_dict().items()},
        "total_loss": [v for v, _ in trainer.storage.history("total_loss").values()],
        "mean_of_rank_plus_one": comm.average_over_processes(torch.tensor(comm.get_rank() + 1)),
    }
    torch.save(report, os.path.join(out_dir, f"rank{comm.get_rank()}_of_{comm.get_world_size()}.pth"))


def test_single_process_runs_in_process():
    calls = []
    launch(calls.append, 1, args=("ran",))
    assert calls == ["ran"]


def test_two_gloo_processes_match_one_process(tmp_path):
    train_and_report(str(tmp_path))
    launch(train_and_report, 2, dist_url="auto", args=(str(tmp_path),))
    single = torch.load(tmp_path / "rank0_of_1.pth")
    assert single["mean_of_rank_plus_one"] == 1.0
    reports = [torch.load(tmp_path / f"rank{r}_of_2.pth") for r in range(2)]
    cpus = len(os.sched_getaffinity(0))
    for rank, report in enumerate(reports):
        assert (report["rank"], report["local_rank"], report["world_size"]) == (rank, rank, 2)
        assert report["threads"] == max(1, cpus // 2)
        assert report["mean_of_rank_plus_one"] == 1.5  # (1 + 2) / 2
        for name, value in single["weights"].items():
            torch.testing.assert_close(report["weights"][name], value, rtol=1e-5, atol=1e-6)
        # the logged losses are averaged over the processes: the full-batch losses
        torch.testing.assert_close(torch.tensor(report["total_loss"]), torch.tensor(single["total_loss"]))
