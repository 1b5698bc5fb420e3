"""tools/export_onnx.py: DINO, Salience DETR, Focus-DETR and Rank-DETR (their shapes configs, random weights)
export to ONNX, and onnxruntime on CPU gives PyTorch's detections on the export image and on another one.

Tolerances: both run in float32 with different kernels (convolutions, matmuls, bilinear sampling), so results
differ by rounding, amplified through ~10 layers: about 3e-5 px on boxes and 1e-7 on scores are measured at
128 px. 1e-3 px and 1e-5 leave a 30x/100x margin and stay far below what any wrong operator gives (a query
selected differently moves boxes by pixels and scores by ~1e-3; labels must be equal)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from detrkit.export import compare_with_onnxruntime, export_detector_onnx

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "export_onnx.py"
BOX_TOLERANCE = 1e-3
SCORE_TOLERANCE = 1e-5


def load_tool():
    spec = importlib.util.spec_from_file_location("export_onnx_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def perturbed_model(config: str):
    """The config's model with its random initialisation perturbed, so that the zero-initialised layers (box
    heads' last layer, attention weights and offsets) matter and queries differ from each other."""
    model = load_tool().build_model(str(REPO / config), None, [])
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
    return model


def assert_same_detections(model, path, image):
    check = compare_with_onnxruntime(model, path, image)
    assert check["detections"] == model.select_box_nums_for_evaluation
    assert check["labels_equal"]
    assert check["max_abs_diff_boxes"] < BOX_TOLERANCE
    assert check["max_abs_diff_scores"] < SCORE_TOLERANCE


@pytest.mark.parametrize(
    "config",
    [
        "projects/dino/configs/dino_shapes.py",
        "projects/salience_detr/configs/salience_detr_shapes.py",
        "projects/focus_detr/configs/focus_detr_shapes.py",
        "projects/rank_detr/configs/rank_detr_shapes.py",
    ],
)
def test_onnxruntime_gives_pytorch_detections(tmp_path, config):
    tool = load_tool()
    model = perturbed_model(config)
    path = tmp_path / "model.onnx"
    export_detector_onnx(model, path, tool.random_image(128, 128, seed=0))
    for seed in (0, 1):
        assert_same_detections(model, path, tool.random_image(128, 128, seed=seed))


def test_salience_query_count_follows_the_image(tmp_path):
    """At 96 px fewer tokens than queries survive the redundancy removal, a number that depends on the image
    (74 on the export image, 76 on the other): the graph must not keep the export image's count."""
    tool = load_tool()
    model = perturbed_model("projects/salience_detr/configs/salience_detr_shapes.py")
    path = tmp_path / "model.onnx"
    export_detector_onnx(model, path, tool.random_image(96, 96, seed=0))
    assert_same_detections(model, path, tool.random_image(96, 96, seed=3))


def test_cli_check_prints_json_last(tmp_path):
    out = tmp_path / "dino.onnx"
    command = [sys.executable, str(TOOL), "--config-file", "projects/dino/configs/dino_shapes.py"]
    command += ["--out", str(out), "--height", "96", "--width", "128", "--check", "--float64-reference"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert out.is_file() and report["input_size"] == [96, 128] and len(report["images"]) == 2
    assert report["max_abs_diff_boxes"] < BOX_TOLERANCE and report["max_abs_diff_scores"] < SCORE_TOLERANCE
    for check in report["images"]:  # float64 moves this small model's detections by rounding only
        assert 0 < check["float64_max_abs_diff_boxes"] < BOX_TOLERANCE
        assert 0 < check["float64_max_abs_diff_scores"] < SCORE_TOLERANCE
