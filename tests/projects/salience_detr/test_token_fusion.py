"""Cross-level token fusion: shapes are kept, every level mixes information of the others, and the block
structure (parameter count) is the official one."""

import torch

from detrkit_projects.salience_detr.modeling import CrossLevelTokenFusion, RepVGGPluXBlock


def test_keeps_shapes_and_fuses_across_levels():
    torch.manual_seed(0)
    fusion = CrossLevelTokenFusion(embed_dim=16, num_feature_levels=3, num_blocks=1, groups=4).eval()
    shapes = torch.tensor([[8, 8], [4, 4], [2, 2]])
    memory = torch.randn(2, 84, 16)
    out = fusion(memory, shapes)
    assert out.shape == memory.shape
    # changing only the coarsest level changes the finest level's output (top-down path) and vice versa
    other = memory.clone()
    other[:, 80:] += 1.0
    assert not torch.allclose(fusion(other, shapes)[:, :64], out[:, :64])
    other = memory.clone()
    other[:, :64] += 1.0
    assert not torch.allclose(fusion(other, shapes)[:, 80:], out[:, 80:])


def test_repvgg_plux_block_parameters():
    block = RepVGGPluXBlock(256, groups=4)
    # 3x3 and 1x1 grouped convs (no bias) + 2 BN, gate: 1x1 to 1 channel (bias), 256->16->256 (no bias)
    expected = 256 * 64 * 9 + 256 * 64 + 2 * 2 * 256 + 256 + 1 + 2 * 256 * 16
    assert sum(p.numel() for p in block.parameters()) == expected
