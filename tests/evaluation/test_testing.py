"""print_csv_format's copy-paste lines and flatten_results_dict."""

import logging

import pytest

from detrkit.evaluation import print_csv_format
from detrkit.evaluation.testing import flatten_results_dict


def test_print_csv_format_logs_main_metrics(caplog):
    results = {"bbox": {"AP": 41.23456, "AP50": 60.0, "AP-cat": 12.0}, "speed": 3}
    with caplog.at_level(logging.INFO, logger="detrkit.evaluation.testing"):
        print_csv_format(results)
    assert caplog.messages == [
        "copypaste: Task: bbox",
        "copypaste: AP,AP50",
        "copypaste: 41.2346,60.0000",
        "copypaste: speed=3",
    ]


def test_print_csv_format_rejects_non_mappings():
    with pytest.raises(TypeError, match="got list"):
        print_csv_format([("bbox", 1.0)])


def test_flatten_results_dict():
    assert flatten_results_dict({"bbox": {"AP": 1.0, "sub": {"x": 2}}, "n": 3}) == {
        "bbox/AP": 1.0,
        "bbox/sub/x": 2,
        "n": 3,
    }
