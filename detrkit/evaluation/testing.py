"""Helpers for evaluation results (``task -> {metric -> value}`` dicts): copy-paste friendly logging and
flattening for event writers, with detectron2's names."""

import logging
from collections.abc import Mapping

__all__ = ["flatten_results_dict", "print_csv_format"]

logger = logging.getLogger(__name__)


def print_csv_format(results: Mapping) -> None:
    """Logs each task's metrics as two comma-separated lines (names, then values with 4 decimals), easy to
    paste into a spreadsheet. Per-category metrics (names with a ``-``, e.g. ``AP-car``) are left out.

    Args:
        results: ``task -> {metric -> value}``; a task whose value is not a mapping is logged as
            ``task=value``.
    """
    if not isinstance(results, Mapping):
        raise TypeError(f"print_csv_format expects a mapping task -> metrics, got {type(results).__name__}")
    for task, metrics in results.items():
        if isinstance(metrics, Mapping):
            main = {name: value for name, value in metrics.items() if "-" not in name}
            logger.info(f"copypaste: Task: {task}")
            logger.info("copypaste: " + ",".join(main))
            logger.info("copypaste: " + ",".join(f"{value:.4f}" for value in main.values()))
        else:
            logger.info(f"copypaste: {task}={metrics}")


def flatten_results_dict(results: Mapping) -> dict:
    """Nested results as one flat dict: ``results[a][b][c] = v`` becomes ``{"a/b/c": v}``."""
    flat = {}
    for key, value in results.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}/{sub}": v for sub, v in flatten_results_dict(value).items()})
        else:
            flat[key] = value
    return flat
