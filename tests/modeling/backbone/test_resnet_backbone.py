"""ResNet backbone: torchvision's trunk (same parameters and outputs), detectron2's named outputs, freezing,
and the detectron2 -> torchvision name mapping."""

import pytest
import torch
import torchvision
from torch import nn

from detrkit.config import LazyCall as L
from detrkit.config import instantiate
from detrkit.layers.batch_norm import FrozenBatchNorm2d
from detrkit.modeling.backbone import (
    ResNet,
    convert_detectron2_resnet_names,
    detectron2_resnet_name_to_torchvision,
)

ALL_STAGES = ("res2", "res3", "res4", "res5")


def num_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


@pytest.mark.parametrize("depth", [18, 34, 50, 101])
def test_parameter_count_equals_torchvision_trunk_without_fc(depth):
    with torch.device("meta"):
        reference = getattr(torchvision.models, f"resnet{depth}")()
        ours = ResNet(depth, out_features=ALL_STAGES, norm="BN")
        frozen = ResNet(depth, out_features=ALL_STAGES, norm="FrozenBN")
    expected = num_params(reference) - num_params(reference.fc)
    assert num_params(ours) == expected
    frozen_affine = sum(
        m.weight.numel() + m.bias.numel() for m in frozen.modules() if isinstance(m, FrozenBatchNorm2d)
    )
    assert num_params(frozen) + frozen_affine == expected
    if depth == 50:
        assert expected == 23_508_032


def test_dino_setting_trainable_parameters():
    with torch.device("meta"):
        backbone = ResNet(50, out_features=("res3", "res4", "res5"), freeze_at=1, norm="FrozenBN")
    # all convolutions of ResNet-50 minus the 7x7 stem convolution (64 * 3 * 7 * 7)
    assert num_params(backbone, trainable_only=True) == 23_508_032 - 53_120 - 64 * 3 * 7 * 7


@pytest.mark.parametrize("depth,channels", [(18, (64, 128, 256, 512)), (50, (256, 512, 1024, 2048))])
def test_outputs_match_output_shape(depth, channels):
    backbone = ResNet(depth, out_features=("stem",) + ALL_STAGES).eval()
    outputs = backbone(torch.randn(1, 3, 64, 96))
    shapes = backbone.output_shape()
    assert list(outputs) == list(shapes) == ["stem", *ALL_STAGES]
    assert [shapes[k].channels for k in ALL_STAGES] == list(channels)
    assert [shapes[k].stride for k in ("stem", *ALL_STAGES)] == [4, 4, 8, 16, 32]
    for name, feature in outputs.items():
        stride = shapes[name].stride
        assert feature.shape == (1, shapes[name].channels, 64 // stride, 96 // stride)


def test_forward_equals_torchvision_layers():
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(norm_layer=FrozenBatchNorm2d)
    for m in reference.modules():
        if isinstance(m, FrozenBatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    # unfolded batch norms (folded ones: test_channels_last_and_folding.py)
    backbone = ResNet(18, out_features=("res3", "res5"), fold_frozen_bn=False)
    backbone.load_state_dict({k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")})
    # the backbone computes channels-last (test_channels_last.py): so does the reference here, bit for bit
    reference = reference.to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    stem = reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))
    res3 = reference.layer2(reference.layer1(stem))
    res5 = reference.layer4(reference.layer3(res3))
    outputs = backbone(x)
    assert list(outputs) == ["res3", "res5"]
    torch.testing.assert_close(outputs["res3"], res3, rtol=0, atol=0)
    torch.testing.assert_close(outputs["res5"], res5, rtol=0, atol=0)


def test_stages_after_the_last_output_are_not_built():
    backbone = ResNet(18, out_features=("res3", "res2"))
    assert hasattr(backbone, "layer2") and not hasattr(backbone, "layer3") and not hasattr(backbone, "layer4")
    assert list(backbone(torch.randn(1, 3, 32, 32))) == ["res2", "res3"]


def trainable_prefixes(backbone: ResNet) -> set[str]:
    return {name.split(".")[0] for name, p in backbone.named_parameters() if p.requires_grad}


def test_freeze_at_like_detectron2():
    assert trainable_prefixes(ResNet(18, freeze_at=0)) == {"conv1", "layer1", "layer2", "layer3", "layer4"}
    assert trainable_prefixes(ResNet(18, freeze_at=1)) == {"layer1", "layer2", "layer3", "layer4"}
    assert trainable_prefixes(ResNet(18, freeze_at=2)) == {"layer2", "layer3", "layer4"}
    assert trainable_prefixes(ResNet(18, freeze_at=5)) == set()
    # with trainable BN, the frozen stages' norms become FrozenBatchNorm2d (detectron2's block.freeze())
    backbone = ResNet(18, freeze_at=2, norm="BN")
    assert isinstance(backbone.bn1, FrozenBatchNorm2d) and isinstance(
        backbone.layer1[1].bn2, FrozenBatchNorm2d
    )
    assert type(backbone.layer2[0].bn1) is nn.BatchNorm2d and backbone.layer2[0].bn1.weight.requires_grad
    with pytest.raises(ValueError, match="freeze_at"):
        ResNet(18, freeze_at=6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="res6"):
        ResNet(18, out_features=("res3", "res6"))
    with pytest.raises(ValueError, match="depth"):
        ResNet(depth=42)
    with pytest.raises(ValueError, match="'IN'"):
        ResNet(18, norm="IN")
    with pytest.raises(ValueError, match="norm must name"):
        ResNet(18, norm="")


def test_lazy_config_instantiation():
    cfg = L(ResNet)(depth=18, out_features=["res3", "res4", "res5"], freeze_at=1, norm="FrozenBN")
    backbone = instantiate(cfg)
    assert isinstance(backbone, ResNet) and list(backbone.output_shape()) == ["res3", "res4", "res5"]
    assert not backbone.conv1.weight.requires_grad


def detectron2_names(depth: int) -> dict[str, tuple[int, ...]]:
    """The names and shapes detectron2's ResNet (stride_in_1x1=False, FrozenBN) gives its state dict, built
    from its module layout (stem.conv1 with .norm; res<k>.<i>.conv<j> with .norm; .shortcut with .norm)."""
    bottleneck = depth >= 50
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]

    def conv(prefix, cin, cout, k):
        norm = {f"{prefix}.norm.{b}": (cout,) for b in ("weight", "bias", "running_mean", "running_var")}
        return {f"{prefix}.weight": (cout, cin, k, k), **norm}

    names = conv("stem.conv1", 3, 64, 7)
    cin = 64
    for stage, n in enumerate(blocks, start=2):
        width = 64 * 2 ** (stage - 2)
        cout = width * 4 if bottleneck else width
        for i in range(n):
            p = f"res{stage}.{i}"
            if bottleneck:
                names |= conv(f"{p}.conv1", cin, width, 1) | conv(f"{p}.conv2", width, width, 3)
                names |= conv(f"{p}.conv3", width, cout, 1)
            else:
                names |= conv(f"{p}.conv1", cin, width, 3) | conv(f"{p}.conv2", width, width, 3)
            if cin != cout:
                names |= conv(f"{p}.shortcut", cin, cout, 1)
            cin = cout
    return names


def test_detectron2_name_examples():
    assert detectron2_resnet_name_to_torchvision("stem.conv1.weight") == "conv1.weight"
    assert detectron2_resnet_name_to_torchvision("stem.conv1.norm.running_mean") == "bn1.running_mean"
    assert detectron2_resnet_name_to_torchvision("res2.0.conv1.norm.weight") == "layer1.0.bn1.weight"
    assert detectron2_resnet_name_to_torchvision("res5.2.conv3.weight") == "layer4.2.conv3.weight"
    assert detectron2_resnet_name_to_torchvision("res3.0.shortcut.weight") == "layer2.0.downsample.0.weight"
    assert (
        detectron2_resnet_name_to_torchvision("res4.0.shortcut.norm.running_var")
        == "layer3.0.downsample.1.running_var"
    )
    assert detectron2_resnet_name_to_torchvision("stem.fc.weight") == "fc.weight"
    with pytest.raises(ValueError, match="res2_0_branch2a_w"):
        detectron2_resnet_name_to_torchvision("res2_0_branch2a_w")


@pytest.mark.parametrize("depth", [18, 50])
def test_detectron2_state_dict_fills_every_entry_in_the_right_place(depth):
    torch.manual_seed(depth)
    official = {name: torch.randn(shape) for name, shape in detectron2_names(depth).items()}
    backbone = ResNet(depth, out_features=ALL_STAGES)
    converted = backbone.convert_pretrained_state_dict({**official, "stem.fc.weight": torch.randn(1000, 8)})
    assert sorted(converted) == sorted(backbone.state_dict())
    backbone.load_state_dict(converted, strict=True)
    loaded = backbone.state_dict()
    for name, value in official.items():
        torch.testing.assert_close(loaded[detectron2_resnet_name_to_torchvision(name)], value, rtol=0, atol=0)
    assert convert_detectron2_resnet_names(
        {"res2.0.conv2.norm.bias": official["res2.0.conv2.norm.bias"]}
    ) == {"layer1.0.bn2.bias": official["res2.0.conv2.norm.bias"]}


def test_pretrained_state_dict_of_unbuilt_stages_is_dropped():
    torch.manual_seed(1)
    official = {name: torch.randn(shape) for name, shape in detectron2_names(18).items()}
    backbone = ResNet(18, out_features=("res3",))
    converted = backbone.convert_pretrained_state_dict(official)
    assert sorted(converted) == sorted(backbone.state_dict())
