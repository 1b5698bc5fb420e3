"""Salience targets against hand-computed values, and loss_salience against its formula in float64."""

import math

import pytest
import torch

from detrkit_projects.salience_detr.modeling import SalienceTargetGenerator, salience_focal_loss

# one 8x8-pixel level of stride 1 (input 8x8): token (i, j) sits at (j + 0.5, i + 0.5)
SHAPE = torch.tensor([[8, 8]])


def grid(targets: torch.Tensor) -> torch.Tensor:
    return targets.view(8, 8)


def test_code_variant_centre_one_edge_half_outside_zero():
    generator = SalienceTargetGenerator(level_gating=False)
    box = torch.tensor([[0.0, 0.0, 5.0, 5.0]])  # centre (2.5, 2.5) is token (2, 2)
    t = grid(generator([box], SHAPE, (8, 8))[0])
    assert t[2, 2] == 1.0
    # token (2, 0) at x=0.5: l=0.5, r=4.5 -> dx=-0.8, dy=0 -> 1 - 0.8 / 2
    assert t[2, 0].item() == pytest.approx(0.6)
    # token (0, 0): dx = dy = -0.8 -> 1 - sqrt(1.28) / 2
    assert t[0, 0].item() == pytest.approx(1 - math.sqrt(1.28) / 2)
    assert t[5:, :].abs().sum() == 0 and t[:, 5:].abs().sum() == 0


def test_paper_variant_corner_zero():
    generator = SalienceTargetGenerator(level_gating=False, confidence="paper")
    box = torch.tensor([[0.5, 0.5, 4.5, 4.5]])  # token (0, 0) sits on the corner: not strictly inside
    t = grid(generator([box], SHAPE, (8, 8))[0])
    assert t[2, 2] == 1.0 and t[0, 0] == 0.0
    # token (2, 1) at x=1.5 (w=4, Dx=-1): 1 - sqrt(2 * (1/4)^2)
    assert t[2, 1].item() == pytest.approx(1 - math.sqrt(2 / 16))
    # a token right next to the corner tends to 0: box corner at (0.4, 0.4), token (0, 0) at (0.5, 0.5)
    near = grid(generator([torch.tensor([[0.4, 0.4, 4.6, 4.6]])], SHAPE, (8, 8))[0])[0, 0]
    assert 0 < near.item() < 0.05


def test_overlapping_boxes_take_the_max():
    generator = SalienceTargetGenerator(level_gating=False)
    a, b = torch.tensor([0.0, 0.0, 5.0, 5.0]), torch.tensor([2.0, 0.0, 7.0, 5.0])
    t = grid(generator([torch.stack([a, b])], SHAPE, (8, 8))[0])
    ta = grid(generator([a[None]], SHAPE, (8, 8))[0])
    tb = grid(generator([b[None]], SHAPE, (8, 8))[0])
    assert torch.equal(t, torch.max(ta, tb))
    assert t[2, 4] == 1.0 and ta[2, 4] < 1.0  # (4.5, 2.5) is b's centre


def test_level_gating_by_size_and_strides_from_the_input_size():
    # two levels of a 32x32 input: 8x8 (stride 4) and 4x4 (stride 8); ranges (-1, 16], (16, inf) of the
    # token's largest side distance max(l, t, r, b)
    generator = SalienceTargetGenerator(scale_ranges=((-1.0, 16.0), (16.0, math.inf)))
    shapes = torch.tensor([[8, 8], [4, 4]])
    small = torch.tensor([[0.0, 0.0, 16.0, 16.0]])  # every inside token: max side distance < 16
    big = torch.tensor([[0.0, 0.0, 32.0, 32.0]])  # every token: max side distance >= 18
    t_small = generator([small], shapes, (32, 32))[0]
    t_big = generator([big], shapes, (32, 32))[0]
    # level-0 token (1, 1) at (6, 6): dx = dy = (6 - 10) / 16
    assert t_small[64:].abs().sum() == 0
    assert t_small[:64].view(8, 8)[1, 1].item() == pytest.approx(1 - math.sqrt(2 * 0.25**2) / 2)
    assert t_big[:64].abs().sum() == 0
    # level-1 token (1, 1) at (12, 12): dx = dy = (12 - 20) / 32
    assert t_big[64:].view(4, 4)[1, 1].item() == pytest.approx(1 - math.sqrt(2 * 0.25**2) / 2)
    # stride is the padded input size over the feature size, per axis: a 32x64 input on an 8x8 map
    ungated = SalienceTargetGenerator(level_gating=False)
    wide = ungated([torch.tensor([[0.0, 0.0, 8.0, 4.0]])], torch.tensor([[8, 8]]), (32, 64))
    assert wide.view(8, 8)[0, 0] == 1.0  # token (0, 0) at (4, 2): the box centre
    # a token inside a box whose scale is out of every level's range gets 0 even without other boxes
    assert generator([torch.zeros(0, 4)], shapes, (32, 32)).abs().sum() == 0


def test_salience_loss_matches_the_soft_focal_formula():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 30, generator=g, dtype=torch.float64)
    targets = torch.rand(2, 30, generator=g, dtype=torch.float64) * (torch.rand(2, 30, generator=g) > 0.6)
    p = logits.sigmoid()
    bce = -(targets * p.log() + (1 - targets) * (1 - p).log())
    weight = 0.75 * p**2 * (1 - targets) + 0.25 * targets * (1 - p) ** 2
    expected = (bce * weight).sum() / (targets > 0).sum()
    assert torch.allclose(salience_focal_loss(logits, targets), expected)
    # no positive token: normalised by 1
    zero = torch.zeros_like(targets)
    assert torch.allclose(salience_focal_loss(logits, zero), (-(1 - p).log() * 0.75 * p**2).sum())
