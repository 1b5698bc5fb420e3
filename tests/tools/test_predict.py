"""tools/predict.py: inputs (files, folders, globs), argument checks, tiling against hand cases with a
stand-in detector that finds bright squares, and the written JSON/CSV/PNGs."""

import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detrkit.data import transforms as T
from detrkit.utils.prediction import drop_cut_boxes, merge_tile_detections, predict_image, tile_starts

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TOOL = REPO / "tools" / "predict.py"
CONFIG = HERE / "configs" / "bright_squares.py"
sys.path.insert(0, str(HERE))

from bright_detector import BrightDetector, image_with_squares, write_bright_dataset  # noqa: E402


def image_with_square(height: int, width: int, x0: int, y0: int, side: int) -> torch.Tensor:
    """``(3, H, W)`` uint8: grey with a white ``side`` x ``side`` square at ``(x0, y0)``."""
    return image_with_squares(height, width, [(x0, y0, side, 255)])


def load_tool():
    spec = importlib.util.spec_from_file_location("predict_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(tmp_path: Path, *args: str):
    """Runs the tool with the bright dataset's class names (written under ``tmp_path/datasets``)."""
    write_bright_dataset(str(tmp_path / "datasets"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "DETRKIT_DATASETS": str(tmp_path / "datasets"),
    }
    command = [sys.executable, str(TOOL), "--config-file", str(CONFIG), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_tile_starts():
    assert tile_starts(100, 50, 20) == [0, 30, 50]  # stride 30, the last tile ends at 100
    assert tile_starts(110, 50, 0) == [0, 50, 60]
    assert tile_starts(40, 50, 10) == [0]
    with pytest.raises(ValueError, match="overlap=50, size=50"):
        tile_starts(100, 50, 50)


def test_boxes_cut_by_an_inner_tile_edge_are_dropped():
    boxes = torch.tensor([[40.0, 10, 50, 20], [10, 10, 20, 20], [0, 0, 5, 5], [30.5, 40, 35, 45]])
    # tile x 0..50 of a 100-wide image: its right edge (x=50) is inside the image, its left edge is not
    assert drop_cut_boxes(boxes, (0, 0, 50, 50), (50, 100)).tolist() == [False, True, True, True]
    # tile x 30..80: both x edges inside the image (30.5 and 79.5 are within the 1-pixel margin), y=0 is not
    boxes = torch.tensor([[40.0, 10, 50, 20], [30.5, 40, 35, 45], [70, 5, 79.5, 15], [60, 0, 70, 10]])
    assert drop_cut_boxes(boxes, (30, 0, 80, 50), (50, 100)).tolist() == [True, False, False, True]


def test_merge_keeps_the_best_of_overlapping_boxes_per_class():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [1, 0, 11, 10], [50, 50, 60, 60]])
    scores = torch.tensor([0.8, 0.9, 0.7, 0.5])
    classes = torch.tensor([0, 0, 1, 0])
    # box 0 overlaps box 1 with IoU 9/11 > 0.5: suppressed; box 2 is another class
    assert merge_tile_detections(boxes, scores, classes, 0.5).tolist() == [1, 2, 3]


def test_tiles_give_the_whole_square_once():
    model = BrightDetector().eval()
    image = image_with_square(60, 100, 40, 20, 10)  # square x 40..50, y 20..30
    # tiles x 0..50, 30..80, 50..100: the first cuts the square at x=50 (dropped), the second holds it
    # whole, the third does not see it; y has one tile
    boxes, scores, classes = predict_image(model, image, [], 0.5, tile=50, overlap=20)
    assert boxes.tolist() == [[40.0, 20.0, 50.0, 30.0]] and scores.tolist() == pytest.approx([0.9])
    assert classes.tolist() == [0]
    # overlap 30: tiles x 0..50 (cut), 20..70 and 40..90 both hold it whole: NMS keeps one
    boxes, _, _ = predict_image(model, image, [], 0.5, tile=50, overlap=30)
    assert boxes.tolist() == [[40.0, 20.0, 50.0, 30.0]]
    # without tiles: the square, and the whole-image box only above its score
    boxes, scores, _ = predict_image(model, image, [], 0.05)
    assert boxes.tolist() == [[40.0, 20.0, 50.0, 30.0], [0.0, 0.0, 100.0, 60.0]]
    assert scores.tolist() == pytest.approx([0.9, 0.1])


def test_tiles_are_resized_by_the_test_augmentation_and_boxes_come_back_in_pixels():
    model = BrightDetector().eval()
    image = image_with_square(80, 120, 64, 16, 16)
    resize = [T.ResizeShortestEdge(short_edge_length=40, max_size=1000)]  # each 80 x 80 tile to 40 x 40
    boxes, _, _ = predict_image(model, image, resize, 0.5, tile=80, overlap=40)
    assert boxes.tolist() == [[64.0, 16.0, 80.0, 32.0]]


def write_images(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = [folder / "a.png", folder / "b.jpg", folder / "c.png"]
    Image.fromarray(image_with_square(80, 120, 10, 20, 30).permute(1, 2, 0).numpy()).save(paths[0])
    Image.fromarray(image_with_square(80, 120, 60, 40, 20).permute(1, 2, 0).numpy()).save(
        paths[1], quality=100
    )
    Image.fromarray(np.full((80, 120, 3), 100, np.uint8)).save(paths[2])  # nothing to detect
    (folder / "notes.txt").write_text("not an image")
    return paths


def test_predict_on_a_folder_writes_json_csv_and_pngs(tmp_path):
    write_images(tmp_path / "images")
    torch.save({"model": BrightDetector().state_dict()}, tmp_path / "weights.pth")
    out = tmp_path / "out"
    result = run_tool(
        tmp_path,
        "--checkpoint",
        str(tmp_path / "weights.pth"),
        "--input",
        str(tmp_path / "images"),
        "--output",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 2 detections with score >= 0.3 of 3 images" in result.stdout
    records = json.loads((out / "predictions.json").read_text())
    # the test mapper halves the images: boxes come back in the original pixels, category ids are the
    # dataset's (contiguous 0 -> id 5)
    expected = [
        {"image_id": 0, "file_name": str(tmp_path / "images" / "a.png"), "category_id": 5,
         "category_name": "bright", "bbox": [10.0, 20.0, 30.0, 30.0], "score": 0.9},
        {"image_id": 1, "file_name": str(tmp_path / "images" / "b.jpg"), "category_id": 5,
         "category_name": "bright", "bbox": [60.0, 40.0, 20.0, 20.0], "score": 0.9},
    ]  # fmt: skip
    assert records == expected
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["file_name"], r["category_name"], float(r["x"]), float(r["w"])) for r in rows] == [
        (str(tmp_path / "images" / "a.png"), "bright", 10.0, 30.0),
        (str(tmp_path / "images" / "b.jpg"), "bright", 60.0, 20.0),
    ]
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "b.png", "c.png"]
    with Image.open(out / "a.png") as drawn:
        assert drawn.size == (120, 80)


def test_globs_files_and_repeated_stems(tmp_path):
    paths = write_images(tmp_path / "images")
    (tmp_path / "more").mkdir()
    Image.open(paths[0]).save(tmp_path / "more" / "a.png")
    torch.save({"model": BrightDetector().state_dict()}, tmp_path / "weights.pth")
    out = tmp_path / "out"
    result = run_tool(
        tmp_path, "--checkpoint", str(tmp_path / "weights.pth"), "--output", str(out),
        "--score-threshold", "0.05",
        "--input", str(tmp_path / "images" / "*.png"), str(paths[0]), str(tmp_path / "more" / "a.png"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = json.loads((out / "predictions.json").read_text())
    # images/a.png, images/c.png (the glob; a.png once), more/a.png; a threshold of 0.05 keeps the 0.1 boxes
    assert sorted({(r["image_id"], os.path.basename(os.path.dirname(r["file_name"]))) for r in records}) == [
        (0, "images"),
        (2, "more"),
    ]
    assert sorted(r["category_name"] for r in records) == ["bright", "bright", "whole", "whole"]
    assert sorted(p.name for p in out.glob("*.png")) == ["a_0.png", "a_2.png", "c.png"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--score-threshold", "1.5"), "argument --score-threshold: 1.5 is not in [0, 1]"),
        (("--tile", "0"), "argument --tile: '0' is not an int >= 1"),
        (("--tile", "64", "--overlap", "-1"), "argument --overlap: '-1' is not an int >= 0"),
        (("--tile", "64", "--overlap", "64"), "--overlap 64 must be smaller than --tile 64"),
        (("--overlap", "8"), "--overlap needs --tile"),
        (("--nms-threshold", "x"), "argument --nms-threshold: 'x' is not a number"),
    ],
)
def test_bad_arguments_are_argparse_errors(capsys, args, message):
    common = ["--config-file", "c.py", "--checkpoint", "w.pth", "--input", "x", "--output", "out"]
    with pytest.raises(SystemExit) as exit_info:
        load_tool().parse_args([*common, *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_overrides_after_the_inputs_are_overrides():
    args = load_tool().parse_args(
        ["--config-file", "c.py", "--checkpoint", "w.pth", "--output", "out", "--input", "a.png", "b/*.png"]
        + ["train.device=cpu", "+model.x=1"]
    )
    assert args.input == ["a.png", "b/*.png"] and args.opts == ["train.device=cpu", "+model.x=1"]


def test_an_input_matching_nothing_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"--input '{tmp_path / '*.png'}': no such image")):
        load_tool().list_images([str(tmp_path / "*.png")])


def test_bf16_runs_the_model_under_cpu_bfloat16_autocast(tmp_path, monkeypatch):
    tool = load_tool()
    seen = []

    def recording_predict_image(*args, **kwargs):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return predict_image(*args, **kwargs)

    monkeypatch.setattr(tool, "predict_image", recording_predict_image)
    write_bright_dataset(str(tmp_path / "datasets"))
    monkeypatch.setenv("DETRKIT_DATASETS", str(tmp_path / "datasets"))
    Image.fromarray(image_with_square(80, 120, 10, 20, 30).permute(1, 2, 0).numpy()).save(tmp_path / "a.png")
    torch.save({"model": BrightDetector().state_dict()}, tmp_path / "weights.pth")
    common = ["--config-file", str(CONFIG), "--checkpoint", str(tmp_path / "weights.pth")]
    tool.main([*common, "--input", str(tmp_path / "a.png"), "--output", str(tmp_path / "out")])
    tool.main([*common, "--input", str(tmp_path / "a.png"), "--output", str(tmp_path / "out16"), "--bf16"])
    assert seen == [(False, torch.bfloat16), (True, torch.bfloat16)]
    assert (tmp_path / "out16" / "predictions.json").read_text() == (
        tmp_path / "out" / "predictions.json"
    ).read_text()
