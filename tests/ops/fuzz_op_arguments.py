"""Calls every ``torch.ops.detrkit.*`` op with randomly broken arguments (run by test_op_argument_fuzz.py in a
subprocess under faulthandler, so that a crash fails the test instead of killing pytest).

Each case starts from valid arguments of random small sizes and applies one to three mutations: another rank,
size or dtype, extreme values (huge, negative, NaN, infinite), empty sizes, non-contiguous layouts, another
device (meta). A call must return or raise RuntimeError/ValueError whose message names an argument; anything
else is reported. Prints one JSON line: the counts and the failures (at most 20).

    python -X faulthandler tests/ops/fuzz_op_arguments.py --seed 0 --cases 300
"""

import argparse
import json
import random

import torch

import detrkit  # noqa: F401  (loads detrkit._C)
from detrkit.layers import multi_scale_deformable_attn

EXTREME_INTS = [0, -1, 1, 2**31, 2**32, 2**62, 2**63 - 1, -(2**63)]
EXTREME_FLOATS = [float("nan"), float("inf"), float("-inf"), 1e30, -1e30, 0.0]
OTHER_DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.int32,
    torch.int64,
    torch.bool,
]

OTHER_DEVICES = ["meta"] + (["cuda"] if torch.cuda.is_available() else [])
MSDA_NAMES = ["value", "spatial_shapes", "level_start_index", "sampling_loc", "attn_weight"]
NMS_NAMES = ["boxes", "scores", "groups"]


def valid_msda(rng: random.Random) -> dict:
    levels, batch, queries, heads, channels, points = (rng.randint(1, 3) for _ in range(6))
    shapes = torch.tensor([[rng.randint(1, 5), rng.randint(1, 5)] for _ in range(levels)])
    starts = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    dtype = rng.choice([torch.float32, torch.float64])
    tokens = int(shapes.prod(1).sum())
    return {
        "value": torch.randn(batch, tokens, heads, channels, dtype=dtype),
        "spatial_shapes": shapes,
        "level_start_index": starts,
        "sampling_loc": torch.rand(batch, queries, heads, levels, points, 2, dtype=dtype) * 1.4 - 0.2,
        "attn_weight": torch.rand(batch, queries, heads, levels, points, dtype=dtype),
        "grad_output": torch.randn(batch, queries, heads * channels, dtype=dtype),
    }


def valid_nms(rng: random.Random) -> dict:
    n = rng.randint(0, 40)
    corner = torch.rand(n, 2) * 20
    dtype = rng.choice([torch.float32, torch.float64])
    return {
        "boxes": torch.cat([corner, corner + torch.rand(n, 2) * 10], 1).to(dtype),
        "scores": torch.rand(n, dtype=dtype),
        "groups": torch.randint(0, 3, (n,)),
    }


def mutate_tensor(rng: random.Random, tensor: torch.Tensor) -> torch.Tensor:
    kind = rng.choice(["rank", "size", "empty", "dtype", "extreme", "layout", "device"])
    if kind == "rank":
        return (
            tensor[..., None]
            if rng.random() < 0.5 or tensor.dim() == 0
            else tensor.flatten()[: tensor.shape[-1]]
        )
    if kind in ("size", "empty") and tensor.dim() > 0:
        dim = rng.randrange(tensor.dim())
        size = 0 if kind == "empty" else rng.choice([1, tensor.shape[dim] + 1, rng.randint(2, 7)])
        shape = list(tensor.shape)
        shape[dim] = size
        if tensor.dtype == torch.int64:
            return torch.randint(-3, 10, shape)
        return torch.rand(shape).to(tensor.dtype)
    if kind == "dtype":
        return tensor.to(rng.choice(OTHER_DTYPES))
    if kind == "extreme" and tensor.numel() > 0:
        tensor = tensor.clone()
        flat = tensor.view(-1)
        for _ in range(rng.randint(1, 3)):
            index = rng.randrange(flat.numel())
            if tensor.dtype == torch.int64:
                flat[index] = rng.choice(EXTREME_INTS)
            elif tensor.is_floating_point():
                flat[index] = rng.choice(EXTREME_FLOATS)
        return tensor
    if kind == "layout" and tensor.dim() > 0:
        # The same values in a non-contiguous tensor (every other element of a doubled last axis).
        return torch.stack([tensor, torch.zeros_like(tensor)], -1).select(-1, 0)
    if kind == "device":
        return tensor.to(rng.choice(OTHER_DEVICES))
    return tensor


def msda_case(rng: random.Random):
    args = valid_msda(rng)
    step = 64
    for _ in range(rng.randint(1, 3)):
        target = rng.choice([*MSDA_NAMES, "grad_output", "im2col_step", "overflow"])
        if target == "im2col_step":
            step = rng.choice(EXTREME_INTS)
        elif target == "overflow":
            # Levels whose H * W overflows int64 (or is huge), starts that a wrapping sum would accept;
            # value gets the token count that the wrapped int64 sum gives.
            big = rng.choice([2**32, 2**62, 2**63 - 1, 3 * 2**61])
            levels = args["spatial_shapes"].shape[0]
            args["spatial_shapes"] = torch.tensor([[big, big]] + [[2, 2]] * (levels - 1))
            args["level_start_index"] = torch.tensor(
                [0] + [(big * big) % 2**64 + 4 * k for k in range(levels - 1)]
            )
            if args["value"].dim() == 4:
                batch, _, heads, channels = args["value"].shape
                wrapped_tokens = (big * big) % 2**64 + 4 * (levels - 1)
                args["value"] = torch.randn(batch, wrapped_tokens, heads, channels).to(args["value"].dtype)
        else:
            args[target] = mutate_tensor(rng, args[target])
    inputs = [args[name] for name in MSDA_NAMES]
    which = rng.choice(["forward", "backward", "public"])
    if which == "forward":
        return which, lambda: torch.ops.detrkit.ms_deform_attn_forward(*inputs, step)
    if which == "backward":
        return which, lambda: torch.ops.detrkit.ms_deform_attn_backward(*inputs, args["grad_output"], step)
    return which, lambda: multi_scale_deformable_attn(
        inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], im2col_step=step
    )


def nms_case(rng: random.Random):
    args = valid_nms(rng)
    threshold = rng.choice([0.5, 0.0, 1.0])
    for _ in range(rng.randint(1, 3)):
        target = rng.choice([*NMS_NAMES, "iou_threshold"])
        if target == "iou_threshold":
            threshold = rng.choice(EXTREME_FLOATS)
        else:
            args[target] = mutate_tensor(rng, args[target])
    return "batched_nms", lambda: torch.ops.detrkit.batched_nms(*args.values(), threshold)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    argument_names = [*MSDA_NAMES, "grad_output", "im2col_step", *NMS_NAMES, "iou_threshold"]
    counts: dict[str, dict[str, int]] = {}
    failures = []
    for case in range(args.cases):
        op, call = msda_case(rng) if rng.random() < 0.7 else nms_case(rng)
        outcome = "returned"
        try:
            call()
        except (RuntimeError, ValueError) as error:
            outcome = "raised"
            if not any(name in str(error) for name in argument_names):
                failures.append(f"case {case} ({op}): message names no argument: {str(error)[:300]}")
        except Exception as error:  # noqa: BLE001  (the point: any other exception is a failure)
            outcome = "other"
            failures.append(f"case {case} ({op}): {type(error).__name__}: {str(error)[:300]}")
        counts.setdefault(op, {}).setdefault(outcome, 0)
        counts[op][outcome] += 1
    print(json.dumps({"counts": counts, "failures": failures[:20], "failure_count": len(failures)}))


if __name__ == "__main__":
    main()
