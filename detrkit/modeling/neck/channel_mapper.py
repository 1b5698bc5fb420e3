"""``ChannelMapper``: maps multi-level backbone features to a common channel count and adds extra
stride-2 levels, with detrex's signature, semantics and parameter names (``convs.<i>.conv.weight``,
``convs.<i>.norm.weight``, ``extra_convs.<j>.conv.weight``, ...), so detrex checkpoints load by name."""

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from detrkit.layers.conv import ConvNormAct
from detrkit.layers.shape_spec import ShapeSpec

__all__ = ["ChannelMapper"]


class ChannelMapper(nn.Module):
    """One ``ConvNormAct`` per input level (``convs``) and, if ``num_outs`` exceeds the inputs, 3x3 stride-2
    ``ConvNormAct`` layers (``extra_convs``): the first reads the last *input* feature map (the raw backbone
    output, not its mapped version), each further one the previous extra output.

    Each layer gets its own deep copy of ``norm_layer`` and ``activation``.

    Args:
        input_shapes: ``{feature name: ShapeSpec}`` of the backbone outputs (``channels`` is used).
        in_features: names of the features to map, fine to coarse.
        out_channels: channels of every output.
        kernel_size, stride, bias, groups, dilation: of the per-level convolutions (padding
            ``(kernel_size - 1) // 2``); the extra convolutions are 3x3, stride 2, padding 1.
        norm_layer: module applied after each convolution, e.g. ``nn.GroupNorm(32, out_channels)``.
        activation: module applied last in each layer.
        num_outs: number of outputs; default ``len(input_shapes)``.
        kwargs: accepted and ignored, as detrex does (configs written for it may pass more).

    Shapes: ``{name: (N, C_name, H_l, W_l)}`` -> tuple of ``num_outs`` tensors
    ``(N, out_channels, H_l, W_l)``, each extra one of size ``ceil(H / 2)`` of the level before.
    """

    def __init__(
        self,
        input_shapes: Mapping[str, ShapeSpec],
        in_features: Sequence[str],
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        bias: bool = True,
        groups: int = 1,
        dilation: int = 1,
        norm_layer: nn.Module | None = None,
        activation: nn.Module | None = None,
        num_outs: int | None = None,
        **kwargs,
    ):
        super().__init__()
        missing = [f for f in in_features if f not in input_shapes]
        if missing:
            raise ValueError(f"in_features {missing} have no entry in input_shapes {sorted(input_shapes)}")
        in_channels = [input_shapes[f].channels for f in in_features]
        num_outs = len(input_shapes) if num_outs is None else num_outs
        if num_outs < len(in_features):
            raise ValueError(
                f"num_outs={num_outs} is smaller than the number of in_features {list(in_features)}"
            )

        def layer(in_ch: int, kernel: int, layer_stride: int, padding: int) -> ConvNormAct:
            return ConvNormAct(
                in_ch,
                out_channels,
                kernel_size=kernel,
                stride=layer_stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=bias,
                norm_layer=copy.deepcopy(norm_layer),
                activation=copy.deepcopy(activation),
            )

        self.convs = nn.ModuleList(layer(c, kernel_size, stride, (kernel_size - 1) // 2) for c in in_channels)
        self.extra_convs = None
        if num_outs > len(in_channels):
            extra_in = [in_channels[-1]] + [out_channels] * (num_outs - len(in_channels) - 1)
            self.extra_convs = nn.ModuleList(layer(c, 3, 2, 1) for c in extra_in)
        self.input_shapes = input_shapes
        self.in_features = list(in_features)
        self.out_channels = out_channels

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """
        Args:
            inputs: ``{name: (N, C_name, H_l, W_l)}`` containing every name of ``in_features``.
        Returns:
            ``num_outs`` tensors ``(N, out_channels, H_l, W_l)``, fine to coarse.
        """
        missing = [f for f in self.in_features if f not in inputs]
        if missing:
            raise KeyError(f"ChannelMapper inputs lack {missing}; got {sorted(inputs)}")
        outs = [conv(inputs[name]) for conv, name in zip(self.convs, self.in_features, strict=True)]
        if self.extra_convs is not None:
            x = inputs[self.in_features[-1]]
            for conv in self.extra_convs:
                x = conv(x)
                outs.append(x)
        return tuple(outs)
