"""torch.export captures the shipped DINO (projects/dino/configs/dino_shapes.py, random weights perturbed so
that every layer matters) in eval mode, image to detections, and the exported program gives eager PyTorch's
detections on the export image and on another one; the torch.export-based ONNX exporter writes it and
onnxruntime agrees (tolerances as in tests/tools/test_export_onnx.py)."""

import importlib.util
from pathlib import Path

import pytest
import torch

import detrkit
from detrkit.export import ImageToDetections, compare_with_onnxruntime, export_detector_onnx

pytestmark = pytest.mark.skipif(not detrkit.ops_info()["cpu"], reason="detrkit._C is not built")

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "projects" / "dino" / "configs" / "dino_shapes.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("export_onnx_tool", REPO / "tools" / "export_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_and_tool():
    tool = load_tool()
    model = tool.build_model(str(CONFIG), None, [])
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
    return model, tool


def test_exported_program_gives_eager_detections(model_and_tool):
    model, tool = model_and_tool
    wrapper = ImageToDetections(model)
    with torch.no_grad():
        program = torch.export.export(wrapper, (tool.random_image(128, 128, seed=0),))
        targets = {str(node.target) for node in program.graph.nodes}
        assert "detrkit.ms_deform_attn_forward.default" in targets  # the compiled op, not its reference
        for seed in (0, 1):
            image = tool.random_image(128, 128, seed=seed)
            boxes, scores, labels = wrapper(image)
            exported = program.module()(image)
            assert boxes.shape == (model.select_box_nums_for_evaluation, 4)
            torch.testing.assert_close(exported[0], boxes, rtol=0, atol=1e-4)
            torch.testing.assert_close(exported[1], scores, rtol=0, atol=1e-6)
            assert torch.equal(exported[2], labels)


def test_dynamo_onnx_export_matches_onnxruntime(model_and_tool, tmp_path):
    pytest.importorskip("onnxruntime")
    model, tool = model_and_tool
    path = tmp_path / "dino.onnx"
    export_detector_onnx(model, path, tool.random_image(128, 128, seed=0), exporter="dynamo")
    for seed in (0, 1):
        check = compare_with_onnxruntime(model, path, tool.random_image(128, 128, seed=seed))
        assert check["detections"] == model.select_box_nums_for_evaluation and check["labels_equal"]
        assert check["max_abs_diff_boxes"] < 1e-3 and check["max_abs_diff_scores"] < 1e-5
