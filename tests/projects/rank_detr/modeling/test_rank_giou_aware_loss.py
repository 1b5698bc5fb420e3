"""The GIoU-aware class loss: a hand-computed value, the focal loss at t = 1, and its use in criteria."""

import math

import pytest
import torch

from detrkit.modeling.criterion import FocalClassLoss, TwoStageCriterion
from detrkit.modeling.losses import sigmoid_focal_loss
from detrkit.modeling.matcher import HungarianMatcher
from detrkit_projects.rank_detr.modeling import GIoUAwareClassLoss, giou_aware_focal_loss


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


LOGITS = [[0.5, -1.0], [2.0, 0.0]]  # 2 queries, 2 classes


def _hand_value(t: float) -> float:
    """Query 0 is positive for class 1 with target t; every other entry is negative (alpha .25, gamma 2)."""
    p = _sigmoid(LOGITS[0][1])
    bce_t = -(t * math.log(p) + (1 - t) * math.log(1 - p))
    value = 0.25 * abs(t - p) ** 2 * bce_t
    for x in (LOGITS[0][0], LOGITS[1][0], LOGITS[1][1]):
        value += 0.75 * _sigmoid(x) ** 2 * _softplus(x)
    return value


def test_value_by_hand():
    onehot = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    loss = giou_aware_focal_loss(torch.tensor(LOGITS), onehot, torch.tensor([0.75, 0.3]))
    assert loss.item() == pytest.approx(_hand_value(0.75), rel=1e-6)


def test_equals_the_focal_loss_when_the_target_is_one():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 4, generator=g, dtype=torch.float64)
    onehot = (torch.rand(2, 5, 4, generator=g) > 0.7).double()
    ours = giou_aware_focal_loss(logits, onehot, torch.ones(2, 5), reduction="none")
    torch.testing.assert_close(ours.double(), sigmoid_focal_loss(logits, onehot, reduction="none").double())


def rank_criterion(**kwargs) -> TwoStageCriterion:
    """Rank-DETR's criterion as its configs build it (official ``RankDetrCriterion``)."""
    return TwoStageCriterion(
        num_classes=2,
        matcher=HungarianMatcher(cost_class=2, cost_bbox=5, cost_giou=2),
        weight_dict={},
        class_loss=GIoUAwareClassLoss(),
        enc_class_loss=FocalClassLoss(),
        **kwargs,
    )


def test_criterion_uses_t_from_the_giou_and_keeps_focal_for_the_encoder_proposals():
    criterion = rank_criterion(two_stage_binary_cls=True)
    # query 0 (cx, cy, w, h) = (.5, .5, .2, .4) vs the target (.5, .5, .4, .4): IoU = GIoU = 0.5, t = 0.75
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.4], [0.1, 0.1, 0.05, 0.05]]])
    outputs = {
        "pred_logits": torch.tensor([LOGITS]),
        "pred_boxes": boxes,
        "enc_outputs": {"pred_logits": torch.tensor([[[0.3, 0.1], [-0.2, 0.4]]]), "pred_boxes": boxes},
    }
    targets = [{"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])}]
    losses = criterion(outputs, targets)
    assert losses["loss_class"].item() == pytest.approx(_hand_value(0.75), rel=1e-5)
    enc_focal = sigmoid_focal_loss(
        torch.tensor([[0.3, 0.1], [-0.2, 0.4]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]]), reduction="sum"
    )
    assert losses["loss_class_enc"].item() == pytest.approx(enc_focal.item(), rel=1e-6)


def test_the_giou_of_t_divides_by_union_and_hull_plus_the_criterions_iou_eps():
    """Small boxes, where detrex's 1e-6 (the official fork's generalized_box_iou) moves the GIoU by ~1%:
    t = (GIoU + 1) / 2 with GIoU = inter / (union + eps) - (hull - union) / (hull + eps), by hand."""
    pred, gt = [0.5, 0.5, 0.010, 0.012], [0.503, 0.5, 0.012, 0.010]  # cxcywh
    outputs = {
        "pred_logits": torch.tensor([LOGITS]),
        "pred_boxes": torch.tensor([[pred, [0.1, 0.1, 0.05, 0.05]]]),
    }
    targets = [{"labels": torch.tensor([1]), "boxes": torch.tensor([gt])}]
    inter = (
        min(pred[0] + pred[2] / 2, gt[0] + gt[2] / 2) - max(pred[0] - pred[2] / 2, gt[0] - gt[2] / 2)
    ) * (min(pred[1] + pred[3] / 2, gt[1] + gt[3] / 2) - max(pred[1] - pred[3] / 2, gt[1] - gt[3] / 2))
    union = pred[2] * pred[3] + gt[2] * gt[3] - inter
    hull = (max(pred[0] + pred[2] / 2, gt[0] + gt[2] / 2) - min(pred[0] - pred[2] / 2, gt[0] - gt[2] / 2)) * (
        max(pred[1] + pred[3] / 2, gt[1] + gt[3] / 2) - min(pred[1] - pred[3] / 2, gt[1] - gt[3] / 2)
    )
    for eps in (1e-6, 0.0):
        criterion = rank_criterion(iou_eps=eps)
        t = (inter / (union + eps) - (hull - union) / (hull + eps) + 1) / 2
        assert criterion(outputs, targets)["loss_class"].item() == pytest.approx(_hand_value(t), rel=1e-5)
    t_with, t_without = ((inter / (union + e) - (hull - union) / (hull + e) + 1) / 2 for e in (1e-6, 0.0))
    assert _hand_value(t_with) != pytest.approx(_hand_value(t_without), rel=1e-4)  # the eps is seen


def test_shape_errors_are_named():
    with pytest.raises(ValueError, match="quality"):
        giou_aware_focal_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3))
