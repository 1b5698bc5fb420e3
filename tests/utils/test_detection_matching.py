"""Greedy matching of detections to ground truth and the best-F1 score threshold, against hand counts."""

import pytest
import torch

from detrkit.utils.detection_matching import best_f1_threshold, match_detections


def test_greedy_matching_by_score_class_and_iou():
    gt_boxes = torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]])
    gt_classes = torch.tensor([0, 0, 1])
    pred_boxes = torch.tensor(
        [
            [0.0, 0, 10, 10],  # 0: exact on gt 0, score 0.6
            [0, 0, 10, 9],  # 1: IoU 0.9 with gt 0, score 0.9: takes gt 0 first
            [20, 0, 30, 4],  # 2: IoU 0.4 with gt 1: below 0.5, false positive
            [40, 0, 50, 10],  # 3: right place, wrong class (gt 2 is class 1)
            [41, 0, 50, 10],  # 4: class 1, IoU 0.9 with gt 2
        ]
    )
    scores = torch.tensor([0.6, 0.9, 0.8, 0.7, 0.5])
    classes = torch.tensor([0, 0, 0, 0, 1])
    pred_match, gt_match = match_detections(pred_boxes, scores, classes, gt_boxes, gt_classes)
    assert pred_match.tolist() == [-1, 0, -1, -1, 2]  # 0 comes after 1: gt 0 is taken, a duplicate
    assert gt_match.tolist() == [1, -1, 4]
    assert match_detections(pred_boxes, scores, classes, gt_boxes, gt_classes, 0.35)[0].tolist() == [
        -1,
        0,
        1,
        -1,
        2,
    ]


def test_empty_inputs():
    pred_match, gt_match = match_detections(
        torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), torch.ones(2, 4), torch.zeros(2)
    )
    assert pred_match.tolist() == [] and gt_match.tolist() == [-1, -1]


def test_best_f1_threshold_by_hand():
    # by score: 0.9 TP, 0.8 FP, 0.7 TP, 0.6 TP, 0.2 FP; 4 ground-truth boxes
    scores = torch.tensor([0.2, 0.9, 0.6, 0.8, 0.7])
    tp = torch.tensor([False, True, True, False, True])
    # F1 at 0.9: 2/(2+0+3)=0.4; 0.8: 2/(2+1+3)=0.333; 0.7: 4/(4+1+2)=0.571; 0.6: 6/(6+1+1)=0.75;
    # 0.2: 6/(6+2+1)=0.667
    threshold, f1 = best_f1_threshold(scores, tp, num_ground_truth=4)
    assert threshold == pytest.approx(0.6) and f1 == pytest.approx(0.75)


def test_ties_are_kept_together_and_degenerate_cases():
    # two detections of score 0.5, one right one wrong: keeping one keeps both
    threshold, f1 = best_f1_threshold(torch.tensor([0.5, 0.5]), torch.tensor([True, False]), 1)
    assert threshold == 0.5 and f1 == pytest.approx(2 / 3)
    assert best_f1_threshold(torch.tensor([0.4]), torch.tensor([False]), 3) == (1.0, 0.0)
    with pytest.raises(ValueError, match="2 scores but 1 flags"):
        best_f1_threshold(torch.tensor([0.1, 0.2]), torch.tensor([True]), 1)
