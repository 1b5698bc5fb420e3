"""The backbone interface of detectron2 (``detectron2.modeling.Backbone``) and the staged backbone that
ResNet and MobileNetV2 share (stages run in order; the first ``freeze_at`` stages are frozen)."""

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn

from detrkit.layers.batch_norm import FrozenBatchNorm2d, fold_frozen_batch_norms, get_norm
from detrkit.layers.shape_spec import ShapeSpec

__all__ = ["Backbone", "StagedBackbone", "freeze_module", "norm_factory"]


class Backbone(nn.Module, ABC):
    """A module mapping images ``(N, 3, H, W)`` to named feature maps ``{name: (N, C, H/s, W/s)}``.

    Subclasses set ``_out_features`` (names, in output order), ``_out_feature_channels`` and
    ``_out_feature_strides`` (name -> int).
    """

    _out_features: list[str]
    _out_feature_channels: dict[str, int]
    _out_feature_strides: dict[str, int]

    @abstractmethod
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, 3, H, W)`` -> ``{name: (N, C_name, H_name, W_name)}`` for each name in ``_out_features``."""

    @property
    def size_divisibility(self) -> int:
        """Input sizes must be padded to a multiple of this (0: no requirement)."""
        return 0

    @property
    def padding_constraints(self) -> dict[str, int]:
        """Further padding requirements (detectron2's interface); none here."""
        return {}

    def output_shape(self) -> dict[str, ShapeSpec]:
        """``{name: ShapeSpec(channels=..., stride=...)}`` for each output, in output order."""
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
        }


def freeze_module(module: nn.Module) -> nn.Module:
    """Stops the gradients of ``module``'s parameters and turns its batch norms into ``FrozenBatchNorm2d``
    (detectron2's ``block.freeze()``). Returns the (possibly new) module."""
    for p in module.parameters():
        p.requires_grad_(False)
    return FrozenBatchNorm2d.convert_frozen_batchnorm(module)


def norm_factory(norm: str | Callable[[int], nn.Module]) -> Callable[[int], nn.Module]:
    """``channels -> norm layer`` for torchvision's ``norm_layer`` argument, from a :func:`get_norm` name
    (``"FrozenBN"``, ``"BN"``, ``"SyncBN"``, ``"GN"``) or callable; unknown or empty names fail here."""
    if not norm:
        raise ValueError(f"norm must name a normalization layer or be a callable, got {norm!r}")
    get_norm(norm, 32)  # raises ValueError for an unknown name before any trunk is built
    return partial(get_norm, norm)


class StagedBackbone(Backbone):
    """A backbone made of consecutive stages ``"stem", "res2", ..., "res5"`` (strides 4 or 2, 4, 8, 16, 32).

    Subclasses call :meth:`_setup_stages` at the end of ``__init__`` and implement :meth:`_stage_paths`.
    Stages after the last requested output are not run (subclasses should not build them).

    Args of ``_setup_stages``:
        stage_specs: ``[(stage name, channels, stride)]`` for every stage, in order.
        out_features: names of the stages to output.
        freeze_at: number of leading stages to freeze (0: none, 1: the stem, 2: stem and res2, ...).
        channels_last: keep the weights and compute in the channels-last memory format (the inputs are
            converted; the feature maps come out channels-last, same shapes and values up to float rounding).
            On CPU the convolutions run about 1.4x (float32) to 2x (bfloat16) faster than channels-first.
        fold_frozen_bn: fold each ``FrozenBatchNorm2d`` into the convolution before it
            (:func:`~detrkit.layers.fold_frozen_batch_norms`: same parameters and state dict, one pass
            fewer over every feature map, forward and backward; equal outputs up to float rounding).
    """

    def _setup_stages(
        self,
        stage_specs: Sequence[tuple[str, int, int]],
        out_features: Sequence[str],
        freeze_at: int,
        channels_last: bool = True,
        fold_frozen_bn: bool = True,
    ) -> None:
        names = [name for name, _, _ in stage_specs]
        unknown = [f for f in out_features if f not in names]
        if not out_features or unknown:
            raise ValueError(f"out_features {list(out_features)} must be a non-empty subset of {names}")
        if not 0 <= freeze_at <= len(names):
            raise ValueError(f"freeze_at must be in [0, {len(names)}] (stages {names}), got {freeze_at}")
        self._out_features = sorted(out_features, key=names.index)
        self._stage_names = names[: max(names.index(f) for f in out_features) + 1]
        self._out_feature_channels = {name: c for name, c, _ in stage_specs if name in self._out_features}
        self._out_feature_strides = {name: s for name, _, s in stage_specs if name in self._out_features}
        self.freeze_at = freeze_at
        for name in names[:freeze_at]:
            if name in self._stage_names:
                for path in self._stage_paths(name):
                    parent, _, child = path.rpartition(".")
                    frozen = freeze_module(self.get_submodule(path))
                    self.get_submodule(parent).add_module(child, frozen)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)
        if fold_frozen_bn:
            fold_frozen_batch_norms(self)

    @abstractmethod
    def _stage_paths(self, name: str) -> list[str]:
        """Dotted paths (``"layer1"``, ``"features.4"``) of the submodules of stage ``name``, run in order."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, 3, H, W)`` -> ``{name: (N, C_name, ceil(H / stride), ceil(W / stride))}``."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outputs = {}
        for name in self._stage_names:
            for path in self._stage_paths(name):
                x = self.get_submodule(path)(x)
            if name in self._out_features:
                outputs[name] = x
        return outputs
