#!/usr/bin/env python
"""Inference latency of a config's model: median over repeated eval forwards of one image, warm-up excluded,
on the current device (``train.device``: cuda if available, else cpu).

    python tools/benchmark.py --config-file F [--input-size 800 1333] [--warmup 2] [--repeats 10]
        [--threads N] [--json] [key=value ...]

With ``--json`` the last line is one JSON object with ``latency_ms``, ``device`` and ``input_size``.
Trained weights do not change the cost of most detectors, but query selection by score may: pass
``train.init_checkpoint=...`` to time a trained model.
"""

import argparse
import json
import statistics
import time

import torch

from detrkit.checkpoint import DetectionCheckpointer
from detrkit.config import LazyConfig, instantiate
from detrkit.utils.cli import int_at_least


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency_ms(model: torch.nn.Module, image: torch.Tensor, warmup: int, repeats: int) -> float:
    """Median milliseconds of one eval forward on ``image`` ``(3, H, W)`` after ``warmup`` forwards."""
    inputs = [{"image": image, "height": image.shape[-2], "width": image.shape[-1]}]
    device = next(model.parameters()).device
    times = []
    model.eval()
    with torch.no_grad():
        for i in range(warmup + repeats):
            synchronize(device)
            start = time.perf_counter()
            model(inputs)
            synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def build_parser() -> argparse.ArgumentParser:
    """The command line; sizes, repeats and threads must be positive, the warm-up non-negative."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument(
        "--input-size", nargs=2, type=int_at_least(1), default=(800, 1333), metavar=("HEIGHT", "WIDTH")
    )
    parser.add_argument("--warmup", type=int_at_least(0), default=2)
    parser.add_argument("--repeats", type=int_at_least(1), default=10)
    parser.add_argument(
        "--threads", type=int_at_least(1), default=None, help="CPU threads (torch.set_num_threads)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    model = instantiate(cfg.model).to(cfg.train.device)
    if cfg.train.init_checkpoint:
        DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, *args.input_size), dtype=torch.uint8, generator=generator)
    latency = measure_latency_ms(model, image.to(cfg.train.device), args.warmup, args.repeats)
    result = {
        "latency_ms": latency,
        "device": str(cfg.train.device),
        "input_size": [3, *args.input_size],
        "threads": torch.get_num_threads(),
    }
    print(f"{args.config_file}: {latency:.1f} ms per image on {result['device']} at {result['input_size']}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
