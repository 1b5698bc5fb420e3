"""The adaptive 3-D sampler: Code 2's sampling points, the level-weight softmax and the grouped bilinear
reads."""

import math

import pytest
import torch

from detrkit_projects.stage_interactor.modeling.adaptive_sampling import (
    AdaptiveSampling3D,
    level_weights,
    sampling_points,
)


def test_sampling_points_follow_code_2_on_a_hand_made_query():
    xyzr = torch.tensor([[[100.0, 50.0, 4.0, 1.0]]])
    point = torch.tensor([[[[0.25, -0.5, 1.0]]]])
    subpoint = torch.tensor([[[[[0.1, 0.2, -0.5], [0.0, 0.0, 0.0]]]]])
    xy, z = sampling_points(xyzr, point, subpoint)
    w, h = 2**3.5, 2**4.5  # 2^(z - r/2), 2^(z + r/2)
    expected_x = [100 + w * (0.25 + 2 * 0.1), 100 + w * 0.25]
    expected_y = [50 + h * (-0.5 + 2 * 0.2), 50 + h * -0.5]
    assert xy[0, 0, 0, :, 0].tolist() == pytest.approx(expected_x)
    assert xy[0, 0, 0, :, 1].tolist() == pytest.approx(expected_y)
    assert z[0, 0, 0].tolist() == pytest.approx([4.5, 5.0])


def test_sampler_points_come_from_its_two_linear_layers():
    sampler = AdaptiveSampling3D(embed_dim=8, num_groups=2, num_points=3, num_subpoints=2)
    query = torch.randn(1, 1, 8)
    xyzr = torch.tensor([[[40.0, 30.0, 3.0, -0.5]]])
    xy, z = sampler.points(query, xyzr)
    d0 = sampler.point_offsets(query).view(6, 3)
    d1 = sampler.subpoint_offsets(query).view(2, 3)
    for m in range(6):
        for k in range(2):
            scale = 2 ** d0[m, 2]
            x = 40 + 2 ** (3 + 0.25) * (d0[m, 0] + scale * d1[k, 0])
            y = 30 + 2 ** (3 - 0.25) * (d0[m, 1] + scale * d1[k, 1])
            assert xy[0, 0, m, k].tolist() == pytest.approx([x.item(), y.item()], rel=1e-5)
            assert z[0, 0, m, k].item() == pytest.approx((3 + d0[m, 2] + d1[k, 2]).item(), rel=1e-5)


def test_sampler_initialisation_places_points_inside_the_box():
    sampler = AdaptiveSampling3D(embed_dim=16, num_groups=4, num_points=8, num_subpoints=8)
    assert not sampler.point_offsets.weight.any() and not sampler.subpoint_offsets.weight.any()
    point_bias = sampler.point_offsets.bias.view(-1, 3)
    assert point_bias[:, :2].abs().max() <= 0.5 and not point_bias[:, 2].any()
    sub_bias = sampler.subpoint_offsets.bias.view(8, 3)
    assert not sub_bias[0].any() and not sub_bias[:, 2].any()
    assert sub_bias[1:, :2].abs().max() <= 0.5 / math.sqrt(2)


def test_level_weights_are_the_softmax_rule():
    z = torch.tensor([3.0, 4.6, 7.2], dtype=torch.float64)
    weights = level_weights(z, strides=(4, 8, 16, 32))
    for i, zi in enumerate(z.tolist()):
        logits = [math.exp(-(((zi - 3) - level) ** 2) / 2) for level in range(4)]
        assert weights[i].tolist() == pytest.approx([v / sum(logits) for v in logits])
    # strides 8/16/32 (the shapes config) drop the stride-4 level: same rule on the remaining levels
    shifted = level_weights(z, strides=(8, 16, 32))
    for i, zi in enumerate(z.tolist()):
        logits = [math.exp(-(((zi - 3) - level) ** 2) / 2) for level in (1, 2, 3)]
        assert shifted[i].tolist() == pytest.approx([v / sum(logits) for v in logits])


def test_sampler_reads_each_groups_channels_bilinearly_on_every_level():
    """Every level holds the same ramp value(x, y) = x + 1000 g in group g's channels (cell centres at
    (j + 0.5) stride), so whatever the level weights the blended sample at an interior point is x + 1000 g."""
    groups, channels, strides = 2, 3, (4, 8)
    features = []
    for stride in strides:
        height, width = 64 // stride, 96 // stride
        ramp = (torch.arange(width, dtype=torch.float32) + 0.5) * stride
        level = ramp.expand(height, width)[None].repeat(groups * channels, 1, 1)
        level += 1000 * torch.arange(groups).repeat_interleave(channels)[:, None, None]
        features.append(level[None])
    sampler = AdaptiveSampling3D(
        embed_dim=groups * channels, num_groups=groups, num_points=2, num_subpoints=2
    )
    query = torch.zeros(1, 1, groups * channels)
    xyzr = torch.tensor([[[48.0, 32.0, 3.0, 0.0]]])
    sampled = sampler(features, strides, query, xyzr)
    assert sampled.shape == (1, 1, groups, 4, channels)
    xy, _ = sampler.points(query, xyzr)
    x = xy[0, 0, :, :, 0].reshape(groups, 4)
    expected = x + 1000 * torch.arange(groups)[:, None]
    assert torch.allclose(sampled[0, 0], expected[..., None].expand(-1, -1, channels), atol=1e-3)
