#!/usr/bin/env python
"""Trainable parameters and GFLOPs of a config's model, counted like the papers (fvcore: one multiply-add is
one flop; deformable attention counted as 5 * L * P * Lq * C).

    python tools/analyze_model.py --config-file F --tasks parameter flop [--input-size 800 1333] [--json]
        [key=value ...]

The FLOPs are those of one eval forward on one image of ``--input-size`` (default 3x800x1333, the papers'
setting), on CPU. With ``--json`` the last line is one JSON object with ``params``, ``gflops`` and
``input_size``.
"""

import argparse
import json
import logging

import torch

from detrkit.config import LazyConfig, instantiate
from detrkit.utils.analysis import flop_count, trainable_parameter_count
from detrkit.utils.cli import int_at_least

logger = logging.getLogger("detrkit.analyze_model")


def build_model(config_file: str, overrides: list[str]) -> torch.nn.Module:
    cfg = LazyConfig.apply_overrides(LazyConfig.load(config_file), overrides)
    if "device" in cfg.model:
        cfg.model.device = "cpu"
    return instantiate(cfg.model)


def analyze(model: torch.nn.Module, tasks: list[str], input_size: tuple[int, int]) -> dict:
    result: dict = {}
    if "parameter" in tasks:
        result["params"] = trainable_parameter_count(model)
    if "flop" in tasks:
        image = torch.randint(
            0, 256, (3, *input_size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
        )
        result["gflops"], by_operator = flop_count(model, image)
        result["gflops_by_operator"] = dict(by_operator.most_common())
        result["input_size"] = [3, *input_size]
    return result


def build_parser() -> argparse.ArgumentParser:
    """The command line; the input size must be positive."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--tasks", nargs="+", choices=("parameter", "flop"), default=["parameter", "flop"])
    parser.add_argument(
        "--input-size", nargs=2, type=int_at_least(1), default=(800, 1333), metavar=("HEIGHT", "WIDTH")
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO)
    result = analyze(build_model(args.config_file, args.opts), args.tasks, tuple(args.input_size))
    if "params" in result:
        print(f"trainable parameters: {result['params']:,}")
    if "gflops" in result:
        print(f"GFLOPs at {result['input_size']}: {result['gflops']:.1f}")
        for op, gflops in result["gflops_by_operator"].items():
            print(f"  {op:40s} {gflops:8.2f}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
