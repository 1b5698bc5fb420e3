"""DINOCriterion: denoising losses on a hand-made dn_metas (which query reconstructs which target), zero
losses with the same keys when there is no denoising, and the full key set against build_weight_dict."""

import pytest
import torch

from detrkit.modeling.criterion import DINOCriterion, build_weight_dict, weight_losses
from detrkit.modeling.matcher import HungarianMatcher

WEIGHTS = {"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}
NUM_CLASSES = 3


def make_criterion() -> DINOCriterion:
    return DINOCriterion(
        NUM_CLASSES, HungarianMatcher(2.0, 5.0, 2.0), build_weight_dict(WEIGHTS, 3, denoising=True)
    )


def make_batch(random_layer, random_targets, sizes, seed=0):
    """Matching outputs (5 queries, 2 aux layers, enc) and dn outputs for max(sizes) GT per image,
    2 groups: single_padding = 2 * max_gt queries per group (positives, then negatives)."""
    g = torch.Generator().manual_seed(seed)
    bs = len(sizes)
    outputs = random_layer(bs, 5, NUM_CLASSES, g)
    outputs["aux_outputs"] = [random_layer(bs, 5, NUM_CLASSES, g) for _ in range(2)]
    outputs["enc_outputs"] = random_layer(bs, 5, NUM_CLASSES, g)
    single_padding, dn_num = 2 * max(sizes), 2
    dn_outputs = random_layer(bs, single_padding * dn_num, NUM_CLASSES, g)
    dn_outputs["aux_outputs"] = [random_layer(bs, single_padding * dn_num, NUM_CLASSES, g) for _ in range(2)]
    dn_metas = {"single_padding": single_padding, "dn_num": dn_num, "output_known_lbs_bboxes": dn_outputs}
    return outputs, random_targets(sizes, NUM_CLASSES, g), dn_metas


def test_dn_losses_on_hand_made_dn_metas(reference_losses, random_layer, random_targets):
    # Image 0 has 1 GT, image 1 has 2: single_padding = 4, 2 groups. Group g starts at query 4 g; its first
    # n_i queries reconstruct targets 0..n_i-1. Normaliser: num_boxes (3) * dn_num (2) = 6.
    outputs, targets, dn_metas = make_batch(random_layer, random_targets, [1, 2])
    hand_indices = [
        (torch.tensor([0, 4]), torch.tensor([0, 0])),
        (torch.tensor([0, 1, 4, 5]), torch.tensor([0, 1, 0, 1])),
    ]
    criterion = make_criterion()
    assert [(q.tolist(), t.tolist()) for q, t in criterion.dn_indices(targets, 2, 4)] == [
        (q.tolist(), t.tolist()) for q, t in hand_indices
    ]
    losses = criterion(outputs, targets, dn_metas)
    dn_outputs = dn_metas["output_known_lbs_bboxes"]
    layers = {"_dn": dn_outputs, "_dn_0": dn_outputs["aux_outputs"][0], "_dn_1": dn_outputs["aux_outputs"][1]}
    for suffix, layer in layers.items():
        expected = reference_losses(layer, targets, hand_indices, 6, NUM_CLASSES)
        for key, value in expected.items():
            assert losses[key + suffix].item() == pytest.approx(value.item(), abs=1e-5), key + suffix


def test_dn_with_an_image_without_objects(reference_losses, random_layer, random_targets):
    outputs, targets, dn_metas = make_batch(random_layer, random_targets, [0, 2], seed=1)
    losses = make_criterion()(outputs, targets, dn_metas)
    hand_indices = [
        (torch.zeros(0, dtype=torch.int64),) * 2,
        (torch.tensor([0, 1, 4, 5]), torch.tensor([0, 1, 0, 1])),
    ]
    expected = reference_losses(dn_metas["output_known_lbs_bboxes"], targets, hand_indices, 4, NUM_CLASSES)
    for key, value in expected.items():
        assert losses[key + "_dn"].item() == pytest.approx(value.item(), abs=1e-5), key


def test_keys_match_the_weight_dict_and_gradients_reach_dn_outputs(random_layer, random_targets):
    outputs, targets, dn_metas = make_batch(random_layer, random_targets, [2, 3], seed=2)
    criterion = make_criterion()
    losses = criterion(outputs, targets, dn_metas)
    assert set(losses) == set(criterion.weight_dict)
    weighted = weight_losses(losses, criterion.weight_dict)
    assert weighted["loss_bbox_dn_1"].item() == pytest.approx(5 * losses["loss_bbox_dn_1"].item())
    sum(weighted.values()).backward()
    dn_outputs = dn_metas["output_known_lbs_bboxes"]
    for layer in [dn_outputs, *dn_outputs["aux_outputs"]]:
        assert layer["pred_logits"].grad.abs().sum() > 0 and layer["pred_boxes"].grad.abs().sum() > 0


@pytest.mark.parametrize("dn_metas", [None, {}])
def test_without_denoising_the_dn_keys_are_zero(random_layer, random_targets, dn_metas):
    outputs, targets, with_dn = make_batch(random_layer, random_targets, [1, 2], seed=3)
    criterion = make_criterion()
    losses = criterion(outputs, targets, dn_metas)
    assert set(losses) == set(criterion(outputs, targets, with_dn))
    dn_keys = [k for k in losses if "_dn" in k]
    assert len(dn_keys) == 9
    for key in dn_keys:
        assert losses[key].item() == 0 and losses[key].requires_grad, key


def test_aux_count_mismatch_is_an_error(random_layer, random_targets):
    outputs, targets, dn_metas = make_batch(random_layer, random_targets, [1, 1])
    dn_metas["output_known_lbs_bboxes"]["aux_outputs"].pop()
    with pytest.raises(ValueError, match="1 aux_outputs, the matching outputs have 2"):
        make_criterion()(outputs, targets, dn_metas)


def test_without_denoising_cross_entropy_losses_are_finite_zeros(random_layer, random_targets):
    g = torch.Generator().manual_seed(4)
    outputs = random_layer(2, 5, NUM_CLASSES + 1, g)  # cross-entropy logits include "no object"
    outputs["aux_outputs"] = [random_layer(2, 5, NUM_CLASSES + 1, g)]
    criterion = DINOCriterion(
        NUM_CLASSES, HungarianMatcher(cost_class_type="ce_cost"), {}, loss_class_type="ce_loss", eos_coef=0.1
    )
    losses = criterion(outputs, random_targets([1, 0], NUM_CLASSES, g))
    assert losses["loss_class_dn"].item() == losses["loss_class_dn_0"].item() == 0
    assert all(torch.isfinite(v) for v in losses.values())
