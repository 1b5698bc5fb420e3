"""Cross-stage label assignment as the criteria's class loss: with scope [i, i] and no IoU check the
criteria are the plain ones (DINO, H-DETR's hybrid), and with the paper's scope the class loss is the focal
loss against the gathered labels, normalised by max(number of labels, number of boxes), while the box losses
stay on each layer's own matches."""

import pytest
import torch
from torch import nn

from detrkit.modeling.criterion import (
    DINOCriterion,
    HybridMatchingCriterion,
    SetCriterion,
    TwoStageCriterion,
    build_weight_dict,
)
from detrkit.modeling.matcher import HungarianMatcher
from detrkit_projects.stage_interactor.modeling.cross_stage_label_assignment import (
    CrossStageClassLoss,
    cross_stage_labels,
)

NUM_CLASSES, NUM_QUERIES, NUM_LAYERS = 3, 8, 3


def random_layer(g, num_queries=NUM_QUERIES, bs=2):
    centres = torch.rand(bs, num_queries, 2, generator=g) * 0.6 + 0.2
    sizes = torch.rand(bs, num_queries, 2, generator=g) * 0.2 + 0.1
    return {
        "pred_logits": torch.randn(bs, num_queries, NUM_CLASSES, generator=g, dtype=torch.float64),
        "pred_boxes": torch.cat([centres, sizes], -1).double(),
    }


def random_outputs(seed=0, prefix=""):
    g = torch.Generator().manual_seed(seed)
    layers = [random_layer(g) for _ in range(NUM_LAYERS)]
    return {
        "pred_logits" + prefix: layers[-1]["pred_logits"],
        "pred_boxes" + prefix: layers[-1]["pred_boxes"],
        "aux_outputs" + prefix: layers[:-1],
    }


def targets():
    # the predicted boxes above are near the image centre: these targets overlap some of them
    return [
        {
            "labels": torch.tensor([0, 2]),
            "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.4, 0.6, 0.25, 0.15]]),
        },
        {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.45, 0.5, 0.2, 0.25]]).double()},
    ]


def matcher():
    return HungarianMatcher(cost_class=2.0, cost_bbox=5.0, cost_giou=2.0, cost_class_type="focal_loss_cost")


def criteria(cls, **csla):
    """``cls`` with its default (focal) class loss, and with :class:`CrossStageClassLoss` ``(**csla)``."""
    weights = build_weight_dict({"loss_class": 1, "loss_bbox": 5, "loss_giou": 2}, NUM_LAYERS, denoising=True)
    plain = cls(NUM_CLASSES, matcher(), weights)
    return plain, cls(NUM_CLASSES, matcher(), weights, class_loss=CrossStageClassLoss(**csla))


def test_own_scope_without_threshold_equals_dino_criterion():
    plain, csla = criteria(DINOCriterion, scope=(0, 0), iou_threshold=None)
    outputs = {**random_outputs(), "enc_outputs": random_layer(torch.Generator().manual_seed(5))}
    dn_outputs = random_outputs(seed=1)
    dn_metas = {"dn_num": 2, "single_padding": 4, "output_known_lbs_bboxes": dn_outputs}
    expected = plain(outputs, targets(), dn_metas)
    losses = csla(outputs, targets(), dn_metas)
    assert set(losses) == set(expected)
    for key in expected:
        torch.testing.assert_close(losses[key], expected[key], msg=key)


def test_own_scope_without_threshold_equals_deformable_detr_criterion():
    plain, csla = criteria(SetCriterion, scope=(0, 0), iou_threshold=None)
    expected = plain(random_outputs(), targets())
    losses = csla(random_outputs(), targets())
    assert set(losses) == set(expected) and len(losses) == 3 * NUM_LAYERS
    for key in expected:
        torch.testing.assert_close(losses[key], expected[key], msg=key)


def test_own_scope_without_threshold_equals_hybrid_criterion():
    plain, csla = criteria(TwoStageCriterion, scope=(0, 0), iou_threshold=None)
    outputs = {**random_outputs(), **random_outputs(seed=2, prefix="_one2many")}
    expected = HybridMatchingCriterion(plain, k_one2many=2)(outputs, targets())
    losses = HybridMatchingCriterion(csla, k_one2many=2)(outputs, targets())
    assert set(losses) == set(expected) and "loss_class_0_one2many" in losses
    for key in expected:
        torch.testing.assert_close(losses[key], expected[key], msg=key)


def focal_loss_reference(logits, labels, alpha=0.25, gamma=2.0):
    """Sigmoid focal loss (Lin et al. 2017), summed, in float64."""
    p = logits.sigmoid()
    ce = -(labels * torch.log(p) + (1 - labels) * torch.log(1 - p))
    p_t = p * labels + (1 - p) * (1 - labels)
    return ((alpha * labels + (1 - alpha) * (1 - labels)) * (1 - p_t) ** gamma * ce).sum()


def test_paper_scope_class_loss_uses_the_gathered_labels():
    plain, csla = criteria(DINOCriterion)
    outputs = random_outputs()
    losses = csla(outputs, targets())
    expected_plain = plain(outputs, targets())
    layers = [*outputs["aux_outputs"], outputs]
    indices = [matcher()(layer, targets()) for layer in layers]
    num_boxes = 3.0
    for stage, suffix in enumerate(["_0", "_1", ""]):
        labels = cross_stage_labels(
            [layer["pred_boxes"] for layer in layers], indices, targets(), NUM_CLASSES, stage
        ).labels(0.5)
        normaliser = max(labels.sum().item(), num_boxes)
        expected = focal_loss_reference(layers[stage]["pred_logits"], labels) / normaliser
        # the focal loss computes in float32
        torch.testing.assert_close(losses["loss_class" + suffix].double(), expected, rtol=1e-5, atol=1e-7)
        for key in ("loss_bbox", "loss_giou"):  # regression: the layer's own matches
            torch.testing.assert_close(losses[key + suffix], expected_plain[key + suffix])
    # some layer's gathered labels differ from its one-to-one targets on this case
    assert any(
        not torch.allclose(losses["loss_class" + s], expected_plain["loss_class" + s])
        for s in ("_0", "_1", "")
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="iou_threshold"):
        CrossStageClassLoss(iou_threshold=1.5)
    with pytest.raises(ValueError, match="quality_target"):
        CrossStageClassLoss(quality_target="giou")
    with pytest.raises(ValueError, match="must contain offset 0"):
        CrossStageClassLoss(scope=(1, None))


def test_is_a_drop_in_module():
    _, csla = criteria(DINOCriterion)
    assert isinstance(csla.class_loss, nn.Module) and "scope=(-1, None)" in repr(csla)
