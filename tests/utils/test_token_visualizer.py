"""detrkit.utils.token_visualizer: heat colours, per-level token grids, and the panels drawn from them."""

import numpy as np
import pytest
import torch

from detrkit.utils.token_visualizer import (
    CAPTION_HEIGHT,
    captioned,
    heat_colors,
    kept_tokens_panel,
    level_grids,
    panel_row,
    query_boxes_panel,
    token_map_panel,
)
from detrkit.utils.visualizer import class_color


def test_heat_colors_brightness_is_765_times_the_value():
    values = np.linspace(0.0, 1.0, 101)
    colors = heat_colors(values).astype(int)
    assert colors[0].tolist() == [0, 0, 0] and colors[-1].tolist() == [255, 255, 255]
    assert heat_colors(np.array(0.5)).tolist() == [255, 128, 0]  # red full, green half-way, no blue
    np.testing.assert_allclose(colors.sum(-1), 765 * values, atol=1.5)


def test_heat_colors_rejects_values_outside_0_1():
    with pytest.raises(ValueError, match="1.5"):
        heat_colors(np.array([0.2, 1.5]))


def test_level_grids_split_levels_in_order_and_crop_the_padding():
    # level 0: 3x4 grid, valid 2 rows x 3 cols; level 1: 2x2 grid, valid 1x2
    values = torch.arange(16, dtype=torch.float32)
    mask0 = torch.ones(3, 4, dtype=torch.bool)
    mask0[:2, :3] = False
    mask1 = torch.ones(2, 2, dtype=torch.bool)
    mask1[:1, :2] = False
    grids = level_grids(values, torch.cat([mask0.flatten(), mask1.flatten()]), torch.tensor([[3, 4], [2, 2]]))
    assert [g.tolist() for g in grids] == [[[0, 1, 2], [4, 5, 6]], [[12, 13]]]


def test_level_grids_rejects_shapes_that_do_not_cover_the_tokens():
    with pytest.raises(ValueError, match="9 tokens, not 10"):
        level_grids(torch.zeros(10), torch.zeros(10, dtype=torch.bool), torch.tensor([[3, 3]]))


def test_token_map_panel_paints_each_token_over_its_own_rectangle():
    grid = np.array([[0.0, 0.25], [0.5, 1.0]])
    image = np.full((40, 60, 3), 100, dtype=np.uint8)
    panel = np.asarray(token_map_panel(image, grid, opacity=0.5)).astype(float)
    assert panel.shape == (40, 60, 3)
    for (row, col), value in np.ndenumerate(grid):
        block = panel[row * 20 : (row + 1) * 20, col * 30 : (col + 1) * 30]
        expected = 0.5 * heat_colors(np.array(value)).astype(float) + 0.5 * 100
        np.testing.assert_allclose(block, np.broadcast_to(expected, block.shape), atol=0.51)


def test_kept_tokens_panel_darkens_only_the_dropped_tokens():
    image = np.full((4, 6, 3), 200, dtype=np.uint8)
    panel = np.asarray(kept_tokens_panel(image, np.array([[True, False, False]]), dropped_brightness=0.25))
    assert (panel[:, :2] == 200).all() and (panel[:, 2:] == 50).all()


def test_query_boxes_panel_outlines_each_box_in_its_class_colour():
    image = np.zeros((50, 50, 3), dtype=np.uint8)
    panel = np.asarray(query_boxes_panel(image, torch.tensor([[10.0, 10.0, 30.0, 40.0]]), torch.tensor([2])))
    assert tuple(panel[10, 20]) == class_color(2) and tuple(panel[25, 30]) == class_color(2)  # top, right
    assert tuple(panel[25, 20]) == class_color(2)  # the centre dot (x 20, y 25)
    assert tuple(panel[12, 15]) == (0, 0, 0)  # inside, away from the centre: untouched


def test_captioned_panels_in_a_row():
    panels = [
        captioned(token_map_panel(np.zeros((30, 20, 3), np.uint8), np.zeros((2, 2))), f"L{i}")
        for i in range(3)
    ]
    assert panels[0].size == (20, 30 + CAPTION_HEIGHT)
    assert panel_row(panels).size == (3 * (20 + 4), 30 + CAPTION_HEIGHT + 4)
