"""ChannelMapper in DINO's setting: shapes, strides, parameter count, detrex's parameter names, and the extra
level computed from the raw last backbone feature."""

import pytest
import torch
from torch import nn

from detrkit.config import LazyCall as L
from detrkit.config import instantiate
from detrkit.layers.shape_spec import ShapeSpec
from detrkit.modeling.neck import ChannelMapper

DINO_SHAPES = {
    "res3": ShapeSpec(channels=512),
    "res4": ShapeSpec(channels=1024),
    "res5": ShapeSpec(channels=2048),
}
IN_FEATURES = ["res3", "res4", "res5"]


def dino_neck(**overrides) -> ChannelMapper:
    kwargs = dict(
        input_shapes=DINO_SHAPES,
        in_features=IN_FEATURES,
        out_channels=256,
        num_outs=4,
        kernel_size=1,
        norm_layer=nn.GroupNorm(num_groups=32, num_channels=256),
    )
    return ChannelMapper(**(kwargs | overrides))


def backbone_features(size: int = 64) -> dict[str, torch.Tensor]:
    """ResNet-50 C3..C5 of a ``size x size`` image (strides 8, 16, 32)."""
    torch.manual_seed(0)
    return {
        name: torch.randn(2, spec.channels, size // s, size // s)
        for (name, spec), s in zip(DINO_SHAPES.items(), (8, 16, 32), strict=True)
    }


def test_dino_output_shapes_and_strides():
    outputs = dino_neck()(backbone_features(64))
    assert isinstance(outputs, tuple)
    assert [tuple(o.shape) for o in outputs] == [
        (2, 256, 8, 8),
        (2, 256, 4, 4),
        (2, 256, 2, 2),
        (2, 256, 1, 1),
    ]
    # strides 8, 16, 32 and 64 w.r.t. a 64 x 64 image, also for a size that is not a power of two
    assert [o.shape[-1] for o in dino_neck()(backbone_features(96))] == [12, 6, 3, 2]


def test_dino_parameter_count():
    one_by_one = (512 * 256 + 256) + (1024 * 256 + 256) + (2048 * 256 + 256)  # weights + biases
    extra = 2048 * 256 * 3 * 3 + 256  # 3x3 stride-2 convolution on C5
    group_norms = 4 * (256 + 256)  # one GroupNorm (weight, bias) per output level
    assert one_by_one + extra + group_norms == 5_639_168
    assert sum(p.numel() for p in dino_neck().parameters()) == one_by_one + extra + group_norms


def test_detrex_parameter_names():
    names = sorted(dino_neck().state_dict())
    expected = sorted(
        [f"convs.{i}.{m}.{p}" for i in range(3) for m in ("conv", "norm") for p in ("weight", "bias")]
        + [f"extra_convs.0.{m}.{p}" for m in ("conv", "norm") for p in ("weight", "bias")]
    )
    assert names == expected


def test_extra_levels_read_the_raw_last_input_then_the_previous_output():
    neck = dino_neck(num_outs=5).eval()
    inputs = backbone_features(128)
    outputs = neck(inputs)
    assert neck.extra_convs[0].conv.in_channels == 2048 and neck.extra_convs[1].conv.in_channels == 256
    torch.testing.assert_close(outputs[3], neck.extra_convs[0](inputs["res5"]), rtol=0, atol=0)
    torch.testing.assert_close(outputs[4], neck.extra_convs[1](outputs[3]), rtol=0, atol=0)
    for level, name in enumerate(IN_FEATURES):
        torch.testing.assert_close(outputs[level], neck.convs[level](inputs[name]), rtol=0, atol=0)


def test_every_level_has_its_own_norm_layer():
    neck = dino_neck()
    norms = [neck.convs[i].norm for i in range(3)] + [neck.extra_convs[0].norm]
    assert len({id(n) for n in norms}) == 4
    with torch.no_grad():
        norms[0].weight.fill_(3.0)
    assert all(torch.equal(n.weight, torch.ones(256)) for n in norms[1:])


def test_defaults_follow_detrex():
    neck = ChannelMapper(
        input_shapes={"a": ShapeSpec(channels=4), "b": ShapeSpec(channels=8)},
        in_features=["a", "b"],
        out_channels=6,
    )
    assert (
        neck.extra_convs is None
        and neck.convs[0].conv.kernel_size == (3, 3)
        and neck.convs[0].conv.padding == (1, 1)
    )
    outputs = neck({"a": torch.randn(1, 4, 5, 5), "b": torch.randn(1, 8, 3, 3)})
    assert [tuple(o.shape) for o in outputs] == [(1, 6, 5, 5), (1, 6, 3, 3)]
    # num_outs defaults to the number of input shapes, not of in_features
    neck = ChannelMapper(
        input_shapes={"a": ShapeSpec(channels=4), "b": ShapeSpec(channels=8)},
        in_features=["b"],
        out_channels=6,
    )
    assert len(neck.extra_convs) == 1 and neck.extra_convs[0].conv.in_channels == 8


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="res2"):
        dino_neck(in_features=["res2", "res3"])
    with pytest.raises(KeyError, match="res5"):
        dino_neck()({k: v for k, v in backbone_features().items() if k != "res5"})


def test_lazy_config_like_detrex_dino():
    cfg = L(ChannelMapper)(
        input_shapes={name: L(ShapeSpec)(channels=spec.channels) for name, spec in DINO_SHAPES.items()},
        in_features=IN_FEATURES,
        out_channels=256,
        num_outs=4,
        kernel_size=1,
        norm_layer=L(nn.GroupNorm)(num_groups=32, num_channels=256),
    )
    neck = instantiate(cfg)
    assert sum(p.numel() for p in neck.parameters()) == 5_639_168
