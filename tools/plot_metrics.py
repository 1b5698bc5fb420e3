#!/usr/bin/env python
"""Draws a training run's metrics.json into metrics.png (total loss, losses per kind, learning rate, AP).

    python tools/plot_metrics.py OUTPUT_DIR [OUTPUT_DIR ...]

tools/train_net.py does this at the end of training; this tool redraws it on demand, e.g. during a run.
"""

import argparse
import sys

from detrkit.utils.metrics_plot import write_metrics_plot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dirs", nargs="+", metavar="OUTPUT_DIR", help="folder holding metrics.json")
    args = parser.parse_args(argv)
    for output_dir in args.output_dirs:
        try:
            print(f"wrote {write_metrics_plot(output_dir)}")
        except (FileNotFoundError, ValueError) as e:
            print(f"plot_metrics.py: error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
