"""ResNet backbone: torchvision's ResNet-18/34/50/101/152 (blocks, weights and parameter names unchanged:
``conv1``, ``bn1``, ``layer1``..``layer4``) with detectron2's interface: named outputs ``stem``,
``res2``..``res5`` (strides 4, 4, 8, 16, 32), ``freeze_at``, ``output_shape()`` and frozen batch norm."""

import re
from collections.abc import Callable, Mapping, Sequence

import torch
import torchvision
from torch import nn

from detrkit.modeling.backbone.backbone import StagedBackbone, norm_factory

__all__ = ["ResNet", "convert_detectron2_resnet_names", "detectron2_resnet_name_to_torchvision"]

_BUILDERS: dict[int, Callable[..., torchvision.models.ResNet]] = {
    18: torchvision.models.resnet18,
    34: torchvision.models.resnet34,
    50: torchvision.models.resnet50,
    101: torchvision.models.resnet101,
    152: torchvision.models.resnet152,
}
_STAGES = ("stem", "res2", "res3", "res4", "res5")


class ResNet(StagedBackbone):
    """torchvision's ResNet trunk (no pooling/classifier) returning detectron2-named feature maps.

    Args:
        depth: 18, 34, 50, 101 or 152.
        out_features: names among ``"stem", "res2", "res3", "res4", "res5"``; stages after the last one
            are not built.
        freeze_at: 0 freezes nothing, 1 the stem, 2 the stem and res2, ... (frozen parameters get
            ``requires_grad=False`` and their batch norms become ``FrozenBatchNorm2d``, like detectron2).
        norm: ``"FrozenBN"``, ``"BN"``, ``"SyncBN"``, ``"GN"`` or a callable ``channels -> nn.Module``.
        channels_last: compute in the channels-last memory format (faster on CPU; see
            :class:`~detrkit.modeling.backbone.StagedBackbone`).
        fold_frozen_bn: fold the frozen batch norms into the convolutions before them (same state dict).

    Shapes: ``(N, 3, H, W)`` -> ``{"res<k>": (N, C_k, ceil(H / 2^k), ceil(W / 2^k))}`` with ``C_k`` =
    64, 128, 256, 512 (depth 18/34) or 256, 512, 1024, 2048 (50 and deeper) for k = 2..5; ``"stem"``:
    ``(N, 64, ceil(H / 4), ceil(W / 4))``.

    Weights: a torchvision ``.pth`` state dict loads by name (``layer1.0.conv1.weight``, ...);
    detectron2-named ones (``res2.0.conv1.weight``, ...) go through :func:`convert_detectron2_resnet_names`;
    :func:`detrkit.modeling.backbone.load_backbone_weights` does either from a file.
    """

    def __init__(
        self,
        depth: int = 50,
        out_features: Sequence[str] = ("res3", "res4", "res5"),
        freeze_at: int = 0,
        norm: str | Callable[[int], nn.Module] = "FrozenBN",
        channels_last: bool = True,
        fold_frozen_bn: bool = True,
    ):
        super().__init__()
        if depth not in _BUILDERS:
            raise ValueError(f"ResNet depth must be one of {sorted(_BUILDERS)}, got {depth}")
        trunk = _BUILDERS[depth](weights=None, norm_layer=norm_factory(norm))
        num_layers = max((_STAGES.index(f) for f in out_features if f in _STAGES), default=0)
        self.depth = depth
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
        for k in range(1, num_layers + 1):
            self.add_module(f"layer{k}", getattr(trunk, f"layer{k}"))
        expansion = 4 if depth >= 50 else 1
        stage_specs = [("stem", 64, 4)] + [
            (f"res{k}", 64 * 2 ** (k - 2) * expansion, 2**k) for k in range(2, 6)
        ]
        self._setup_stages(stage_specs, out_features, freeze_at, channels_last, fold_frozen_bn)

    def _stage_paths(self, name: str) -> list[str]:
        if name == "stem":
            return ["conv1", "bn1", "relu", "maxpool"]
        return [f"layer{int(name[3:]) - 1}"]

    def convert_pretrained_state_dict(
        self, state_dict: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """An ImageNet ResNet state dict with torchvision's or detectron2's names -> this module's names,
        without the classifier and the stages this trunk does not build."""
        if any(key.startswith(("stem.", "res2.", "res3.", "res4.", "res5.")) for key in state_dict):
            state_dict = convert_detectron2_resnet_names(state_dict)
        unused = ("fc.",) + tuple(f"layer{k}." for k in range(1, 5) if not hasattr(self, f"layer{k}"))
        return {key: value for key, value in state_dict.items() if not key.startswith(unused)}


_D2_BLOCK = re.compile(r"res([2-5])\.(\d+)\.(conv[1-3]|shortcut)(\.norm)?\.(\w+)$")
_D2_STEM = re.compile(r"stem\.conv1(\.norm)?\.(\w+)$")
_D2_CLASSIFIER = re.compile(r"(stem\.fc|linear)\.(weight|bias)$")


def detectron2_resnet_name_to_torchvision(name: str) -> str:
    """The torchvision name of a detectron2 ResNet parameter/buffer name (the inverse of detectron2's
    ``convert-torchvision-to-d2.py``).

    ``stem.conv1.weight -> conv1.weight``, ``stem.conv1.norm.<x> -> bn1.<x>``,
    ``res<k>.<i>.conv<j>.weight -> layer<k-1>.<i>.conv<j>.weight``, ``res<k>.<i>.conv<j>.norm.<x> ->
    layer<k-1>.<i>.bn<j>.<x>``, ``res<k>.<i>.shortcut[.norm].<x> -> layer<k-1>.<i>.downsample.0|1.<x>``,
    classifier ``stem.fc.<x>``/``linear.<x>`` -> ``fc.<x>``.

    Raises:
        ValueError: for a name outside this scheme (e.g. Caffe2-format ``res2_0_branch2a_w``, whose weights
            also put the stride in the 1x1 convolution and expect BGR input, unlike torchvision's).
    """
    if m := _D2_STEM.fullmatch(name):
        return f"{'bn1' if m[1] else 'conv1'}.{m[2]}"
    if m := _D2_BLOCK.fullmatch(name):
        stage, block, conv, norm, leaf = m.groups()
        if conv == "shortcut":
            module = "downsample.1" if norm else "downsample.0"
        else:
            module = conv.replace("conv", "bn") if norm else conv
        return f"layer{int(stage) - 1}.{block}.{module}.{leaf}"
    if m := _D2_CLASSIFIER.fullmatch(name):
        return f"fc.{m[2]}"
    raise ValueError(
        f"{name!r} is not a detectron2 ResNet name (stem.conv1[.norm].*, res<k>.<i>.conv<j>[.norm].*, "
        "res<k>.<i>.shortcut[.norm].*); Caffe2-format (MSRA) weights are not supported"
    )


def convert_detectron2_resnet_names(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{detectron2 name: tensor}`` -> ``{torchvision name: tensor}`` (see
    :func:`detectron2_resnet_name_to_torchvision`)."""
    return {detectron2_resnet_name_to_torchvision(k): v for k, v in state_dict.items()}
