"""ConvNormAct: detrex's submodule names and the conv -> norm -> activation order."""

import torch
from torch import nn

from detrkit.layers.conv import ConvNormAct


def test_names_and_composition():
    torch.manual_seed(0)
    layer = ConvNormAct(4, 8, kernel_size=3, padding=1, norm_layer=nn.GroupNorm(2, 8), activation=nn.ReLU())
    assert sorted(layer.state_dict()) == ["conv.bias", "conv.weight", "norm.bias", "norm.weight"]
    x = torch.randn(2, 4, 5, 5)
    expected = torch.relu(
        nn.functional.group_norm(nn.functional.conv2d(x, layer.conv.weight, layer.conv.bias, padding=1), 2)
    )
    torch.testing.assert_close(layer(x), expected)


def test_plain_convolution_without_norm_and_activation():
    layer = ConvNormAct(3, 5, kernel_size=1, bias=False)
    assert sorted(layer.state_dict()) == ["conv.weight"]
    x = torch.randn(1, 3, 2, 2)
    torch.testing.assert_close(layer(x), layer.conv(x))
