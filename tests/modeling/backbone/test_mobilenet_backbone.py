"""MobileNetV2 backbone: torchvision's feature trunk, split into named stages with strides 2..32."""

import pytest
import torch
import torchvision
from torch import nn

from detrkit.layers.batch_norm import FrozenBatchNorm2d
from detrkit.modeling.backbone import MobileNetV2

ALL_STAGES = ("stem", "res2", "res3", "res4", "res5")


def test_parameter_count_equals_torchvision_features():
    with torch.device("meta"):
        reference = torchvision.models.mobilenet_v2()
        ours = MobileNetV2(out_features=ALL_STAGES, norm="BN")
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in reference.features.parameters()
    )


def test_outputs_equal_torchvision_blocks_and_output_shape():
    torch.manual_seed(0)
    reference = torchvision.models.mobilenet_v2(norm_layer=FrozenBatchNorm2d)
    # unfolded batch norms (folded ones: test_channels_last_and_folding.py)
    backbone = MobileNetV2(out_features=ALL_STAGES, fold_frozen_bn=False)
    backbone.load_state_dict(backbone.convert_pretrained_state_dict(reference.state_dict()))
    x = torch.randn(1, 3, 64, 96)
    outputs = backbone(x)
    shapes = backbone.output_shape()
    assert list(outputs) == list(shapes) == list(ALL_STAGES)
    assert {k: (s.channels, s.stride) for k, s in shapes.items()} == {
        "stem": (16, 2),
        "res2": (24, 4),
        "res3": (32, 8),
        "res4": (96, 16),
        "res5": (1280, 32),
    }
    for name, feature in outputs.items():
        assert feature.shape == (
            1,
            shapes[name].channels,
            64 // shapes[name].stride,
            96 // shapes[name].stride,
        )
    # the backbone computes channels-last (test_channels_last.py): so does the reference here, bit for bit
    reference = reference.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(outputs["res3"], reference.features[:7](x), rtol=0, atol=0)
    torch.testing.assert_close(outputs["res5"], reference.features(x), rtol=0, atol=0)


def test_width_multiplier_channels_and_pruning():
    backbone = MobileNetV2(out_features=("res3", "res4"), width_mult=0.5)
    assert len(backbone.features) == 14
    shapes = backbone.output_shape()
    outputs = backbone(torch.randn(1, 3, 32, 32))
    assert [outputs[k].shape[1] for k in ("res3", "res4")] == [
        shapes["res3"].channels,
        shapes["res4"].channels,
    ]
    assert (shapes["res3"].channels, shapes["res4"].channels) == (16, 48)


def test_freeze_at_and_norm():
    backbone = MobileNetV2(freeze_at=2, norm="BN")
    frozen_blocks = {int(n.split(".")[1]) for n, p in backbone.named_parameters() if not p.requires_grad}
    assert frozen_blocks == {0, 1, 2, 3}
    assert isinstance(backbone.features[3].conv[0][1], FrozenBatchNorm2d)
    assert type(backbone.features[4].conv[0][1]) is nn.BatchNorm2d
    assert all(p.requires_grad for p in MobileNetV2(freeze_at=0).parameters())
    with pytest.raises(ValueError, match="res6"):
        MobileNetV2(out_features=("res6",))
