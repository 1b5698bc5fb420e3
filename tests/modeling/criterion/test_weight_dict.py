"""build_weight_dict against the keys detrex's DINO and H-DETR configs build, and weight_losses."""

import pytest
import torch

from detrkit.modeling.criterion import build_weight_dict, weight_losses

BASE = {"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}


def test_dino_weight_dict():
    weights = build_weight_dict(BASE, num_decoder_layers=6, two_stage=True, denoising=True)
    expected = {}
    for key, w in BASE.items():
        expected[key] = expected[key + "_enc"] = expected[key + "_dn"] = w
        for i in range(5):
            expected[f"{key}_{i}"] = expected[f"{key}_dn_{i}"] = w
    assert weights == expected
    assert len(weights) == 3 * (1 + 5 + 1 + 1 + 5)


def test_hybrid_weight_dict_without_two_stage():
    weights = build_weight_dict(BASE, num_decoder_layers=3, two_stage=False, one2many=True)
    assert set(weights) == {f"{k}{s}{m}" for k in BASE for s in ("", "_0", "_1") for m in ("", "_one2many")}
    assert weights["loss_bbox_1_one2many"] == 5.0


def test_weight_losses_multiplies_and_requires_every_weight():
    losses = {"loss_class": torch.tensor(0.5), "loss_bbox": torch.tensor(0.2)}
    weighted = weight_losses(losses, BASE)
    assert weighted["loss_class"].item() == 0.5 and weighted["loss_bbox"].item() == pytest.approx(1.0)
    assert losses["loss_bbox"].item() == pytest.approx(0.2)  # the input dict is not changed
    with pytest.raises(KeyError, match="loss_mask"):
        weight_losses({"loss_mask": torch.tensor(1.0)}, BASE)
