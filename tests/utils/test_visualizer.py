"""Drawn boxes land on the right pixels with their class colour."""

import numpy as np
import pytest
import torch

from detrkit.utils.visualizer import class_color, draw_boxes, ground_truth_vs_predictions, image_grid


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
    assert pair.size == (64, 20)
    grid = image_grid([pair, pair, pair], columns=2)
    assert grid.size == (2 * 68, 2 * 24)
    with pytest.raises(ValueError, match="at least one image"):
        image_grid([], columns=2)
