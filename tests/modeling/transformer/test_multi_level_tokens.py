"""Flattening of multi-scale maps, valid ratios and encoder reference points on hand-made masks."""

import pytest
import torch

from detrkit.modeling.transformer import encoder_reference_points, flatten_multi_level, get_valid_ratio
from detrkit.modeling.transformer.multi_level import token_grid


def test_valid_ratio_counts_unpadded_rows_and_columns():
    mask = torch.zeros(2, 4, 5, dtype=torch.bool)
    mask[1, :, 3:] = True
    mask[1, 3:, :] = True
    torch.testing.assert_close(get_valid_ratio(mask), torch.tensor([[1.0, 1.0], [3 / 5, 3 / 4]]))


def test_reference_points_are_pixel_centres_of_the_valid_area():
    spatial_shapes = torch.tensor([[2, 4], [1, 2]])
    # image 0 unpadded; image 1 has the right half padded on both levels
    valid_ratios = torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[0.5, 1.0], [0.5, 1.0]]])
    points = encoder_reference_points(spatial_shapes, valid_ratios)
    assert points.shape == (2, 2 * 4 + 1 * 2, 2, 2)
    # image 0, level-0 token (row 1, col 2): ((2 + 0.5) / 4, (1 + 0.5) / 2) on every level
    torch.testing.assert_close(points[0, 6], torch.tensor([[0.625, 0.75], [0.625, 0.75]]))
    # image 0, level-1 token (row 0, col 1)
    torch.testing.assert_close(points[0, 9], torch.tensor([[0.75, 0.5], [0.75, 0.5]]))
    # image 1, level-0 token (row 0, col 0): x = 0.5 / (0.5 * 4) = 0.25 of the valid width, times each
    # level's valid ratio 0.5 -> 0.125
    torch.testing.assert_close(points[1, 0], torch.tensor([[0.125, 0.25], [0.125, 0.25]]))


def test_flatten_multi_level_concatenates_levels_and_adds_level_embeddings():
    feats = [torch.randn(2, 3, 2, 4), torch.randn(2, 3, 1, 2)]
    masks = [torch.zeros(2, 2, 4, dtype=torch.bool), torch.zeros(2, 1, 2, dtype=torch.bool)]
    masks[0][1, :, 2:] = True
    pos = [torch.randn(2, 3, 2, 4), torch.randn(2, 3, 1, 2)]
    level_embeds = torch.tensor([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])
    tokens = flatten_multi_level(feats, masks, pos, level_embeds)
    assert tokens.feat.shape == (2, 10, 3) and tokens.mask.shape == (2, 10)
    torch.testing.assert_close(tokens.feat[:, 5], feats[0][:, :, 1, 1])  # row 1, col 1 of level 0
    torch.testing.assert_close(tokens.pos[:, 9], pos[1][:, :, 0, 1] + level_embeds[1])
    assert tokens.mask[1, :8].tolist() == [False, False, True, True] * 2
    assert tokens.spatial_shapes.tolist() == [[2, 4], [1, 2]]
    assert tokens.level_start_index.tolist() == [0, 8]
    torch.testing.assert_close(tokens.valid_ratios[1], torch.tensor([[0.5, 1.0], [1.0, 1.0]]))


def test_flatten_multi_level_rejects_mismatched_levels():
    feat = torch.zeros(1, 3, 2, 2)
    mask = torch.zeros(1, 2, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="must match"):
        flatten_multi_level([feat, feat], [mask], [feat, feat], torch.zeros(2, 3))
    with pytest.raises(ValueError, match="num_feature_levels"):
        flatten_multi_level([feat, feat], [mask, mask], [feat, feat], torch.zeros(1, 3))


def test_token_grid_gives_each_tokens_level_row_and_column():
    spatial_shapes = torch.tensor([[3, 5], [2, 2], [1, 3]])
    expected = [
        (level, i, j)
        for level, (h, w) in enumerate([(3, 5), (2, 2), (1, 3)])
        for i in range(h)
        for j in range(w)
    ]
    level, row, column = token_grid(spatial_shapes, len(expected))
    assert list(zip(level.tolist(), row.tolist(), column.tolist(), strict=True)) == expected


def test_reference_points_need_no_host_read_of_the_shapes_under_export():
    class Points(torch.nn.Module):
        def forward(self, spatial_shapes, valid_ratios, feat):
            return encoder_reference_points(spatial_shapes, valid_ratios, feat.shape[1])

    spatial_shapes = torch.tensor([[2, 4], [1, 2]])
    valid_ratios = torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[0.5, 1.0], [0.5, 1.0]]])
    feat = torch.zeros(2, 10, 1)
    program = torch.export.export(Points(), (spatial_shapes, valid_ratios, feat))
    assert torch.equal(
        program.module()(spatial_shapes, valid_ratios, feat),
        encoder_reference_points(spatial_shapes, valid_ratios),
    )
