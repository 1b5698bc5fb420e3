"""``ConvNormAct``: a 2-d convolution followed by an optional norm layer and activation, with detrex's
signature and submodule names (``conv``, ``norm``, ``activation``), so detrex checkpoints load by name."""

import torch
from torch import nn

__all__ = ["ConvNormAct"]


class ConvNormAct(nn.Module):
    """``activation(norm(conv(x)))``; ``norm`` and ``activation`` are skipped when ``None``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: of ``nn.Conv2d``.
        norm_layer: a module applied after the convolution (e.g. ``nn.GroupNorm(32, out_channels)``).
        activation: a module applied last (e.g. ``nn.ReLU()``).
        kwargs: further ``nn.Conv2d`` arguments (e.g. ``padding_mode``).

    Shapes: ``(N, in_channels, H, W) -> (N, out_channels, H', W')``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        norm_layer: nn.Module | None = None,
        activation: nn.Module | None = None,
        **kwargs,
    ):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            **kwargs,
        )
        self.norm = norm_layer
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x
