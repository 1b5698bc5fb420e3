"""The background embedding: added to valid tokens not listed by the last layer, nowhere else."""

import torch

from detrkit_projects.salience_detr.modeling import BackgroundEmbedding


def test_added_only_to_valid_unlisted_tokens():
    torch.manual_seed(0)
    shapes = torch.tensor([[3, 4], [2, 2]])
    memory = torch.randn(2, 16, 8)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[1, 3] = mask[1, 15] = True
    listed = torch.tensor([[0, 5, 12], [1, 2, 13]])
    for mode in ("absolute", "relative"):
        module = BackgroundEmbedding(embed_dim=8, max_positions=6, mode=mode)
        out = module(memory, mask, shapes, listed)
        changed = (out != memory).any(-1)
        expected = ~mask
        expected[0, listed[0]] = False
        expected[1, listed[1]] = False
        assert torch.equal(changed, expected)
    absolute = BackgroundEmbedding(embed_dim=8, max_positions=6)
    out = absolute(memory, mask, shapes, listed)
    # token (row 1, column 2) of level 0 = index 6: [col_embed[2], row_embed[1]]
    table = absolute.embedding
    expected = torch.cat([table.col_embed.weight[2], table.row_embed.weight[1]])
    assert torch.allclose(out[0, 6] - memory[0, 6], expected)
