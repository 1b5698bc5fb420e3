"""SetCriterion and TwoStageCriterion: a hand-computed case, aux/enc layers, normalisation across processes,
empty ground truth and gradients."""

import math

import pytest
import torch
from torchvision.ops import box_convert

from detrkit.modeling.criterion import (
    CrossEntropyClassLoss,
    FocalClassLoss,
    SetCriterion,
    TwoStageCriterion,
    set_criterion,
)
from detrkit.modeling.matcher import HungarianMatcher

WEIGHTS = {"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}


def focal_by_hand(logit: float, target: int, alpha: float = 0.25, gamma: float = 2.0) -> float:
    p = 1 / (1 + math.exp(-logit))
    if target:
        return alpha * (1 - p) ** gamma * -math.log(p)
    return (1 - alpha) * p**gamma * -math.log(1 - p)


def tiny_case():
    """1 image, 2 queries, 2 classes, 1 GT of class 0. Query 0 lies on the GT (it is matched); query 1 is
    far away. Pred 0 in xyxy is (0.3, 0.3, 0.7, 0.7) inside the GT (0.2, 0.3, 0.7, 0.7): IoU = GIoU = 0.8."""
    outputs = {
        "pred_logits": torch.tensor([[[2.0, -1.0], [-0.5, 0.5]]], requires_grad=True),
        "pred_boxes": torch.tensor([[[0.5, 0.5, 0.4, 0.4], [0.2, 0.2, 0.1, 0.1]]], requires_grad=True),
    }
    targets = [{"labels": torch.tensor([0]), "boxes": torch.tensor([[0.45, 0.5, 0.5, 0.4]])}]
    by_hand = {
        "loss_class": focal_by_hand(2.0, 1)
        + focal_by_hand(-1.0, 0)
        + focal_by_hand(-0.5, 0)
        + focal_by_hand(0.5, 0),
        "loss_bbox": 0.05 + 0.1,
        "loss_giou": 1 - 0.8,
    }
    return outputs, targets, by_hand


def make_criterion(cls=SetCriterion, **kwargs):
    matcher = HungarianMatcher(cost_class=2.0, cost_bbox=5.0, cost_giou=2.0)
    return cls(num_classes=kwargs.pop("num_classes", 2), matcher=matcher, weight_dict=WEIGHTS, **kwargs)


def assert_values(losses: dict, expected: dict, suffix: str = ""):
    for key, value in expected.items():
        expected_value = torch.as_tensor(value).detach().item()
        assert losses[key + suffix].item() == pytest.approx(expected_value, abs=1e-5), key + suffix


def test_hand_computed_tiny_case():
    outputs, targets, by_hand = tiny_case()
    losses = make_criterion()(outputs, targets)
    assert set(losses) == {"loss_class", "loss_bbox", "loss_giou"}
    assert_values(losses, by_hand)


@pytest.mark.parametrize("iou_eps", [1e-6, 0.0])
def test_giou_loss_divides_by_union_and_hull_plus_iou_eps(iou_eps, giou_by_hand):
    """float64, small boxes (area 1e-4, where 1e-6 changes the GIoU by about 1%): loss_giou is
    1 - (inter / (union + eps) - (hull - union) / (hull + eps)); 1e-6 is detrex's box_ops, 0 torchvision's."""
    outputs = {
        "pred_logits": torch.tensor([[[2.0, -1.0]]], dtype=torch.float64),
        "pred_boxes": torch.tensor([[[0.5, 0.5, 0.01, 0.01]]], dtype=torch.float64),
    }
    gt = torch.tensor([[0.503, 0.5, 0.012, 0.008]], dtype=torch.float64)
    losses = make_criterion(iou_eps=iou_eps)(outputs, [{"labels": torch.tensor([0]), "boxes": gt}])

    def xyxy(boxes):
        return box_convert(boxes, "cxcywh", "xyxy")

    expected = 1 - giou_by_hand(xyxy(outputs["pred_boxes"][0]), xyxy(gt), iou_eps)
    torch.testing.assert_close(losses["loss_giou"], expected[0], rtol=1e-12, atol=0)
    without_eps = 1 - giou_by_hand(xyxy(outputs["pred_boxes"][0]), xyxy(gt), 0.0)[0]
    assert (losses["loss_giou"] - without_eps).abs() > 1e-3 if iou_eps else losses["loss_giou"] == without_eps


def test_l1_on_xyxy_boxes():
    """tiny_case's matched pair in xyxy: (0.3, 0.3, 0.7, 0.7) against (0.2, 0.3, 0.7, 0.7), L1 0.1."""
    outputs, targets, by_hand = tiny_case()
    losses = make_criterion(l1_box_format="xyxy")(outputs, targets)
    assert_values(losses, {**by_hand, "loss_bbox": 0.1})


def test_aux_layers_are_matched_separately():
    outputs, targets, by_hand = tiny_case()
    swapped = {k: v.flip(1) for k, v in outputs.items()}  # the GT's query is now query 1
    outputs["aux_outputs"] = [swapped, {k: v.clone() for k, v in outputs.items()}]
    losses = make_criterion()(outputs, targets)
    assert set(losses) == {k + s for k in WEIGHTS for s in ("", "_0", "_1")}
    for suffix in ("", "_0", "_1"):
        assert_values(losses, by_hand, suffix)


def test_enc_outputs_real_and_binary_classes(reference_losses, random_layer, random_targets):
    g = torch.Generator().manual_seed(0)
    outputs = random_layer(2, 6, 3, g)
    outputs["enc_outputs"] = random_layer(2, 8, 3, g)
    targets = random_targets([2, 1], 3, g)
    targets[0]["labels"] = torch.tensor([2, 1])
    matcher = HungarianMatcher(2.0, 5.0, 2.0)
    for binary in (False, True):
        criterion = make_criterion(TwoStageCriterion, num_classes=3, two_stage_binary_cls=binary)
        losses = criterion(outputs, targets)
        enc_targets = [{**t, "labels": t["labels"] * 0} for t in targets] if binary else targets
        expected = reference_losses(
            outputs["enc_outputs"], enc_targets, matcher(outputs["enc_outputs"], enc_targets), 3, 3
        )
        assert set(losses) == {k + s for k in WEIGHTS for s in ("", "_enc")}
        assert_values(losses, expected, "_enc")
    assert targets[0]["labels"].tolist() == [2, 1]  # the caller's targets are left alone


def test_random_batch_against_reference(reference_losses, random_layer, random_targets):
    g = torch.Generator().manual_seed(1)
    outputs = random_layer(3, 7, 4, g)
    targets = random_targets([2, 0, 3], 4, g)
    matcher = HungarianMatcher(2.0, 5.0, 2.0)
    losses = make_criterion(num_classes=4, alpha=0.3, gamma=1.5)(outputs, targets)
    expected = reference_losses(outputs, targets, matcher(outputs, targets), 5, 4, alpha=0.3, gamma=1.5)
    assert_values(losses, expected)


def test_num_boxes_is_averaged_over_processes_and_clamped(monkeypatch):
    def all_reduce_with_other_process(tensor, other: float):
        tensor += other

    outputs, targets, by_hand = tiny_case()
    comm = set_criterion.comm
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(comm.dist, "all_reduce", lambda t: all_reduce_with_other_process(t, 5.0))
    assert set_criterion.average_num_boxes(targets, torch.device("cpu")) == 3.0  # (1 + 5) / 2
    losses = make_criterion()(outputs, targets)
    assert_values(losses, {k: v / 3 for k, v in by_hand.items()})
    monkeypatch.setattr(comm.dist, "all_reduce", lambda t: all_reduce_with_other_process(t, 0.0))
    assert set_criterion.average_num_boxes(targets, torch.device("cpu")) == 1.0  # 0.5 clamped to 1


def test_zero_ground_truth_gives_finite_losses_and_gradients(random_layer):
    g = torch.Generator().manual_seed(2)
    outputs = random_layer(2, 5, 3, g)
    outputs["aux_outputs"] = [random_layer(2, 5, 3, g)]
    outputs["enc_outputs"] = random_layer(2, 5, 3, g)
    targets = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}] * 2
    losses = make_criterion(TwoStageCriterion, num_classes=3)(outputs, targets)
    assert len(losses) == 9 and all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_bbox"].item() == losses["loss_giou"].item() == 0
    assert losses["loss_class"].item() == pytest.approx(  # every query and class is a negative; num_boxes = 1
        sum(focal_by_hand(x, 0) for x in outputs["pred_logits"].flatten().tolist()), rel=1e-5
    )
    sum(losses.values()).backward()
    assert outputs["pred_logits"].grad.abs().sum() > 0


def test_gradients_reach_every_prediction(random_layer, random_targets):
    g = torch.Generator().manual_seed(3)
    outputs = random_layer(2, 6, 3, g)
    outputs["aux_outputs"] = [random_layer(2, 6, 3, g) for _ in range(2)]
    outputs["enc_outputs"] = random_layer(2, 9, 3, g)
    losses = make_criterion(TwoStageCriterion, num_classes=3)(outputs, random_targets([2, 3], 3, g))
    sum(losses.values()).backward()
    for layer in [outputs, outputs["enc_outputs"], *outputs["aux_outputs"]]:
        assert layer["pred_logits"].grad.abs().sum() > 0
        assert layer["pred_boxes"].grad.abs().sum() > 0


def test_cross_entropy_class_loss():
    # Logits over 2 classes + "no object"; query 0 is matched to class 0, query 1 is "no object" (weight 0.1).
    outputs, targets, by_hand = tiny_case()
    logits = torch.tensor([[[2.0, -1.0, 0.0], [-0.5, 0.5, 1.0]]])
    outputs["pred_logits"] = logits
    losses = make_criterion(loss_class_type="ce_loss", eos_coef=0.1)(outputs, targets)
    nll0 = -torch.log_softmax(logits[0, 0], -1)[0].item()
    nll1 = -torch.log_softmax(logits[0, 1], -1)[2].item()
    assert losses["loss_class"].item() == pytest.approx((nll0 + 0.1 * nll1) / 1.1, rel=1e-5)
    assert_values(losses, {"loss_bbox": by_hand["loss_bbox"], "loss_giou": by_hand["loss_giou"]})


def test_bad_arguments():
    with pytest.raises(ValueError, match="loss_class_type"):
        make_criterion(loss_class_type="mse")
    with pytest.raises(ValueError, match="unknown losses"):
        make_criterion(losses=["class", "masks"])
    with pytest.raises(ValueError, match="l1_box_format"):
        make_criterion(l1_box_format="xywh")
    with pytest.raises(ValueError, match=r"\['alpha'\] given with a class_loss module"):
        make_criterion(TwoStageCriterion, alpha=0.5, class_loss=FocalClassLoss())


def test_ce_loss_defaults_to_detrex_eos_coef():
    criterion = make_criterion(loss_class_type="ce_loss")
    assert isinstance(criterion.class_loss, CrossEntropyClassLoss)
    assert criterion.class_loss.empty_weight.tolist() == pytest.approx([1.0, 1.0, 0.1])


def test_class_loss_slot_replaces_the_focal_loss():
    """A class-loss module decides loss_class of every layer it is given; the box losses are unchanged."""

    class ConstantClassLoss(torch.nn.Module):
        def forward(self, outputs, targets, indices, num_boxes, iou_eps, stages=None):
            return outputs["pred_logits"].sum() * 0 + (7.0 if stages is not None else 3.0)

    outputs, targets, by_hand = tiny_case()
    outputs["enc_outputs"] = {k: v.clone() for k, v in outputs.items()}
    focal = make_criterion(TwoStageCriterion)(outputs, targets)
    losses = make_criterion(TwoStageCriterion, class_loss=ConstantClassLoss())(outputs, targets)
    assert losses["loss_class"].item() == 7.0  # a decoder layer: it sees the stage matches
    assert losses["loss_class_enc"].item() == 3.0  # the proposals: no stage matches
    assert_values(losses, {"loss_bbox": by_hand["loss_bbox"], "loss_giou": by_hand["loss_giou"]})
    separate = make_criterion(
        TwoStageCriterion, class_loss=ConstantClassLoss(), enc_class_loss=FocalClassLoss()
    )
    assert separate(outputs, targets)["loss_class_enc"].item() == pytest.approx(
        focal["loss_class_enc"].item()
    )


def test_extra_losses_add_their_keys_and_refuse_a_clash():
    class TokenLoss(torch.nn.Module):
        def __init__(self, key):
            super().__init__()
            self.key = key

        def forward(self, outputs, targets):
            return {self.key: outputs["pred_logits"].abs().mean()}

    outputs, targets, _ = tiny_case()
    plain = make_criterion()(outputs, targets)
    losses = make_criterion(extra_losses=[TokenLoss("loss_a"), TokenLoss("loss_b")])(outputs, targets)
    assert set(losses) == set(plain) | {"loss_a", "loss_b"}
    assert losses["loss_a"].item() == pytest.approx(outputs["pred_logits"].abs().mean().item())
    with pytest.raises(ValueError, match=r"returns \['loss_a'\], already computed"):
        make_criterion(extra_losses=[TokenLoss("loss_a"), TokenLoss("loss_a")])(outputs, targets)
