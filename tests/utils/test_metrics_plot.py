"""metrics.json -> metrics.png: the lines drawn are the file's values (losses summed per kind by hand),
AP only from evaluation lines, and bad files are named with their line."""

import json

import numpy as np
import pytest
from PIL import Image

from detrkit.utils.metrics_plot import (
    eval_keys,
    loss_kind,
    metrics_figure,
    read_metrics,
    write_metrics_plot,
)

RECORDS = [
    {"iteration": 19, "total_loss": 10.0, "loss_class": 1.0, "loss_class_0": 2.0, "loss_bbox": 3.0,
     "loss_bbox_dn": 4.0, "lr": 2e-4, "time": 1.1},
    {"iteration": 39, "total_loss": 6.0, "loss_class": 0.5, "loss_class_0": 1.5, "loss_bbox": 2.0,
     "loss_bbox_dn": 2.0, "lr": 2e-4},
    {"iteration": 39, "bbox/AP": 12.5, "bbox/AP50": 30.0, "bbox/AP-circle": 5.0, "bbox/APs": 1.0},
    {"iteration": 59, "total_loss": 4.0, "loss_class": 0.5, "loss_class_0": 0.5, "loss_bbox": 1.0,
     "loss_bbox_dn": 2.0, "lr": 2e-5},
    {"iteration": 59, "bbox/AP": 20.0, "bbox/AP50": 45.0, "bbox/AP-circle": 9.0, "bbox/APs": 2.0},
]  # fmt: skip


def write(folder, records) -> None:
    (folder / "metrics.json").write_text("".join(json.dumps(r) + "\n" for r in records))


def lines(ax) -> dict[str, tuple[list, list]]:
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.lines}


def test_loss_kind():
    assert [loss_kind(k) for k in ("loss_class", "loss_class_dn_2", "loss_giou_enc", "loss_salience")] == [
        "class",
        "class",
        "giou",
        "salience",
    ]


def test_panels_draw_the_file_values():
    figure = metrics_figure(RECORDS)
    total, groups, lr, evaluation = figure.axes
    assert lines(total)["_child0"] == ([19, 39, 59], [10.0, 6.0, 4.0])
    # per kind, the sum over the layers' keys: class = loss_class + loss_class_0,
    # bbox = loss_bbox + loss_bbox_dn
    assert lines(groups) == {
        "bbox": ([19, 39, 59], [7.0, 4.0, 3.0]),
        "class": ([19, 39, 59], [3.0, 2.0, 1.0]),
    }
    assert lines(lr)["_child0"] == ([19, 39, 59], [2e-4, 2e-4, 2e-5])
    # AP, AP50 (no AP75 in the file); per-class and size APs are left out
    assert lines(evaluation) == {"bbox/AP": ([39, 59], [12.5, 20.0]), "bbox/AP50": ([39, 59], [30.0, 45.0])}


def test_not_evaluated_and_non_ap_evaluators():
    figure = metrics_figure([r for r in RECORDS if "total_loss" in r])
    assert not figure.axes[3].lines and figure.axes[3].texts[0].get_text() == "not evaluated"
    assert eval_keys([{"iteration": 3, "regression/mse": 0.5, "regression/mae": 0.4}]) == [
        "regression/mae",
        "regression/mse",
    ]


def test_write_metrics_plot_writes_a_png(tmp_path):
    write(tmp_path, RECORDS)
    path = write_metrics_plot(str(tmp_path))
    assert path == str(tmp_path / "metrics.png")
    with Image.open(path) as image:
        assert image.size == (1100, 750)
        assert np.asarray(image.convert("L")).std() > 10  # not a blank canvas


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json does not exist"):
        write_metrics_plot(str(tmp_path))
    (tmp_path / "metrics.json").write_text('{"iteration": 1, "total_loss": 1}\n{"iteration": 2,\n')
    with pytest.raises(ValueError, match="metrics.json, line 2: not JSON"):
        read_metrics(str(tmp_path / "metrics.json"))
    (tmp_path / "metrics.json").write_text('{"total_loss": 1}\n')
    with pytest.raises(ValueError, match="line 1: expected a JSON object with an 'iteration'"):
        read_metrics(str(tmp_path / "metrics.json"))
    write(tmp_path, [{"iteration": 5, "bbox/AP": 1.0}])
    with pytest.raises(ValueError, match="no training line"):
        write_metrics_plot(str(tmp_path))
