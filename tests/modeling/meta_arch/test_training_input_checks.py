"""What the detectors check before their criterion: ground-truth class ids within ``num_classes`` (else an
IndexError deep in the denoising embedding) and finite predictions (else an error in the matcher's GIoU)."""

import pytest
import torch
from tiny_detectors import NUM_CLASSES, StandInCriterion, hand_made_batch, tiny_dino, tiny_h_deformable_detr

DETECTORS = {"dino": tiny_dino, "h_deformable_detr": tiny_h_deformable_detr}


@pytest.mark.parametrize("build", DETECTORS.values(), ids=DETECTORS.keys())
def test_a_class_id_beyond_num_classes_names_the_image_and_the_setting(build):
    model = build().train()
    batch = hand_made_batch()
    batch[1]["file_name"] = "images/0042.jpg"
    batch[1]["instances"].gt_classes[2] = NUM_CLASSES + 4
    expected = (
        rf"images/0042.jpg has ground-truth class ids \[0, 1, {NUM_CLASSES + 4}\], but the model has "
        rf"num_classes={NUM_CLASSES} \(ids 0..{NUM_CLASSES - 1}\): set model.num_classes"
    )
    with pytest.raises(ValueError, match=expected):
        model(batch)
    batch[1]["instances"].gt_classes[2] = NUM_CLASSES - 1  # the largest valid id trains
    assert torch.isfinite(sum(model(batch).values()))


@pytest.mark.parametrize("build", DETECTORS.values(), ids=DETECTORS.keys())
def test_non_finite_predictions_are_named_and_never_reach_the_criterion(build):
    criterion = StandInCriterion()
    model = build(criterion=criterion).train()
    last_layer = model.transformer.decoder.num_layers - 1
    with torch.no_grad():
        model.bbox_embed[last_layer].layers[-1].bias[0] = float("nan")  # the final layer's box head only
    with pytest.raises(FloatingPointError, match="before StandInCriterion") as error:
        model(hand_made_batch())
    assert not hasattr(criterion, "outputs")  # the criterion was not called
    named = str(error.value).split(": ", 1)[1].split(", ")
    assert "outputs['pred_boxes']" in named
    assert "outputs['pred_logits']" not in named and "outputs['aux_outputs'][0]['pred_boxes']" not in named
