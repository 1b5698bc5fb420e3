"""Top-K detections over query x class scores and detectron2's detector_postprocess, on hand-made values."""

import math

import pytest
import torch

from detrkit.modeling.postprocessing import detector_postprocess, topk_detections
from detrkit.structures import Boxes, Instances


def logit(p):
    return math.log(p / (1 - p))


def test_topk_detections_ranks_every_query_class_pair():
    box_cls = torch.tensor([[[logit(0.9), logit(0.2)], [logit(0.8), logit(0.95)], [logit(0.1), logit(0.3)]]])
    box_pred = torch.tensor([[[0.5, 0.5, 0.2, 0.4], [0.25, 0.25, 0.5, 0.5], [0.1, 0.1, 0.1, 0.1]]])
    (result,) = topk_detections(box_cls, box_pred, [(100, 200)], num_select=3)
    assert result.image_size == (100, 200)
    torch.testing.assert_close(result.scores, torch.tensor([0.95, 0.9, 0.8]))
    assert result.pred_classes.tolist() == [1, 0, 0]
    # query 1 twice (classes 1 and 0), query 0 once; cxcywh -> xyxy in pixels of the 200 x 100 input
    expected_q1 = torch.tensor([0.0, 0.0, 100.0, 50.0])
    expected_q0 = torch.tensor([80.0, 30.0, 120.0, 70.0])
    torch.testing.assert_close(result.pred_boxes.tensor, torch.stack([expected_q1, expected_q0, expected_q1]))
    (everything,) = topk_detections(box_cls, box_pred, [(100, 200)], num_select=300)
    assert len(everything) == 6  # at most queries x classes


def test_topk_detections_checks_the_batch():
    with pytest.raises(ValueError, match="2 predictions but 1 image sizes"):
        topk_detections(torch.zeros(2, 3, 2), torch.zeros(2, 3, 4), [(10, 10)], 5)


def test_detector_postprocess_rescales_clips_and_drops_empty_boxes():
    results = Instances((50, 100))
    results.pred_boxes = Boxes(
        torch.tensor([[10.0, 5.0, 30.0, 25.0], [90.0, 40.0, 120.0, 60.0], [110.0, 0, 130.0, 10.0]])
    )
    results.scores = torch.tensor([0.9, 0.8, 0.7])
    results.pred_classes = torch.tensor([1, 2, 3])
    out = detector_postprocess(results, 100, 300)  # 2x vertically, 3x horizontally
    assert out.image_size == (100, 300)
    # box 2 lies right of the image: empty after clipping, dropped
    torch.testing.assert_close(
        out.pred_boxes.tensor, torch.tensor([[30.0, 10.0, 90.0, 50.0], [270.0, 80.0, 300.0, 100.0]])
    )
    assert out.scores.tolist() == pytest.approx([0.9, 0.8]) and out.pred_classes.tolist() == [1, 2]


def test_detector_postprocess_needs_boxes():
    results = Instances((10, 10))
    results.scores = torch.tensor([0.5])
    with pytest.raises(ValueError, match="neither pred_boxes nor proposal_boxes"):
        detector_postprocess(results, 20, 20)
