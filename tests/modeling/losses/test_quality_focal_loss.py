"""quality_focal_loss: hand-computed elements, the sigmoid focal loss at hard targets, and the explicit
positives mask."""

import math

import pytest
import torch

from detrkit.modeling.losses import quality_focal_loss, sigmoid_focal_loss


def bce(x: float, t: float) -> tuple[float, float]:
    p = 1 / (1 + math.exp(-x))
    return -(t * math.log(p) + (1 - t) * math.log(1 - p)), p


def test_by_hand():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    targets = torch.tensor([[0.7, 0.0], [0.0, 0.0]])
    loss = quality_focal_loss(logits, targets, alpha=0.25, gamma=2.0, reduction="none")
    value, p = bce(0.0, 0.7)
    assert loss[0, 0].item() == pytest.approx(0.25 * abs(0.7 - p) ** 2 * value)
    for (i, j), x in {(0, 1): 2.0, (1, 0): -1.0, (1, 1): 0.5}.items():
        value, p = bce(x, 0.0)
        assert loss[i, j].item() == pytest.approx(0.75 * p**2 * value)


def test_hard_targets_give_the_sigmoid_focal_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 3)
    labels = (torch.rand(2, 5, 3) > 0.7).float()
    assert torch.allclose(
        quality_focal_loss(logits, labels, reduction="sum"),
        sigmoid_focal_loss(logits, labels, reduction="sum"),
    )


def test_a_positive_of_quality_zero_is_pulled_to_zero_with_the_positive_weight():
    logits = torch.tensor([[1.5, -0.5]])
    targets = torch.zeros(1, 2)
    positives = torch.tensor([[True, False]])
    loss = quality_focal_loss(logits, targets, reduction="none", positives=positives)
    value, p = bce(1.5, 0.0)
    assert loss[0, 0].item() == pytest.approx(0.25 * p**2 * value)
    value, p = bce(-0.5, 0.0)
    assert loss[0, 1].item() == pytest.approx(0.75 * p**2 * value)
    default = quality_focal_loss(logits, targets, reduction="none")
    assert default[0, 0].item() == pytest.approx(0.75 * bce(1.5, 0.0)[1] ** 2 * bce(1.5, 0.0)[0])


def test_shape_mismatches_are_named():
    with pytest.raises(ValueError, match="soft_targets"):
        quality_focal_loss(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="positives"):
        quality_focal_loss(torch.zeros(2, 3), torch.zeros(2, 3), positives=torch.zeros(3, dtype=torch.bool))
