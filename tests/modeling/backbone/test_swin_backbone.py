"""Swin Transformer backbone: torchvision's Swin-T/S/B trunks with detectron2's outputs "p<i>"."""

import pytest
import torch
import torchvision
from torch import nn

from detrkit.modeling.backbone import SwinTransformer

ARCHS = {
    "swin_t": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "swin_s": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "swin_b": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
}
TINY = dict(embed_dim=16, depths=(2, 2, 2), num_heads=(2, 2, 4), window_size=4)


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_parameter_count_equals_torchvision_trunk(arch):
    with torch.device("meta"):
        reference = getattr(torchvision.models, arch)()
        ours = SwinTransformer(**ARCHS[arch], out_indices=(1, 2, 3))
    # torchvision's trunk without classifier and final norm, plus one LayerNorm (2C parameters) per output
    embed_dim = ARCHS[arch]["embed_dim"]
    output_norms = sum(2 * embed_dim * 2**i for i in (1, 2, 3))
    assert num_params(ours) == num_params(reference.features) + output_norms
    assert {k: (s.channels, s.stride) for k, s in ours.output_shape().items()} == {
        "p1": (2 * embed_dim, 8),
        "p2": (4 * embed_dim, 16),
        "p3": (8 * embed_dim, 32),
    }


def test_outputs_follow_output_shape_for_sizes_not_multiple_of_the_patch():
    backbone = SwinTransformer(**TINY, out_indices=(0, 1, 2)).eval()
    outputs = backbone(torch.randn(2, 3, 30, 45))
    shapes = backbone.output_shape()
    assert list(outputs) == ["p0", "p1", "p2"]
    for name, feature in outputs.items():
        stride = shapes[name].stride
        assert feature.shape == (2, shapes[name].channels, -(-30 // stride), -(-45 // stride))
    # the input is zero-padded bottom/right to a multiple of the patch size
    x = torch.randn(1, 3, 30, 45)
    padded = nn.functional.pad(x, (0, 3, 0, 2))
    torch.testing.assert_close(backbone(x)["p2"], backbone(padded)["p2"], rtol=0, atol=0)


def test_output_norms_and_pruned_stages():
    backbone = SwinTransformer(**TINY, out_indices=(1,))
    assert len(backbone.features) == 4 and hasattr(backbone, "norm1") and not hasattr(backbone, "norm0")
    assert backbone.size_divisibility == 32


def test_frozen_stages_like_detectron2():
    def trainable_blocks(frozen_stages):
        backbone = SwinTransformer(**TINY, out_indices=(0, 1, 2), frozen_stages=frozen_stages)
        return sorted(
            {
                int(n.split(".")[1])
                for n, p in backbone.named_parameters()
                if n.startswith("features.") and p.requires_grad
            }
        )

    assert trainable_blocks(-1) == [0, 1, 2, 3, 4, 5]
    assert trainable_blocks(0) == trainable_blocks(1) == [1, 2, 3, 4, 5]
    assert trainable_blocks(2) == [3, 4, 5]  # stage 0 with its patch merging
    assert trainable_blocks(3) == [5]


def test_bad_out_indices():
    with pytest.raises(ValueError, match="out_indices"):
        SwinTransformer(**TINY, out_indices=(3,))
