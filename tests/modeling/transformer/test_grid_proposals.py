"""Two-stage grid proposals on hand-made levels: centres, sizes, validity, padding."""

import torch

from detrkit.modeling.transformer import grid_proposals


def test_grid_proposals_centres_sizes_and_validity():
    # level 0: 2 x 60 (w = h = 0.05), level 1: 1 x 1 (w = h = 0.1); image 1 pads columns >= 30 of level 0
    spatial_shapes = torch.tensor([[2, 60], [1, 1]])
    mask = torch.zeros(2, 121, dtype=torch.bool)
    mask[1, :120] = (torch.arange(60) >= 30).repeat(2)
    proposals, valid = grid_proposals(mask, spatial_shapes)
    assert proposals.shape == (2, 121, 4) and valid.shape == (2, 121, 1)

    boxes = proposals.sigmoid()
    # image 0, row 1, column 7: centre ((7 + 0.5) / 60, (1 + 0.5) / 2), size 0.05
    torch.testing.assert_close(boxes[0, 60 + 7], torch.tensor([7.5 / 60, 0.75, 0.05, 0.05]))
    # the 1 x 1 level: the image centre, size 0.1
    torch.testing.assert_close(boxes[0, 120], torch.tensor([0.5, 0.5, 0.1, 0.1]))
    # columns 0 (cx = 0.0083) and 59 (cx = 0.9917) lie outside (0.01, 0.99): invalid, +inf
    expected_valid = torch.ones(121, dtype=torch.bool)
    expected_valid[[0, 59, 60, 119]] = False
    assert valid[0, :, 0].tolist() == expected_valid.tolist()
    assert torch.isinf(proposals[0, ~expected_valid]).all()
    assert torch.isfinite(proposals[0, expected_valid]).all()

    # image 1: centres normalised by the 30 valid columns; padding is +inf
    torch.testing.assert_close(boxes[1, 7], torch.tensor([7.5 / 30, 0.25, 0.05, 0.05]))
    assert torch.isinf(proposals[1, 30:60]).all() and torch.isinf(proposals[1, 90:120]).all()
    assert torch.isfinite(proposals[1, 1:30]).all()
