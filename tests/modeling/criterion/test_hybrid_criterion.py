"""HybridMatchingCriterion: the one-to-many branch sees the ground truth repeated exactly k times, its losses
(hand-computed) carry the _one2many suffix and the lambda factor, and it composes with DINOCriterion."""

import math

import pytest
import torch

from detrkit.modeling.criterion import (
    DINOCriterion,
    HybridMatchingCriterion,
    TwoStageCriterion,
    build_weight_dict,
)
from detrkit.modeling.criterion.hybrid_criterion import repeat_targets
from detrkit.modeling.matcher import HungarianMatcher

WEIGHTS = {"loss_class": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0}


class RecordingMatcher(HungarianMatcher):
    """Records the targets of every call."""

    def __init__(self):
        super().__init__(2.0, 5.0, 2.0)
        self.calls = []

    def forward(self, outputs, targets):
        self.calls.append([t["boxes"].clone() for t in targets])
        return super().forward(outputs, targets)


def focal_by_hand(logit: float, target: int, alpha: float = 0.25, gamma: float = 2.0) -> float:
    p = 1 / (1 + math.exp(-logit))
    if target:
        return alpha * (1 - p) ** gamma * -math.log(p)
    return (1 - alpha) * p**gamma * -math.log(1 - p)


def giou_of_shifted_square(side: float, shift: float, eps: float = 1e-6) -> float:
    """GIoU of a square and the same square shifted horizontally by ``shift`` < ``side``, with detrex's
    ``eps`` added to the union and the hull (the criterion's default ``iou_eps``)."""
    inter = (side - shift) * side
    union = 2 * side * side - inter
    hull = (side + shift) * side
    return inter / (union + eps) - (hull - union) / (hull + eps)


def one2many_case(k: int):
    """1 image, 1 GT (class 0, square of side 0.2 at the centre), 2 one-to-one queries and k one-to-many
    queries; one-to-many query i is the GT shifted right by 0.01 (i + 1), all with logits (1, -1)."""
    gt = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    shifts = [0.01 * (i + 1) for i in range(k)]
    outputs = {
        "pred_logits": torch.tensor([[[1.0, -1.0], [-2.0, 0.0]]], requires_grad=True),
        "pred_boxes": torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1]]], requires_grad=True),
        "pred_logits_one2many": torch.tensor([[[1.0, -1.0]] * k], requires_grad=True),
        "pred_boxes_one2many": torch.tensor([[[0.5 + s, 0.5, 0.2, 0.2] for s in shifts]], requires_grad=True),
    }
    by_hand = {  # every one-to-many query matches one GT copy; num_boxes = k
        "loss_class": focal_by_hand(1.0, 1) + focal_by_hand(-1.0, 0),
        "loss_bbox": sum(shifts) / k,
        "loss_giou": sum(1 - giou_of_shifted_square(0.2, s) for s in shifts) / k,
    }
    return outputs, [{"labels": torch.tensor([0]), "boxes": gt}], by_hand


def test_repeat_targets():
    targets = [{"labels": torch.tensor([3, 1]), "boxes": torch.tensor([[0.1] * 4, [0.2] * 4]), "image_id": 7}]
    (rep,) = repeat_targets(targets, 3)
    assert rep["labels"].tolist() == [3, 1] * 3 and rep["boxes"][:, 0].tolist() == pytest.approx(
        [0.1, 0.2] * 3
    )
    assert rep["image_id"] == 7 and len(targets[0]["labels"]) == 2


@pytest.mark.parametrize("lambda_one2many", [1.0, 0.5])
def test_one2many_branch_hand_computed(lambda_one2many):
    k = 6
    outputs, targets, by_hand = one2many_case(k)
    matcher = RecordingMatcher()
    inner = TwoStageCriterion(2, matcher, build_weight_dict(WEIGHTS, 1, two_stage=False, one2many=True))
    criterion = HybridMatchingCriterion(inner, k_one2many=k, lambda_one2many=lambda_one2many)
    losses = criterion(outputs, targets)
    assert [len(call[0]) for call in matcher.calls] == [1, k]  # one-to-one, then one-to-many
    torch.testing.assert_close(matcher.calls[1][0], targets[0]["boxes"].repeat(k, 1))
    assert set(losses) == set(criterion.weight_dict)
    for key, value in by_hand.items():
        assert losses[key + "_one2many"].item() == pytest.approx(lambda_one2many * value, abs=1e-5), key
    one2one = TwoStageCriterion(2, HungarianMatcher(2.0, 5.0, 2.0), WEIGHTS)(outputs, targets)
    for key, value in one2one.items():
        assert losses[key].item() == pytest.approx(value.item(), abs=1e-6)
    sum(losses.values()).backward()
    assert outputs["pred_boxes_one2many"].grad.abs().sum() > 0


def test_more_gt_copies_than_queries_and_zero_gt(random_layer, random_targets):
    g = torch.Generator().manual_seed(0)
    outputs = random_layer(2, 4, 3, g)
    one2many = random_layer(2, 10, 3, g)
    outputs.update(
        {"pred_logits_one2many": one2many["pred_logits"], "pred_boxes_one2many": one2many["pred_boxes"]}
    )
    outputs["aux_outputs"] = [random_layer(2, 4, 3, g)]
    aux = random_layer(2, 10, 3, g)
    outputs["aux_outputs_one2many"] = [aux]
    targets = random_targets([3, 0], 3, g)  # 3 GT x k=6 = 18 copies > 10 queries; image 1 is empty
    matcher = RecordingMatcher()
    criterion = HybridMatchingCriterion(
        TwoStageCriterion(3, matcher, build_weight_dict(WEIGHTS, 2, two_stage=False, one2many=True))
    )
    losses = criterion(outputs, targets)
    assert [len(b) for b in matcher.calls[2]] == [18, 0]
    assert set(losses) == set(criterion.weight_dict) and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert aux["pred_boxes"].grad.abs().sum() > 0


def test_wraps_dino_criterion_with_dn_metas(random_layer, random_targets):
    g = torch.Generator().manual_seed(1)
    outputs = random_layer(1, 4, 3, g)
    one2many = random_layer(1, 12, 3, g)
    outputs.update(
        {"pred_logits_one2many": one2many["pred_logits"], "pred_boxes_one2many": one2many["pred_boxes"]}
    )
    outputs["enc_outputs"] = random_layer(1, 6, 3, g)
    dn_metas = {"single_padding": 4, "dn_num": 2, "output_known_lbs_bboxes": random_layer(1, 8, 3, g)}
    weight_dict = build_weight_dict(WEIGHTS, 1, denoising=True, one2many=True)
    criterion = HybridMatchingCriterion(DINOCriterion(3, HungarianMatcher(2.0, 5.0, 2.0), weight_dict))
    losses = criterion(outputs, random_targets([2], 3, g), dn_metas)
    assert set(losses) == set(weight_dict)
    assert "loss_class_dn" in losses and losses["loss_class_dn"].item() > 0


def test_bad_input():
    with pytest.raises(ValueError, match="k_one2many"):
        HybridMatchingCriterion(TwoStageCriterion(2, HungarianMatcher(), WEIGHTS), k_one2many=0)
    outputs, targets, _ = one2many_case(2)
    del outputs["pred_boxes_one2many"]
    with pytest.raises(ValueError, match="pred_boxes_one2many"):
        HybridMatchingCriterion(TwoStageCriterion(2, HungarianMatcher(), WEIGHTS))(outputs, targets)
