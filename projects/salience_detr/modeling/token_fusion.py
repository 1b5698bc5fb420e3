"""Cross-level token fusion (Salience DETR sec. 3.4): a path aggregation network (top-down, then bottom-up)
of CSP layers built from RepVGGPluX blocks, run on the encoder memory (official code's
``RepVGGPluXNetwork``)."""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CSPRepPluXLayer",
    "CrossLevelTokenFusion",
    "GlobalContextGate",
    "RepVGGPluXBlock",
    "conv_norm_act",
]


def conv_norm_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    activation: bool = True,
) -> nn.Sequential:
    """``Conv2d`` (no bias, "same" padding) -> ``BatchNorm2d`` [-> ``SiLU``] (indices 0, 1, 2)."""
    layers = [
        nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if activation:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class GlobalContextGate(nn.Module):
    """Global-context channel gate: ``x * sigmoid(W2 ReLU(W1 (sum_p softmax_p(attention(x)) x_p)))``
    (GCNet-style attention pooling, then a squeeze-excitation bottleneck of ``channels // reduction``).

    Args:
        channels: ``C``; reduction: bottleneck factor. Default 16.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.attention = nn.Conv2d(channels, 1, kernel_size=1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, kernel_size=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, kernel_size=1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(bs, C, H, W) -> (bs, C, H, W)``."""
        weights = self.attention(x).flatten(2).softmax(-1)  # (bs, 1, HW)
        context = torch.einsum("bcp,bip->bc", x.flatten(2), weights)[..., None, None]
        return self.transform(context) * x


class RepVGGPluXBlock(nn.Module):
    """``y = GlobalContextGate(SiLU(BN(conv3x3_g(x)) + BN(conv1x1_g(x)))) + x`` (grouped convolutions).

    Args:
        channels: ``C``; groups: convolution groups. Default 4.
    """

    def __init__(self, channels: int, groups: int = 4):
        super().__init__()
        self.conv1 = conv_norm_act(channels, channels, 3, groups=groups, activation=False)
        self.conv2 = conv_norm_act(channels, channels, 1, groups=groups, activation=False)
        self.activation = nn.SiLU(inplace=True)
        self.context_gate = GlobalContextGate(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.context_gate(self.activation(self.conv1(x) + self.conv2(x))) + x


class CSPRepPluXLayer(nn.Module):
    """CSP layer: ``blocks(conv1(x)) + conv2(x)`` with 1x1 Conv-BN-SiLU ``conv1``/``conv2`` from
    ``in_channels`` to ``out_channels`` and ``num_blocks`` :class:`RepVGGPluXBlock` (official code:
    expansion 1, so no third convolution).

    Args:
        in_channels, out_channels: widths; num_blocks: default 3; groups: default 4.
    """

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int = 3, groups: int = 4):
        super().__init__()
        self.conv1 = conv_norm_act(in_channels, out_channels, 1)
        self.conv2 = conv_norm_act(in_channels, out_channels, 1)
        self.bottlenecks = nn.Sequential(*[RepVGGPluXBlock(out_channels, groups) for _ in range(num_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottlenecks(self.conv1(x)) + self.conv2(x)


class CrossLevelTokenFusion(nn.Module):
    """PAN over ``L`` levels of ``C`` channels (Salience DETR sec. 3.4), on the flattened encoder memory.

    Top-down, from the coarsest level: ``h = lateral_convs[l](h)`` (1x1 Conv-BN-SiLU, also the level's
    top-down output), nearest upsampling to level ``l``, ``inner_l = layer_blocks[l]([up(h), x_l])``.
    Bottom-up: ``out_0 = inner_0``, ``out_{l+1} = pan_blocks[l]([downsample_blocks[l](out_l), inner_{l+1}])``
    (3x3 stride-2 Conv-BN-SiLU). Convolutions: Kaiming-uniform (a=1) weights, zero biases.

    Args:
        embed_dim: ``C``. Default 256.
        num_feature_levels: ``L``. Default 4.
        num_blocks: RepVGGPluX blocks per CSP layer. Default 3.
        groups: their convolution groups. Default 4.
    """

    def __init__(
        self, embed_dim: int = 256, num_feature_levels: int = 4, num_blocks: int = 3, groups: int = 4
    ):
        super().__init__()
        if num_feature_levels < 2:
            raise ValueError(f"CrossLevelTokenFusion: num_feature_levels={num_feature_levels} must be >= 2")
        self.embed_dim = embed_dim
        self.num_feature_levels = num_feature_levels
        gaps = range(num_feature_levels - 1)
        self.lateral_convs = nn.ModuleList(conv_norm_act(embed_dim, embed_dim, 1) for _ in gaps)
        self.layer_blocks = nn.ModuleList(
            CSPRepPluXLayer(2 * embed_dim, embed_dim, num_blocks, groups) for _ in gaps
        )
        self.downsample_blocks = nn.ModuleList(conv_norm_act(embed_dim, embed_dim, 3, stride=2) for _ in gaps)
        self.pan_blocks = nn.ModuleList(
            CSPRepPluXLayer(2 * embed_dim, embed_dim, num_blocks, groups) for _ in gaps
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=1)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def fuse(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """``L`` maps ``(bs, C, H_l, W_l)`` (finest first) -> ``L`` fused maps of the same shapes."""
        inner = [feats[-1]]
        for level in range(self.num_feature_levels - 2, -1, -1):
            high = self.lateral_convs[level](inner[0])
            inner[0] = high
            up = F.interpolate(high, size=feats[level].shape[-2:], mode="nearest")
            inner.insert(0, self.layer_blocks[level](torch.cat([up, feats[level]], 1)))
        outs = [inner[0]]
        for level in range(self.num_feature_levels - 1):
            down = self.downsample_blocks[level](outs[-1])
            outs.append(self.pan_blocks[level](torch.cat([down, inner[level + 1]], 1)))
        return outs

    def forward(self, memory: torch.Tensor, spatial_shapes: torch.Tensor) -> torch.Tensor:
        """``(bs, S, C)`` tokens of ``L`` levels (``spatial_shapes`` ``(L, 2)``) -> fused ``(bs, S, C)``."""
        shapes = spatial_shapes.tolist()
        if len(shapes) != self.num_feature_levels:
            raise ValueError(
                f"CrossLevelTokenFusion built for {self.num_feature_levels} levels, got {len(shapes)}"
            )
        batch, _, channels = memory.shape
        levels = memory.split([h * w for h, w in shapes], dim=1)
        feats = [
            x.transpose(1, 2).reshape(batch, channels, h, w) for x, (h, w) in zip(levels, shapes, strict=True)
        ]
        return torch.cat([f.flatten(2).transpose(1, 2) for f in self.fuse(feats)], 1)
