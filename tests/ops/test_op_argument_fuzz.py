"""Randomly broken arguments for every torch.ops.detrkit.* op give a Python exception naming the
argument, never a crash (the fuzzing runs in a subprocess under faulthandler: a crash fails this test and
shows its trace)."""

import json
import pathlib
import subprocess
import sys

import pytest
import torch

import detrkit
from detrkit.layers import multi_scale_deformable_attn

pytestmark = pytest.mark.skipif(not detrkit.ops_info()["cpu"], reason="detrkit._C is not built")

SCRIPT = pathlib.Path(__file__).with_name("fuzz_op_arguments.py")


@pytest.mark.parametrize("seed", [0, 1])
def test_broken_arguments_raise_named_errors(seed):
    result = subprocess.run(
        [sys.executable, "-X", "faulthandler", str(SCRIPT), "--seed", str(seed), "--cases", "300"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"the fuzzing process died (rc {result.returncode}):\n{result.stderr[-4000:]}"
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failure_count"] == 0, report["failures"]
    counts = report["counts"]
    assert set(counts) == {"forward", "backward", "public", "batched_nms"}
    # Both outcomes occur for every op: the cases reach the kernels as well as the checks.
    for op, outcomes in counts.items():
        assert outcomes.get("raised", 0) > 0 and outcomes.get("returned", 0) > 0, (op, outcomes)


def test_overflowing_level_sizes_raise_in_every_entry_point():
    # H * W = 2**64 wraps to 0 in int64; the four tokens of the second level would have passed a wrapping sum.
    value = torch.randn(1, 4, 1, 2)
    shapes = torch.tensor([[2**32, 2**32], [2, 2]])
    starts = torch.tensor([0, 0])
    loc = torch.rand(1, 3, 1, 2, 1, 2)
    weight = torch.rand(1, 3, 1, 2, 1)
    message = r"spatial_shapes\[0\] = \(4294967296, 4294967296\) holds more tokens than the 4 of value"
    with pytest.raises(RuntimeError, match=message):
        torch.ops.detrkit.ms_deform_attn_forward(value, shapes, starts, loc, weight, 64)
    with pytest.raises(RuntimeError, match=message):
        torch.ops.detrkit.ms_deform_attn_backward(value, shapes, starts, loc, weight, torch.ones(1, 3, 2), 64)
    with pytest.raises(RuntimeError, match=message):
        multi_scale_deformable_attn(value, shapes, starts, loc, weight)
