"""MobileNetV2 backbone: torchvision's ``mobilenet_v2().features`` (blocks, weights and parameter names
``features.<i>.*`` unchanged) split into detectron2-style stages with named outputs.

Stages (torchvision block indices, width multiplier 1): ``stem`` = features[0:2] (stride 2, 16 channels),
``res2`` = [2:4] (stride 4, 24), ``res3`` = [4:7] (stride 8, 32), ``res4`` = [7:14] (stride 16, 96),
``res5`` = [14:19] (stride 32, 1280: the last inverted residuals and the final 1x1 convolution).
"""

from collections.abc import Callable, Mapping, Sequence

import torch
import torchvision
from torch import nn

from detrkit.modeling.backbone.backbone import StagedBackbone, norm_factory

__all__ = ["MobileNetV2"]

_STAGE_BLOCKS = {"stem": (0, 2), "res2": (2, 4), "res3": (4, 7), "res4": (7, 14), "res5": (14, 19)}
_STAGE_STRIDES = {"stem": 2, "res2": 4, "res3": 8, "res4": 16, "res5": 32}


class MobileNetV2(StagedBackbone):
    """torchvision's MobileNetV2 feature trunk returning named feature maps.

    Args:
        out_features: names among ``"stem", "res2", "res3", "res4", "res5"``; blocks after the last one are
            not built.
        freeze_at: 0 freezes nothing, 1 the stem, 2 the stem and res2, ... (as in :class:`ResNet`).
        norm: ``"FrozenBN"``, ``"BN"``, ``"SyncBN"``, ``"GN"`` or a callable ``channels -> nn.Module``.
        width_mult: torchvision's channel multiplier.
        channels_last: compute in the channels-last memory format (faster on CPU; see
            :class:`~detrkit.modeling.backbone.StagedBackbone`).
        fold_frozen_bn: fold the frozen batch norms into the convolutions before them (same state dict).

    Shapes: ``(N, 3, H, W)`` -> ``{name: (N, C, ceil(H / stride), ceil(W / stride))}`` with the strides and
    channels of the module docstring (``output_shape()`` gives them for any ``width_mult``).

    Weights: torchvision's ``mobilenet_v2-b0353104.pth`` loads by name (``features.*``; the classifier is
    dropped) with :func:`detrkit.modeling.backbone.load_backbone_weights`.
    """

    def __init__(
        self,
        out_features: Sequence[str] = ("res3", "res4", "res5"),
        freeze_at: int = 0,
        norm: str | Callable[[int], nn.Module] = "FrozenBN",
        width_mult: float = 1.0,
        channels_last: bool = True,
        fold_frozen_bn: bool = True,
    ):
        super().__init__()
        trunk = torchvision.models.mobilenet_v2(
            weights=None, width_mult=width_mult, norm_layer=norm_factory(norm)
        )
        last = max((_STAGE_BLOCKS[f][1] for f in out_features if f in _STAGE_BLOCKS), default=0)
        self.features = trunk.features[:last]
        stage_specs = [
            (name, trunk.features[end - 1].out_channels, _STAGE_STRIDES[name])
            for name, (_, end) in _STAGE_BLOCKS.items()
        ]
        self._setup_stages(stage_specs, out_features, freeze_at, channels_last, fold_frozen_bn)

    def _stage_paths(self, name: str) -> list[str]:
        start, end = _STAGE_BLOCKS[name]
        return [f"features.{i}" for i in range(start, end)]

    def convert_pretrained_state_dict(
        self, state_dict: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """torchvision's MobileNetV2 state dict without the classifier and the blocks this trunk does not
        build."""
        unused = ("classifier.",) + tuple(
            f"features.{i}." for i in range(len(self.features), _STAGE_BLOCKS["res5"][1])
        )
        return {key: value for key, value in state_dict.items() if not key.startswith(unused)}
