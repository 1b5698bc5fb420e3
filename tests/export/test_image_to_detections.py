"""ImageToDetections feeds one image tensor to a detectron2-style detector and returns its detections as
tensors; export_detector_onnx refuses opsets without GridSample."""

import pytest
import torch
from torch import nn

from detrkit.export import ImageToDetections, export_detector_onnx
from detrkit.structures.boxes import Boxes
from detrkit.structures.instances import Instances


class RecordingDetector(nn.Module):
    """Returns two fixed detections and records what it was given."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, batched_inputs):
        self.calls.append((self.training, batched_inputs))
        result = Instances((batched_inputs[0]["height"], batched_inputs[0]["width"]))
        result.pred_boxes = Boxes(torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 5.0, 5.0]]))
        result.scores = torch.tensor([0.9, 0.2])
        result.pred_classes = torch.tensor([2, 0])
        return [{"instances": result}]


def test_one_image_in_detection_tensors_out():
    detector = RecordingDetector().train()
    image = torch.rand(1, 3, 20, 30) * 255
    boxes, scores, labels = ImageToDetections(detector)(image)
    training, batched_inputs = detector.calls[0]
    assert not training
    assert batched_inputs[0]["height"] == 20 and batched_inputs[0]["width"] == 30
    assert torch.equal(batched_inputs[0]["image"], image[0])
    assert torch.equal(boxes, torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 5.0, 5.0]]))
    assert torch.equal(scores, torch.tensor([0.9, 0.2])) and torch.equal(labels, torch.tensor([2, 0]))


@pytest.mark.parametrize("shape", [(3, 20, 30), (2, 3, 20, 30), (1, 1, 20, 30)])
def test_rejects_other_than_one_rgb_image(shape):
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        ImageToDetections(RecordingDetector())(torch.zeros(shape))


def test_rejects_opsets_without_grid_sample(tmp_path):
    with pytest.raises(ValueError, match="opset 15"):
        export_detector_onnx(RecordingDetector(), tmp_path / "m.onnx", torch.zeros(1, 3, 8, 8), opset=15)
