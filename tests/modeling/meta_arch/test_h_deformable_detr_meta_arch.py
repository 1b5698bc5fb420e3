"""H-Deformable-DETR as a detectron2 model: the one-to-one and one-to-many branches, their weights,
gradients, inference with the one-to-one queries only."""

import pytest
import torch
from tiny_detectors import (
    NUM_CLASSES,
    StandInCriterion,
    assert_every_parameter_has_a_gradient,
    hand_made_batch,
    tiny_h_deformable_detr,
)

from detrkit.modeling.criterion import HybridMatchingCriterion, TwoStageCriterion, build_weight_dict
from detrkit.modeling.matcher import HungarianMatcher

NUM_TOKENS = 16 * 16 + 8 * 8  # the 64x64 batch at strides 4 and 8


def test_training_passes_both_branches_to_the_criterion():
    model = tiny_h_deformable_detr(num_one2one=6, num_one2many=8).train()
    losses = model(hand_made_batch())
    outputs = model.criterion.outputs
    assert outputs["pred_logits"].shape == (2, 6, NUM_CLASSES) and outputs["pred_boxes"].shape == (2, 6, 4)
    assert outputs["pred_logits_one2many"].shape == (2, 8, NUM_CLASSES)
    assert outputs["pred_boxes_one2many"].shape == (2, 8, 4)
    assert len(outputs["aux_outputs"]) == 1 and len(outputs["aux_outputs_one2many"]) == 1
    assert outputs["aux_outputs_one2many"][0]["pred_boxes"].shape == (2, 8, 4)
    # the encoder loss sees every token's proposal
    assert outputs["enc_outputs"]["pred_logits"].shape == (2, NUM_TOKENS, NUM_CLASSES)
    assert outputs["enc_outputs"]["pred_boxes"].shape == (2, NUM_TOKENS, 4)
    assert model.criterion.dn_metas is None
    assert {"loss_class_one2many", "loss_bbox_0_one2many"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())


def test_one2many_losses_take_the_base_weight_unless_given_their_own():
    weights = {"loss_class": 2.0, "loss_bbox": 5.0, "loss_class_0": 3.0, "loss_bbox_0": 4.0}
    weights.update({"loss_class_enc": 1.0, "loss_bbox_enc": 1.0, "loss_bbox_one2many": 7.0})
    model = tiny_h_deformable_detr(criterion=StandInCriterion(weight_dict=weights)).train()
    losses = model(hand_made_batch())
    raw = model.criterion.raw_losses
    torch.testing.assert_close(losses["loss_class_one2many"].detach(), raw["loss_class_one2many"] * 2.0)
    torch.testing.assert_close(losses["loss_bbox_one2many"].detach(), raw["loss_bbox_one2many"] * 7.0)
    torch.testing.assert_close(losses["loss_bbox_0_one2many"].detach(), raw["loss_bbox_0_one2many"] * 4.0)
    torch.testing.assert_close(losses["loss_bbox"].detach(), raw["loss_bbox"] * 5.0)
    del model.criterion.weight_dict["loss_bbox_0"]  # now neither loss_bbox_0 nor its one-to-many fallback
    with pytest.raises(KeyError, match=r"\['loss_bbox_0', 'loss_bbox_0_one2many'\]"):
        model(hand_made_batch())


def test_gradients_reach_every_trainable_parameter():
    model = tiny_h_deformable_detr().train()
    sum(model(hand_made_batch()).values()).backward()
    assert_every_parameter_has_a_gradient(model)


def test_inference_runs_the_one_to_one_queries_alone():
    """With dropout 0, the one-to-one predictions in training (one-to-many queries present, masked) equal
    the predictions at inference, where only the one-to-one queries run."""
    model = tiny_h_deformable_detr(num_one2one=6, num_one2many=8).train()
    batch = hand_made_batch()
    model(batch)
    train_logits = model.criterion.outputs["pred_logits"].detach()
    seen = {}
    inference = model.inference

    def recording_inference(box_cls, box_pred, image_sizes):
        seen.update(cls=box_cls)
        return inference(box_cls, box_pred, image_sizes)

    model.inference = recording_inference
    model.eval()
    with torch.no_grad():
        results = model(batch)
    assert seen["cls"].shape == (2, 6, NUM_CLASSES)
    torch.testing.assert_close(seen["cls"], train_logits, atol=1e-5, rtol=1e-5)
    for result, x in zip(results, batch, strict=True):
        assert result["instances"].image_size == (x["height"], x["width"])
        assert 0 < len(result["instances"]) <= 12


def test_without_one_to_many_queries_the_branch_is_absent():
    model = tiny_h_deformable_detr(num_one2one=6, num_one2many=0).train()
    model(hand_made_batch())
    assert "pred_logits_one2many" not in model.criterion.outputs


def test_unsupported_configurations_are_rejected():
    with pytest.raises(ValueError, match="with_box_refine=False"):
        tiny_h_deformable_detr(with_box_refine=False)
    with pytest.raises(ValueError, match="mixed_selection=False but the transformer"):
        tiny_h_deformable_detr(mixed_selection=False)


def _two_stage_criterion():
    weights = build_weight_dict({"loss_class": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0}, 2)
    return TwoStageCriterion(NUM_CLASSES, HungarianMatcher(2.0, 5.0, 2.0), weights)


def test_detrex_one2many_keywords_wrap_the_criterion_as_an_explicit_hybrid_criterion_does():
    # detrex's configs give k_one2many / lambda_one2many to the model, with a plain criterion
    detrex_style = tiny_h_deformable_detr(criterion=_two_stage_criterion(), k_one2many=3, lambda_one2many=0.5)
    explicit = tiny_h_deformable_detr(
        criterion=HybridMatchingCriterion(_two_stage_criterion(), k_one2many=3, lambda_one2many=0.5)
    )
    assert isinstance(detrex_style.criterion, HybridMatchingCriterion)
    assert (detrex_style.criterion.k_one2many, detrex_style.criterion.lambda_one2many) == (3, 0.5)
    batch = hand_made_batch()
    torch.manual_seed(1)
    expected = explicit.train()(batch)
    torch.manual_seed(1)
    losses = detrex_style.train()(batch)
    assert losses.keys() == expected.keys() and "loss_class_one2many" in losses
    for key, value in expected.items():
        torch.testing.assert_close(losses[key], value, msg=key)
    with pytest.raises(ValueError, match="state them once"):
        tiny_h_deformable_detr(
            criterion=HybridMatchingCriterion(_two_stage_criterion()), k_one2many=3, lambda_one2many=0.5
        )
