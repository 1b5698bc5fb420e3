"""DINO as a detectron2 model: training losses and denoising metadata, gradients, padding masks, eval
results in original-image pixels."""

import pytest
import torch
from tiny_detectors import (
    NUM_CLASSES,
    StandInCriterion,
    assert_every_parameter_has_a_gradient,
    hand_made_batch,
    tiny_dino,
)
from torch import nn

from detrkit.modeling.meta_arch.dino import denoising_slot
from detrkit.modeling.transformer import ContrastiveDenoising, TwoStageQuerySelector
from detrkit.structures import Instances


def test_training_returns_weighted_losses_and_passes_detrex_outputs():
    model = tiny_dino(num_queries=10).train()
    losses = model(hand_made_batch())
    criterion = model.criterion
    assert set(losses) == set(criterion.raw_losses)
    for key, value in losses.items():
        torch.testing.assert_close(value.detach(), criterion.raw_losses[key] * criterion.weight_dict[key])
        assert torch.isfinite(value)
    assert {"loss_class_0", "loss_bbox_enc", "loss_class_dn", "loss_bbox_dn_0"} <= set(losses)

    outputs = criterion.outputs
    assert outputs["pred_logits"].shape == (2, 10, NUM_CLASSES) and outputs["pred_boxes"].shape == (2, 10, 4)
    assert len(outputs["aux_outputs"]) == 1  # 2 decoder layers: the first is auxiliary
    assert outputs["enc_outputs"]["pred_logits"].shape == (2, 10, NUM_CLASSES)
    assert outputs["enc_outputs"]["pred_boxes"].shape == (2, 10, 4)
    # denoising: most GT in an image = 3, dn_number 6 -> 2 groups of 3 positives + 3 negatives
    dn = criterion.dn_metas
    assert (dn["single_padding"], dn["dn_num"]) == (6, 2)
    assert dn["output_known_lbs_bboxes"]["pred_logits"].shape == (2, 12, NUM_CLASSES)
    assert len(dn["output_known_lbs_bboxes"]["aux_outputs"]) == 1


def test_targets_are_normalised_cxcywh_boxes():
    model = tiny_dino().train()
    model(hand_made_batch())
    targets = model.criterion.targets
    torch.testing.assert_close(targets[0]["boxes"], torch.tensor([[24 / 64, 19 / 64, 32 / 64, 22 / 64]]))
    torch.testing.assert_close(targets[1]["boxes"][1], torch.tensor([30 / 56, 25 / 48, 40 / 56, 40 / 48]))
    assert targets[1]["labels"].tolist() == [0, 1, 1]


def test_gradients_reach_every_trainable_parameter():
    model = tiny_dino().train()
    sum(model(hand_made_batch()).values()).backward()
    assert_every_parameter_has_a_gradient(model)


def test_batch_without_gt_trains_without_denoising():
    model = tiny_dino().train()
    losses = model(hand_made_batch(with_gt=False))
    assert model.criterion.dn_metas is None
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.label_enc.weight.grad is not None


def test_padding_masks_follow_the_image_sizes():
    model = tiny_dino().eval()
    with torch.no_grad():
        model(hand_made_batch())
    level0 = model.position_embedding.masks[0]  # stride 4: the 64x64 batch -> 16x16
    assert level0.shape == (2, 16, 16)
    assert not level0[0].any()
    expected = torch.zeros(16, 16, dtype=torch.bool)
    expected[12:, :] = True  # 48 / 4 valid rows
    expected[:, 14:] = True  # 56 / 4 valid columns
    assert torch.equal(level0[1], expected)


def test_matching_queries_do_not_see_denoising_queries():
    """With dropout 0, the matching predictions in training (denoising queries present, masked) equal the
    predictions at inference (no denoising queries)."""
    model = tiny_dino().train()
    batch = hand_made_batch()
    model(batch)
    train_logits = model.criterion.outputs["pred_logits"].detach()
    train_boxes = model.criterion.outputs["pred_boxes"].detach()
    seen = {}
    inference = model.inference

    def recording_inference(box_cls, box_pred, image_sizes):
        seen.update(cls=box_cls, box=box_pred)
        return inference(box_cls, box_pred, image_sizes)

    model.inference = recording_inference
    model.eval()
    with torch.no_grad():
        model(batch)
    torch.testing.assert_close(seen["cls"], train_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(seen["box"], train_boxes, atol=1e-5, rtol=1e-5)


def test_eval_returns_detectron2_instances_in_original_image_pixels():
    model = tiny_dino(num_queries=10).eval()
    batch = hand_made_batch()
    with torch.no_grad():
        results = model(batch)
        same_size = [dict(x, height=x["image"].shape[1], width=x["image"].shape[2]) for x in batch]
        results_input_size = model(same_size)
    assert len(results) == 2
    for result, result_input, x in zip(results, results_input_size, batch, strict=True):
        instances = result["instances"]
        assert isinstance(instances, Instances)
        assert instances.image_size == (x["height"], x["width"])
        assert 0 < len(instances) <= 20  # select_box_nums_for_evaluation
        boxes = instances.pred_boxes.tensor
        assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= x["width"]).all()
        assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= x["height"]).all()
        assert instances.pred_classes.max() < NUM_CLASSES
        assert torch.all(instances.scores[:-1] >= instances.scores[1:])
        # the same detections, scaled from the input size to the requested one
        scale = torch.tensor([x["width"], x["height"]] * 2) / torch.tensor(
            [x["image"].shape[2], x["image"].shape[1]] * 2
        )
        reference = result_input["instances"]
        torch.testing.assert_close(boxes, reference.pred_boxes.tensor * scale)
        torch.testing.assert_close(instances.scores, reference.scores)


def test_invalid_use_is_reported():
    model = tiny_dino().train()
    batch = hand_made_batch()
    del batch[1]["instances"]
    with pytest.raises(ValueError, match=r"batched_inputs\[1\]\['instances'\]"):
        model(batch)
    with pytest.raises(ValueError, match="vis_period=5"):
        tiny_dino(vis_period=5)
    with pytest.raises(ValueError, match="DINOTransformerDecoder needs a between_layers hook that orders"):
        tiny_dino(class_bias=nn.Identity())  # biases by rank position need ranked queries


def test_loss_without_weight_is_an_error_naming_the_keys():
    """detrex keeps an unweighted loss at weight 1; here it is a KeyError naming the unweighted keys and
    the weight_dict's, so a missing suffix cannot train silently."""
    weights = {k: v for k, v in StandInCriterion().weight_dict.items() if not k.endswith("_enc")}
    model = tiny_dino(criterion=StandInCriterion(weight_dict=weights)).train()
    with pytest.raises(KeyError) as error:
        model(hand_made_batch())
    message = str(error.value)
    assert "['loss_bbox_enc', 'loss_class_enc']" in message and "'loss_class_dn_0'" in message


def test_weight_zero_keeps_a_loss_for_logging_only():
    weights = dict(StandInCriterion().weight_dict, loss_bbox_enc=0.0)
    model = tiny_dino(criterion=StandInCriterion(weight_dict=weights)).train()
    losses = model(hand_made_batch())
    raw = model.criterion.raw_losses
    assert raw["loss_bbox_enc"] > 0 and losses["loss_bbox_enc"].item() == 0.0
    torch.testing.assert_close(losses["loss_bbox"].detach(), raw["loss_bbox"] * 5.0)


class FewerQueriesSelector(TwoStageQuerySelector):
    """Returns the top ``num_queries - 3`` tokens, as a selector that removes redundant tokens may."""

    def select_indices(self, scores, spatial_shapes, num_queries):
        return super().select_indices(scores, spatial_shapes, num_queries - 3)


def test_selector_returning_fewer_queries_trains_with_denoising():
    """The denoising attention mask is cut to the queries the selector returned; those queries still do not
    see the denoising ones (training predictions equal inference predictions)."""
    model = tiny_dino(num_queries=10)
    selector = FewerQueriesSelector(embed_dim=model.transformer.embed_dim, num_queries=10)
    selector.load_state_dict(model.transformer.query_selector.state_dict())
    model.transformer.query_selector = selector
    batch = hand_made_batch()
    losses = model.train()(batch)
    assert all(torch.isfinite(v) for v in losses.values())
    train_logits = model.criterion.outputs["pred_logits"].detach()
    assert train_logits.shape[1] == 7
    assert model.criterion.dn_metas["output_known_lbs_bboxes"]["pred_logits"].shape[1] > 0
    seen = {}
    inference = model.inference

    def recording_inference(box_cls, box_pred, image_sizes):
        seen.update(cls=box_cls)
        return inference(box_cls, box_pred, image_sizes)

    model.inference = recording_inference
    with torch.no_grad():
        model.eval()(batch)
    torch.testing.assert_close(seen["cls"], train_logits, atol=1e-5, rtol=1e-5)


def test_denoising_is_stated_once():
    """detrex's keywords build the ContrastiveDenoising slot (its defaults, detrex's, for those not given);
    a module given together with them is an error, as the two could disagree."""
    denoising = tiny_dino().denoising
    assert isinstance(denoising, ContrastiveDenoising)
    assert (denoising.dn_number, denoising.label_noise_ratio, denoising.box_noise_scale) == (6, 0.5, 1.0)
    with pytest.raises(ValueError, match=r"\['dn_number'\] given with a denoising module"):
        tiny_dino(denoising=ContrastiveDenoising(4))
    module = ContrastiveDenoising(4)
    assert denoising_slot(module) is module
