"""torch.library.opcheck on every detrkit op: schema, autograd registration, fake kernel against the real
kernel (faketensor), and AOTAutograd tracing with dynamic shapes (forward and, for the deformable attention,
the registered backward)."""

import pytest
import torch
from torch.library import opcheck

import detrkit

pytestmark = pytest.mark.skipif(not detrkit.ops_info()["cpu"], reason="detrkit._C is not built")

SHAPES = torch.tensor([[4, 5], [2, 3]])
STARTS = torch.tensor([0, 20])


def attention_args(dtype, requires_grad):
    g = torch.Generator().manual_seed(0)
    value = torch.randn(2, 26, 3, 4, generator=g, dtype=dtype)
    loc = torch.rand(2, 5, 3, 2, 2, 2, generator=g, dtype=dtype) * 1.2 - 0.1
    weight = torch.rand(2, 5, 3, 2, 2, generator=g, dtype=dtype)
    return [t.requires_grad_(requires_grad) for t in (value, loc, weight)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_ms_deform_attn_forward(dtype, requires_grad):
    value, loc, weight = attention_args(dtype, requires_grad)
    opcheck(torch.ops.detrkit.ms_deform_attn_forward.default, (value, SHAPES, STARTS, loc, weight, 64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ms_deform_attn_backward(dtype):
    value, loc, weight = attention_args(dtype, requires_grad=False)
    grad_output = torch.randn(2, 5, 12, dtype=dtype)
    opcheck(
        torch.ops.detrkit.ms_deform_attn_backward.default,
        (value, SHAPES, STARTS, loc, weight, grad_output, 64),
    )


@pytest.mark.parametrize("count", [0, 1, 40])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_nms(count, dtype):
    g = torch.Generator().manual_seed(count)
    corner = torch.rand(count, 2, generator=g, dtype=dtype) * 20
    boxes = torch.cat([corner, corner + torch.rand(count, 2, generator=g, dtype=dtype) * 10 + 1], 1)
    scores = torch.rand(count, generator=g, dtype=dtype)
    groups = torch.randint(0, 3, (count,), generator=g)
    opcheck(torch.ops.detrkit.batched_nms.default, (boxes, scores, groups, 0.5))


def test_fake_kernels_give_the_real_output_metadata():
    value, loc, weight = attention_args(torch.float32, requires_grad=False)
    args = [t.to("meta") for t in (value, SHAPES, STARTS, loc, weight)]
    out = torch.ops.detrkit.ms_deform_attn_forward(*args, 64)
    assert out.device.type == "meta" and out.shape == (2, 5, 12) and out.dtype == torch.float32
    grads = torch.ops.detrkit.ms_deform_attn_backward(*args, torch.empty(2, 5, 12, device="meta"), 64)
    assert [g.shape for g in grads] == [value.shape, loc.shape, weight.shape]
    with pytest.raises(RuntimeError, match=r"sampling_loc must be on value's device meta, got cpu"):
        torch.ops.detrkit.ms_deform_attn_forward(args[0], args[1], args[2], loc, args[4], 64)
