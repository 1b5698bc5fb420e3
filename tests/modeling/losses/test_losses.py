"""sigmoid_focal_loss, l1_loss and giou_loss: hand-computed values and torchvision as the reference."""

import math

import pytest
import torch
from torchvision.ops import generalized_box_iou_loss
from torchvision.ops import sigmoid_focal_loss as tv_sigmoid_focal_loss

from detrkit.modeling.losses import giou_loss, l1_loss, paired_generalized_box_iou, sigmoid_focal_loss
from detrkit.structures import generalized_box_iou


def focal_by_hand(logit: float, target: int, alpha: float = 0.25, gamma: float = 2.0) -> float:
    p = 1 / (1 + math.exp(-logit))
    if target:
        return alpha * (1 - p) ** gamma * -math.log(p)
    return (1 - alpha) * p**gamma * -math.log(1 - p)


def test_focal_loss_hand_computed_and_reductions():
    preds = torch.tensor([2.0, -1.0, 0.5])
    targets = torch.tensor([1.0, 0.0, 1.0])
    expected = [focal_by_hand(2.0, 1), focal_by_hand(-1.0, 0), focal_by_hand(0.5, 1)]
    assert sigmoid_focal_loss(preds, targets, reduction="none").tolist() == pytest.approx(expected, rel=1e-5)
    assert sigmoid_focal_loss(preds, targets, reduction="sum").item() == pytest.approx(
        sum(expected), rel=1e-5
    )
    assert sigmoid_focal_loss(preds, targets).item() == pytest.approx(sum(expected) / 3, rel=1e-5)
    assert sigmoid_focal_loss(preds, targets, avg_factor=2.0).item() == pytest.approx(
        sum(expected) / 2, rel=1e-5
    )
    weight = torch.tensor([1.0, 0.0, 2.0])
    assert sigmoid_focal_loss(preds, targets, weight, reduction="sum").item() == pytest.approx(
        expected[0] + 2 * expected[2], rel=1e-5
    )
    gamma0 = sigmoid_focal_loss(preds, targets, alpha=-1, gamma=0.0, reduction="sum")
    bce = torch.nn.functional.binary_cross_entropy_with_logits(preds, targets, reduction="sum")
    assert gamma0.item() == pytest.approx(bce.item(), rel=1e-6)


@pytest.mark.parametrize("alpha", [0.25, -1.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_focal_loss_matches_torchvision(alpha, reduction):
    g = torch.Generator().manual_seed(0)
    preds = torch.randn(6, 7, generator=g) * 3
    targets = (torch.rand(6, 7, generator=g) > 0.7).float()
    ours = sigmoid_focal_loss(preds, targets, alpha=alpha, gamma=1.5, reduction=reduction)
    ref = tv_sigmoid_focal_loss(preds, targets, alpha=alpha, gamma=1.5, reduction=reduction)
    torch.testing.assert_close(ours, ref)


def test_focal_loss_bad_arguments():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="reduction"):
        sigmoid_focal_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="avg_factor"):
        sigmoid_focal_loss(x, x, reduction="sum", avg_factor=2)
    with pytest.raises(ValueError, match="dims"):
        sigmoid_focal_loss(x, x, weight=torch.ones(3))
    with pytest.raises(ValueError, match="shape"):
        sigmoid_focal_loss(x, torch.zeros(2, 4))


def test_l1_loss_hand_computed_and_empty():
    preds = torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.1, 0.2, 0.3, 0.4]])
    targets = torch.tensor([[0.45, 0.5, 0.5, 0.4], [0.1, 0.2, 0.3, 0.1]])
    assert l1_loss(preds, targets, reduction="sum").item() == pytest.approx(0.05 + 0.1 + 0.3, rel=1e-5)
    assert l1_loss(preds, targets).item() == pytest.approx(0.45 / 8, rel=1e-5)
    assert l1_loss(preds, targets, avg_factor=3).item() == pytest.approx(0.45 / 3, rel=1e-5)
    empty = torch.zeros(0, 4, requires_grad=True)
    loss = l1_loss(empty, torch.zeros(0, 4))
    assert loss.item() == 0 and loss.requires_grad


def test_giou_loss_hand_computed():
    # Contained box: IoU = 0.16 / 0.2 = 0.8 and the hull is the larger box, so GIoU = 0.8.
    # Disjoint unit squares 1 apart: IoU 0, hull 3, union 2, GIoU = -1/3.
    preds = torch.tensor([[0.3, 0.3, 0.7, 0.7], [0.0, 0.0, 1.0, 1.0]])
    targets = torch.tensor([[0.2, 0.3, 0.7, 0.7], [2.0, 0.0, 3.0, 1.0]])
    losses = giou_loss(preds, targets, reduction="none")
    assert losses.tolist() == pytest.approx([0.2, 4 / 3], abs=1e-5)
    assert giou_loss(
        preds, targets, weight=torch.tensor([1.0, 0.0]), reduction="sum"
    ).item() == pytest.approx(0.2, abs=1e-5)


def test_giou_matches_torchvision_and_pairwise_diagonal():
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(20, 2, generator=g)
    boxes1 = torch.cat([xy, xy + torch.rand(20, 2, generator=g)], dim=1)
    xy = torch.rand(20, 2, generator=g)
    boxes2 = torch.cat([xy, xy + torch.rand(20, 2, generator=g)], dim=1)
    ours = giou_loss(boxes1, boxes2, eps=1e-7, reduction="none")
    torch.testing.assert_close(ours, generalized_box_iou_loss(boxes1, boxes2, eps=1e-7))
    torch.testing.assert_close(
        paired_generalized_box_iou(boxes1, boxes2, eps=0.0), generalized_box_iou(boxes1, boxes2).diagonal()
    )


def test_giou_loss_rejects_inverted_boxes_and_handles_empty():
    with pytest.raises(ValueError, match="x2 >= x1"):
        giou_loss(torch.tensor([[0.5, 0.0, 0.2, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
    empty = torch.zeros(0, 4, requires_grad=True)
    loss = giou_loss(empty, torch.zeros(0, 4))
    assert loss.item() == 0 and loss.requires_grad
