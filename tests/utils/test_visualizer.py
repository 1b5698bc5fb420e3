"""Drawn boxes land on the right pixels with their class colour."""

import numpy as np
import pytest
import torch

from detrkit.utils.visualizer import (
    CAPTION_HEIGHT,
    FAINT_OPACITY,
    GT_FOUND_COLOR,
    GT_MISSED_COLOR,
    class_color,
    draw_boxes,
    ground_truth_vs_predictions,
    image_grid,
)


def test_box_outline_is_drawn_in_the_class_colour():
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    drawn = np.asarray(
        draw_boxes(image, torch.tensor([[10.0, 20, 50, 35]]), torch.tensor([2]), ["a", "b", "c"])
    )
    assert tuple(drawn[35, 30]) == class_color(2)  # bottom edge
    assert tuple(drawn[28, 50]) == class_color(2)  # right edge
    assert tuple(drawn[28, 30]) == (0, 0, 0)  # inside stays untouched
    assert image.max() == 0  # the input is not modified


def test_low_scores_are_skipped_and_tensor_images_accepted():
    image = torch.zeros(3, 30, 30, dtype=torch.uint8)
    boxes = torch.tensor([[2.0, 2, 12, 12], [15, 15, 28, 28]])
    drawn = np.asarray(
        draw_boxes(
            image,
            boxes,
            torch.tensor([0, 1]),
            ["x", "y"],
            scores=torch.tensor([0.9, 0.2]),
            score_threshold=0.5,
        )
    )
    assert tuple(drawn[12, 7]) == class_color(0)
    assert tuple(drawn[28, 20]) == (0, 0, 0)


def test_side_by_side_and_grid_sizes():
    image = np.full((20, 30, 3), 128, dtype=np.uint8)
    empty = torch.zeros(0, 4)
    none = torch.zeros(0, dtype=torch.long)
    pair = ground_truth_vs_predictions(image, empty, none, empty, none, torch.zeros(0), ["a"])
    assert pair.size == (64, 20 + CAPTION_HEIGHT)
    grid = image_grid([pair, pair, pair], columns=2)
    assert grid.size == (2 * 68, 2 * (24 + CAPTION_HEIGHT))
    with pytest.raises(ValueError, match="at least one image"):
        image_grid([], columns=2)


def test_found_and_missed_ground_truth_and_faint_low_scores():
    image = np.zeros((60, 100, 3), dtype=np.uint8)
    gt_boxes = torch.tensor([[10.0, 10, 30, 30], [60, 10, 90, 40]])
    gt_classes = torch.tensor([0, 1])
    # a right detection of the first object at 0.8; the second object only at 0.3 (below the threshold 0.5)
    pred_boxes = torch.tensor([[11.0, 10, 30, 31], [60, 10, 90, 40]])
    pred = dict(
        pred_boxes=pred_boxes, pred_classes=torch.tensor([0, 1]), pred_scores=torch.tensor([0.8, 0.3])
    )
    pair = np.asarray(
        ground_truth_vs_predictions(
            image,
            gt_boxes,
            gt_classes,
            **pred,
            class_names=["a", "b"],
            score_threshold=0.5,
            faint_threshold=0.2,
        )
    )
    left, right = pair[CAPTION_HEIGHT:, :100], pair[CAPTION_HEIGHT:, 104:]
    assert tuple(left[30, 20]) == GT_FOUND_COLOR  # bottom edge of the found object
    assert tuple(left[40, 75]) == GT_MISSED_COLOR  # bottom edge of the missed one
    assert tuple(right[31, 20]) == class_color(0)  # the shown detection, full colour
    # ground truth 3 px wide (rows 30, 29, 28 of the edge at 30), detections 2 px (rows 31, 30)
    assert tuple(left[28, 20]) == GT_FOUND_COLOR and tuple(left[27, 20]) == (0, 0, 0)
    assert tuple(right[30, 20]) == class_color(0) and tuple(right[29, 20]) == (0, 0, 0)
    faint = tuple(round(FAINT_OPACITY * c) for c in class_color(1))  # blended over black
    assert all(abs(a - b) <= 1 for a, b in zip(right[40, 75], faint, strict=True))
    assert tuple(right[39, 75]) == (0, 0, 0)  # 1 px outline only
    assert pair[:CAPTION_HEIGHT].min() < 50 and pair[:CAPTION_HEIGHT].max() == 255  # dark title text


def test_without_faint_threshold_low_scores_are_not_drawn():
    image = np.zeros((60, 100, 3), dtype=np.uint8)
    box = torch.tensor([[60.0, 10, 90, 40]])
    pair = np.asarray(
        ground_truth_vs_predictions(
            image, box, torch.tensor([1]), box, torch.tensor([1]), torch.tensor([0.3]), ["a", "b"], 0.5
        )
    )
    assert pair[CAPTION_HEIGHT:, 104:].max() == 0
