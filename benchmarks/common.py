"""Helpers shared by the benchmark scripts."""

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch


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


def main(description: str, run: Callable[[int, int], dict], default_repeats: int) -> None:
    """The scripts' command line: ``[--threads N] [--repeats N] [--json]``; prints the scalar results, then,
    with ``--json``, the whole result as one JSON object on the last line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=default_repeats)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    result = run(args.threads, args.repeats)
    for key, value in result.items():
        if not isinstance(value, dict):
            print(f"{key:32s} {value:.2f}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.json:
        print(json.dumps(result))
