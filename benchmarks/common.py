"""Helpers shared by the benchmark scripts."""

import platform
import statistics
import time

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
