"""Foreground labels by scale range (both range variants) on a hand-made image; ``loss_select`` by hand."""

import math

import pytest
import torch

from detrkit_projects.focus_detr.modeling import (
    CODE_SCALE_RANGES,
    PAPER_SCALE_RANGES,
    ForegroundLabelAssigner,
    foreground_token_loss,
)

# A 128 x 128 image: levels of stride 8, 16, 32, 64 have 16x16, 8x8, 4x4, 2x2 tokens (340 in all).
SHAPES = torch.tensor([[16, 16], [8, 8], [4, 4], [2, 2]])
BOX = torch.tensor([[8.0, 8.0, 120.0, 120.0]])  # 112 x 112: max(l, t, r, b) runs from 56 (centre) to 112


def grid_labels(labels, level):
    start = [0, 256, 320, 336][level]
    height, width = SHAPES[level].tolist()
    return labels[start : start + height * width].view(height, width)


def test_code_ranges_by_hand():
    labels = ForegroundLabelAssigner(scale_ranges=CODE_SCALE_RANGES)([BOX, torch.zeros(0, 4)], SHAPES)
    assert labels.shape == (2, 340) and labels[1].sum() == 0  # an image without objects has no positives
    # stride 8, centres 4 + 8j: max side distance <= 64 only at x, y in {60, 68} (j = 7, 8)
    expected0 = torch.zeros(16, 16)
    expected0[7:9, 7:9] = 1
    assert torch.equal(grid_labels(labels[0], 0), expected0)
    # stride 16, centres 8 + 16j: strictly inside for j = 1..6; max distance > 64 except at x, y in {56, 72}
    expected1 = torch.zeros(8, 8)
    expected1[1:7, 1:7] = 1
    expected1[3:5, 3:5] = 0
    assert torch.equal(grid_labels(labels[0], 1), expected1)
    # no token of the box reaches max distance > 128: levels 2 and 3 are empty
    assert labels[0, 320:].sum() == 0


def test_paper_overlapping_ranges_by_hand():
    labels = ForegroundLabelAssigner(scale_ranges=PAPER_SCALE_RANGES)([BOX], SHAPES)[0]
    # stride 8: every centre strictly inside the box (x in 12 .. 116, j = 1..14) has max distance <= 128
    expected0 = torch.zeros(16, 16)
    expected0[1:15, 1:15] = 1
    assert torch.equal(grid_labels(labels, 0), expected0)
    # stride 16: (64, 256], the same 32 tokens as the code's (64, 128]
    assert grid_labels(labels, 1).sum() == 32 and grid_labels(labels, 1)[3:5, 3:5].sum() == 0
    assert labels[320:].sum() == 0


def test_large_box_lands_on_the_coarse_levels():
    # A 512 x 512 box on a 512 x 512 image (levels of 64x64, 32x32, 16x16, 8x8 tokens): stride-32 centres
    # 16 + 32j are at max distance 272 .. 496 and stride-64 centres 32 + 64j at 288 .. 480. Code: only level 3
    # (256, inf); paper: level 2 (128, 512] too.
    shapes = torch.tensor([[64, 64], [32, 32], [16, 16], [8, 8]])
    box = torch.tensor([[0.0, 0.0, 512.0, 512.0]])
    code = ForegroundLabelAssigner()([box], shapes)[0]
    paper = ForegroundLabelAssigner(scale_ranges=PAPER_SCALE_RANGES)([box], shapes)[0]
    level2, level3 = slice(4096 + 1024, 4096 + 1024 + 256), slice(4096 + 1024 + 256, None)
    assert (code[level2].sum(), code[level3].sum()) == (0, 64)
    assert (paper[level2].sum(), paper[level3].sum()) == (256, 64)


def test_loss_select_by_hand():
    logits = torch.zeros(2, 340)
    labels = torch.zeros(2, 340)
    labels[0, :4] = 1
    # p = 0.5: a positive costs 0.25 * 0.5^2 * ln 2, a negative 0.75 * 0.5^2 * ln 2; per image / max(1, #pos)
    image0 = (4 * 0.25 + 336 * 0.75) * 0.25 * math.log(2) / 4
    image1 = 340 * 0.75 * 0.25 * math.log(2) / 1
    assert foreground_token_loss(logits, labels).item() == pytest.approx((image0 + image1) / 2, rel=1e-6)


def test_loss_select_stays_finite_where_the_official_log_of_the_sigmoid_is_infinite():
    """float32 logits of 20 (sigmoid exactly 1) on a negative token and -120 (sigmoid exactly 0) on a
    positive one: the official -w (1 - p_t)^gamma log(p_t) is infinite there; loss_select is the focal loss
    computed from the logits, here by hand in float64: per token w (1 - p_t)^2 softplus(-z), z the signed
    logit, divided by the 2 positives."""
    logits = torch.tensor([[20.0, -120.0, 0.5]])
    labels = torch.tensor([[0.0, 1.0, 1.0]])
    p = torch.sigmoid(logits)
    p_t = p * labels + (1 - p) * (1 - labels)
    assert torch.isinf(-(p_t.log())).sum() == 2  # the official arithmetic overflows on both
    loss = foreground_token_loss(logits, labels)
    expected = 0.0
    for x, y in zip(logits[0].double().tolist(), labels[0].tolist(), strict=True):
        z = x if y else -x  # log p_t = -softplus(-z)
        p_t64 = 1 / (1 + math.exp(-z))
        w = 0.25 if y else 0.75
        expected += w * (1 - p_t64) ** 2 * math.log1p(math.exp(-z))
    assert torch.isfinite(loss) and loss.item() == pytest.approx(expected / 2, rel=1e-5)


def test_assigner_checks_levels():
    with pytest.raises(ValueError, match="2 strides"):
        ForegroundLabelAssigner(strides=(8, 16))
    with pytest.raises(ValueError, match="4 feature levels but 3 strides"):
        ForegroundLabelAssigner((8, 16, 32), CODE_SCALE_RANGES[:3])([BOX], SHAPES)
