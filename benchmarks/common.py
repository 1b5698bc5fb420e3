"""Helpers shared by the benchmark scripts."""

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch

from detrkit.structures import Boxes, Instances


def machine_description(threads: int) -> str:
    """CPU model, thread count and torch version, for the record in BENCHMARKS.md."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {threads} threads, torch {torch.__version__}"


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of `repeats` calls of `fn`, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_batch(size: tuple[int, int], images: int, num_classes: int, seed: int = 0) -> list[dict]:
    """``images`` detectron2 inputs of random pixels with 3 random boxes each (xyxy, at least 32 px)."""
    generator = torch.Generator().manual_seed(seed)
    height, width = size
    batch = []
    for _ in range(images):
        image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator)
        corner = torch.rand(3, 2, generator=generator) * torch.tensor([width - 64, height - 64])
        extent = 32 + torch.rand(3, 2, generator=generator) * 32
        instances = Instances((height, width))
        instances.gt_boxes = Boxes(torch.cat([corner, corner + extent], 1))
        instances.gt_classes = torch.randint(0, num_classes, (3,), generator=generator)
        batch.append({"image": image, "height": height, "width": width, "instances": instances})
    return batch


def main(
    description: str,
    run: Callable[..., dict],
    default_repeats: int,
    extra_flags: dict[str, str] | None = None,
) -> None:
    """The scripts' command line: ``[--threads N] [--repeats N] [--json]`` plus the on/off ``extra_flags``
    (``{"--flag": help}``, given to ``run`` as keyword arguments); prints the scalar results, then, with
    ``--json``, the whole result as one JSON object on the last line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=default_repeats)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    for flag, help_text in (extra_flags or {}).items():
        parser.add_argument(flag, action="store_true", help=help_text)
    args = parser.parse_args()
    flags = {flag.lstrip("-").replace("-", "_") for flag in extra_flags or {}}
    result = run(args.threads, args.repeats, **{name: getattr(args, name) for name in flags})
    for key, value in result.items():
        if not isinstance(value, dict):
            print(f"{key:32s} {value:.2f}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.json:
        print(json.dumps(result))
