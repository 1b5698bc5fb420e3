"""Compiled multi-scale deformable attention vs the pure-PyTorch (grid_sample) reference on CPU.

The workload is one DINO encoder layer's attention: batch 2, levels (100,150),(50,75),(25,38),(13,19) (an
800x1200 image at strides 8-64), every token a query, 8 heads x 32 channels, 4 points. Each query samples
around its own position like a trained encoder: Deformable DETR's initial offsets (point p at p + 1 cells
along its head's direction) plus Gaussian noise of one cell.

Every measurement runs in a fresh process: peak memory is that process's resident-set high-water mark above
its level once the inputs exist; times are medians of several runs after a warm-up.

    python benchmarks/ms_deform_attn.py [--threads 2] [--repeats 5] [--json]
"""

import math
import multiprocessing
import resource

import torch
from common import machine_description, main, median_seconds

import detrkit
from detrkit.layers import multi_scale_deformable_attn, multi_scale_deformable_attn_pytorch

LEVELS = ((100, 150), (50, 75), (25, 38), (13, 19))
BATCH, HEADS, CHANNELS, POINTS = 2, 8, 32, 4


def make_inputs(seed: int = 0):
    """Value, shapes, level starts, locations and weights of the encoder workload (requires_grad set)."""
    generator = torch.Generator().manual_seed(seed)
    shapes = torch.tensor(LEVELS)
    starts = torch.cat([shapes.new_zeros(1), (shapes[:, 0] * shapes[:, 1]).cumsum(0)[:-1]])
    centres = []
    for h, w in LEVELS:
        y, x = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
        centres.append(torch.stack([x.flatten(), y.flatten()], -1))
    reference = torch.cat(centres)  # (S, 2), each token's own position
    tokens, levels = len(reference), len(LEVELS)
    thetas = torch.arange(HEADS) * (2 * math.pi / HEADS)
    directions = torch.stack([thetas.cos(), thetas.sin()], -1)
    directions = directions / directions.abs().max(-1, keepdim=True)[0]
    offsets = directions[:, None, None, :] * torch.arange(1, POINTS + 1).view(1, 1, POINTS, 1)
    offsets = offsets + torch.randn(BATCH, tokens, HEADS, levels, POINTS, 2, generator=generator)
    cells = torch.tensor([[w, h] for h, w in LEVELS], dtype=torch.float32)
    locations = reference[None, :, None, None, None, :] + offsets / cells[None, None, None, :, None, :]
    value = torch.randn(BATCH, tokens, HEADS, CHANNELS, generator=generator)
    logits = torch.randn(BATCH, tokens, HEADS, levels * POINTS, generator=generator)
    weights = logits.softmax(-1).view(BATCH, tokens, HEADS, levels, POINTS)
    return [t.requires_grad_() for t in (value, locations, weights)], shapes, starts


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _measure(args) -> dict:
    """In a fresh process: peak extra memory of one call, then the median time of `repeats` calls."""
    implementation, backward, threads, repeats = args
    torch.set_num_threads(threads)
    (value, locations, weights), shapes, starts = make_inputs()
    grad = torch.randn(BATCH, value.shape[1], HEADS * CHANNELS)

    def call():
        if implementation == "kernel":
            out = multi_scale_deformable_attn(value, shapes, starts, locations, weights)
        else:
            out = multi_scale_deformable_attn_pytorch(value, shapes, locations, weights)
        if backward:
            torch.autograd.grad(out, (value, locations, weights), grad)
        return out

    with torch.set_grad_enabled(backward):
        before = _rss_bytes()
        call()  # also the warm-up of median_seconds
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before) / 2**20
        return {"median_s": median_seconds(call, repeats), "peak_mb": peak_mb}


def run(threads: int, repeats: int) -> dict:
    context = multiprocessing.get_context("spawn")
    results = {}
    for backward in (False, True):
        for implementation in ("reference", "kernel"):
            with context.Pool(1) as pool:
                results[(implementation, backward)] = pool.apply(
                    _measure, ((implementation, backward, threads, repeats),)
                )
    fwd_ref, fwd_ker = results[("reference", False)], results[("kernel", False)]
    both_ref, both_ker = results[("reference", True)], results[("kernel", True)]
    return {
        "machine": machine_description(threads),
        "ops_info": detrkit.ops_info(),
        "shape": {"batch": BATCH, "levels": LEVELS, "heads": HEADS, "channels": CHANNELS, "points": POINTS},
        "reference_forward_ms": 1e3 * fwd_ref["median_s"],
        "kernel_forward_ms": 1e3 * fwd_ker["median_s"],
        "reference_forward_backward_ms": 1e3 * both_ref["median_s"],
        "kernel_forward_backward_ms": 1e3 * both_ker["median_s"],
        "speedup_forward": fwd_ref["median_s"] / fwd_ker["median_s"],
        "speedup_forward_backward": both_ref["median_s"] / both_ker["median_s"],
        "peak_mb_reference": both_ref["peak_mb"],
        "peak_mb_kernel": both_ker["peak_mb"],
        "peak_mb_reference_forward": fwd_ref["peak_mb"],
        "peak_mb_kernel_forward": fwd_ker["peak_mb"],
    }


if __name__ == "__main__":
    main(__doc__.splitlines()[0], run, default_repeats=5)
