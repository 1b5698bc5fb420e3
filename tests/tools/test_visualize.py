"""tools/visualize.py predictions: the bright-square stand-in detector on the bright COCO dataset, whose
right answers are known by hand: the best-F1 threshold, which ground truth is drawn found (green) or
missed (red), image selection and argument checks."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detrkit.utils.visualizer import (
    CAPTION_HEIGHT,
    FAINT_OPACITY,
    GT_FOUND_COLOR,
    GT_MISSED_COLOR,
    class_color,
)

HERE = Path(__file__).resolve().parent
TOOL = HERE.parents[1] / "tools" / "visualize.py"
CONFIG = HERE / "configs" / "bright_squares.py"
sys.path.insert(0, str(HERE))

from bright_detector import BrightDetector, write_bright_dataset  # noqa: E402

PAIR_W, PAIR_H = 120 + 4 + 120, 80 + CAPTION_HEIGHT  # one image: ground truth | detections, titled
CELL_W, CELL_H = PAIR_W + 4, PAIR_H + 4


def load_tool():
    spec = importlib.util.spec_from_file_location("visualize_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("visualize")
    write_bright_dataset(str(folder / "datasets"))
    import torch

    torch.save({"model": BrightDetector().state_dict()}, folder / "weights.pth")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "DETRKIT_DATASETS": str(folder / "datasets"),
    }

    def run(*args: str):
        command = [sys.executable, str(TOOL), "--config-file", str(CONFIG), "--checkpoint"]
        command += [str(folder / "weights.pth"), *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    return folder, run


def test_threshold_is_the_best_f1_on_the_test_set_and_found_objects_are_green(run):
    folder, run_tool = run
    result = run_tool("--out", str(folder / "all.png"))
    assert result.returncode == 0, result.stderr
    # detections: the bright squares of a.png and b.png at 0.9 (right), a "whole" box at 0.1 on each (wrong);
    # 3 objects (b.png's dark square cannot be found). F1 at 0.9: 4 / (4 + 0 + 1) = 0.8; at 0.1: 4 / 7
    assert "score threshold 0.900: the best F1 (0.800) at IoU 0.5 on bright_test (3 images)" in result.stdout
    grid = np.asarray(Image.open(folder / "all.png"))
    assert grid.shape == (2 * CELL_H, 2 * CELL_W, 3)  # 3 images, 2 per row
    a, b = grid[CAPTION_HEIGHT:], grid[CAPTION_HEIGHT:, CELL_W:]
    assert tuple(a[50, 25]) == GT_FOUND_COLOR  # a.png: the square [10, 20, 40, 50], bottom edge
    assert tuple(b[60, 70]) == GT_FOUND_COLOR  # b.png: the bright square [60, 40, 80, 60]
    assert tuple(b[35, 20]) == GT_MISSED_COLOR  # b.png: the dark square [5, 5, 35, 35]
    right_b = b[:, 124:]
    assert tuple(right_b[60, 70]) == class_color(0)  # the shown detection of the bright square
    assert tuple(right_b[60, 0]) == (100, 100, 100)  # the 0.1 "whole" box: below half the threshold, hidden


def test_images_by_index_or_file_and_a_given_threshold(run):
    folder, run_tool = run
    result = run_tool("--out", str(folder / "b.png"), "--image", "b.png", "--score-threshold", "0.95")
    assert result.returncode == 0, result.stderr
    assert "score threshold" not in result.stdout  # given, not chosen
    b = np.asarray(Image.open(folder / "b.png"))[CAPTION_HEIGHT:]
    assert b.shape[:2] == (CELL_H - CAPTION_HEIGHT, CELL_W)
    assert tuple(b[60, 70]) == GT_MISSED_COLOR  # at 0.95 nothing is shown: every object is missed
    # the square's 0.9 detection is at least half of 0.95: drawn faint, blended over the grey background
    faint = [round(FAINT_OPACITY * c + (1 - FAINT_OPACITY) * 100) for c in class_color(0)]
    assert np.abs(b[60, 124 + 70].astype(int) - faint).max() <= 1
    result = run_tool(
        "--out", str(folder / "two.png"), "--index", "2", "--index", "0", "--score-threshold", "0.5"
    )
    assert result.returncode == 0, result.stderr
    two = np.asarray(Image.open(folder / "two.png"))
    assert two.shape[:2] == (CELL_H, 2 * CELL_W)
    assert tuple(two[CAPTION_HEIGHT + 50, CELL_W + 25]) == GT_FOUND_COLOR  # a.png second


def test_image_selection():
    select = load_tool().select_images
    records = [{"file_name": f"/data/images/{name}"} for name in ("a.png", "b.png", "c.png")]
    assert select(records, 2, None, None) == [0, 1]
    assert select(records, 6, None, None) == [0, 1, 2]
    assert select(records, 6, [2, 0], None) == [2, 0]
    assert select(records, 6, None, ["c.png", "/data/images/a.png"]) == [2, 0]
    with pytest.raises(ValueError, match="--image 'nope.png' is not a file of the test set \\(3 images\\)"):
        select(records, 6, None, ["nope.png"])
    with pytest.raises(ValueError, match="--index 3 is outside the test set's 3 images"):
        select(records, 6, [0, 3], None)


@pytest.mark.parametrize(
    "args, message",
    [
        (("--num-images", "-3"), "argument --num-images: '-3' is not an int >= 1"),
        (("--score-threshold", "5"), "argument --score-threshold: 5.0 is not in [0, 1]"),
        (("--index", "-1"), "argument --index: '-1' is not an int >= 0"),
        (("--index", "1", "--image", "a.png"), "give --index or --image, not both"),
        (("--tokens", "--index", "1", "--index", "2"), "--tokens draws one image: give one --index"),
    ],
)
def test_bad_arguments_are_argparse_errors(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        load_tool().parse_args(["--config-file", "c.py", "--checkpoint", "w.pth", "--out", "o.png", *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
