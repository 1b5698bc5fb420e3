"""WarmupParamScheduler and LRMultiplier against hand-computed learning rates."""

import pytest
import torch
from fvcore.common.param_scheduler import (
    ConstantParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
)

from detrkit.solver import LRMultiplier, WarmupParamScheduler


def two_group_sgd():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    return torch.optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}], lr=1.0)


def run(optimizer, scheduler, iterations):
    """Learning rates seen by each iteration, stepping the scheduler after the optimizer like a trainer."""
    seen = []
    for _ in range(iterations):
        seen.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return seen


def assert_lrs(seen, expected):
    torch.testing.assert_close(
        torch.tensor(seen, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64)
    )


def test_multistep_lrs_per_group():
    optimizer = two_group_sgd()
    multiplier = MultiStepParamScheduler([1.0, 0.5, 0.25], milestones=[4, 8], num_updates=10)
    scheduler = LRMultiplier(optimizer, multiplier, max_iter=10)
    expected = [[1.0, 0.1]] * 4 + [[0.5, 0.05]] * 4 + [[0.25, 0.025]] * 2
    assert_lrs(run(optimizer, scheduler, 10), expected)


def test_linear_warmup():
    optimizer = two_group_sgd()
    multiplier = WarmupParamScheduler(ConstantParamScheduler(1.0), warmup_factor=0.1, warmup_length=0.5)
    scheduler = LRMultiplier(optimizer, multiplier, max_iter=10)
    factors = [0.1, 0.28, 0.46, 0.64, 0.82, 1.0, 1.0, 1.0]
    assert_lrs(run(optimizer, scheduler, 8), [[f, f / 10] for f in factors])


def test_constant_warmup_and_rescaled_interval():
    constant = WarmupParamScheduler(LinearParamScheduler(1.0, 0.0), 0.5, 0.2, warmup_method="constant")
    assert constant(0.1) == pytest.approx(0.5) and constant(0.6) == pytest.approx(0.4)
    # rescaled: the linear decay starts after warmup and spans the remaining 0.8 of training
    rescaled = WarmupParamScheduler(LinearParamScheduler(1.0, 0.0), 0.0, 0.2, rescale_interval=True)
    assert rescaled(0.1) == pytest.approx(0.5) and rescaled(0.6) == pytest.approx(0.5)
    fixed = WarmupParamScheduler(LinearParamScheduler(1.0, 0.0), 0.0, 0.2)
    assert fixed(0.1) == pytest.approx(0.4) and fixed(0.6) == pytest.approx(0.4)


def test_resume_from_state_dict():
    multiplier = MultiStepParamScheduler([1.0, 0.5, 0.25], milestones=[4, 8], num_updates=10)
    optimizer = two_group_sgd()
    scheduler = LRMultiplier(optimizer, multiplier, max_iter=10)
    run(optimizer, scheduler, 6)
    assert scheduler.state_dict() == {"base_lrs": [1.0, 0.1], "last_epoch": 6}

    resumed_optimizer = two_group_sgd()
    resumed_optimizer.load_state_dict(optimizer.state_dict())
    # a trainer resuming at iteration 6 passes last_iter=5; the first step brings it to 6
    resumed = LRMultiplier(resumed_optimizer, multiplier, max_iter=10, last_iter=5)
    resumed.load_state_dict(scheduler.state_dict())
    assert [g["lr"] for g in resumed_optimizer.param_groups] == pytest.approx([0.5, 0.05])
    assert_lrs(run(resumed_optimizer, resumed, 4), [[0.5, 0.05]] * 2 + [[0.25, 0.025]] * 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="ParamScheduler"):
        LRMultiplier(two_group_sgd(), lambda where: 1.0, max_iter=10)
    with pytest.raises(ValueError, match="'cosine'"):
        WarmupParamScheduler(ConstantParamScheduler(1.0), 0.1, 0.1, warmup_method="cosine")
