"""``FrozenBatchNorm2d`` and ``get_norm`` with detectron2's semantics (``detectron2.layers.batch_norm``).

A frozen batch norm is the affine map ``y = (x - running_mean) / sqrt(running_var + eps) * weight + bias``
with all four statistics held in buffers: it never updates and has no trainable parameters, which is how
detection backbones keep their ImageNet statistics with small per-GPU batches.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FrozenBatchNorm2d", "fold_frozen_batch_norms", "get_norm"]


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d whose statistics and affine parameters are fixed buffers.

    Buffers ``weight``, ``bias``, ``running_mean``, ``running_var`` start as the identity map
    (``running_var = 1 - eps``). Loading a state dict of a regular ``BatchNorm2d`` works: its
    ``num_batches_tracked`` entry is ignored; state dicts without running statistics (Caffe2 style, only
    ``weight``/``bias``) leave them at the identity.

    Args:
        num_features: channels ``C``.
        eps: added to ``running_var`` before the square root.

    Shapes: input and output ``(N, C, H, W)``.
    """

    _version = 3

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
        )

    def scale_and_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The affine map as ``y = x * scale + shift``: two ``(C,)`` tensors."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        state_dict.pop(prefix + "num_batches_tracked", None)
        version = local_metadata.get("version", None)
        if version is None or version < 2:  # files older than version 2 carry no running statistics
            state_dict.setdefault(prefix + "running_mean", torch.zeros_like(self.running_mean))
            state_dict.setdefault(prefix + "running_var", torch.ones_like(self.running_var))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, eps={self.eps}"

    @classmethod
    def convert_frozen_batchnorm(cls, module: nn.Module) -> nn.Module:
        """Replaces every ``BatchNorm2d``/``SyncBatchNorm`` in ``module`` by a ``FrozenBatchNorm2d`` holding
        its statistics and affine parameters.

        Returns:
            a new module if ``module`` itself is a batch norm; otherwise ``module``, converted in place.
        """
        if isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm)):
            frozen = cls(module.num_features, eps=module.eps)
            if module.affine:
                frozen.weight.data = module.weight.data.clone().detach()
                frozen.bias.data = module.bias.data.clone().detach()
            if module.track_running_stats:
                frozen.running_mean.data = module.running_mean.data
                frozen.running_var.data = module.running_var.data
            return frozen
        for name, child in module.named_children():
            new_child = cls.convert_frozen_batchnorm(child)
            if new_child is not child:
                module.add_module(name, new_child)
        return module


class _FoldedFrozenBatchNorm2d(FrozenBatchNorm2d):
    """A :class:`FrozenBatchNorm2d` whose map the preceding convolution applies: the identity here, its
    buffers (and the state dict) unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _Conv2dFrozenBatchNorm(nn.Conv2d):
    """An ``nn.Conv2d`` followed by the frozen batch norm ``self._norm`` in one convolution:
    ``conv(x, w * scale, b * scale + shift)``, the weights scaled at each call from the norm's current buffers
    (gradients reach ``w`` and ``b`` as through the two layers)."""

    _norm: FrozenBatchNorm2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self._norm.scale_and_shift()
        bias = shift if self.bias is None else self.bias * scale + shift
        return self._conv_forward(x, self.weight * scale.view(-1, 1, 1, 1), bias)


def _conv_norm_pairs(module: nn.Module):
    """``(conv, norm)`` children of ``module`` that its forward runs back to back: consecutive entries of an
    ``nn.Sequential`` and ``conv<k>``/``bn<k>`` attribute pairs (torchvision's ResNet and MobileNetV2)."""
    children = dict(module.named_children())
    names = list(children)
    if isinstance(module, nn.Sequential):
        pairs = zip(names, names[1:], strict=False)
    else:
        pairs = [(name, "bn" + name[4:]) for name in names if name.startswith("conv") and name[4:].isdigit()]
    for conv, norm in pairs:
        if type(children.get(conv)) is nn.Conv2d and type(children.get(norm)) is FrozenBatchNorm2d:
            yield children[conv], children[norm]


def fold_frozen_batch_norms(module: nn.Module) -> int:
    """Folds every ``FrozenBatchNorm2d`` that directly follows an ``nn.Conv2d`` in ``module`` (see
    :func:`_conv_norm_pairs`) into that convolution, in place: one convolution instead of a convolution and
    an elementwise pass over its output (and its backward). Parameters, buffers and state-dict keys stay
    the same; outputs and gradients equal the unfolded ones up to float rounding. Returns the pairs folded."""
    folded = 0
    for parent in list(module.modules()):
        for conv, norm in list(_conv_norm_pairs(parent)):
            conv.__class__ = _Conv2dFrozenBatchNorm
            norm.__class__ = _FoldedFrozenBatchNorm2d
            object.__setattr__(
                conv, "_norm", norm
            )  # a reference, not a submodule: no second state-dict entry
            folded += 1
    return folded


def _group_norm_32(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels)


_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "BN": nn.BatchNorm2d,
    "SyncBN": nn.SyncBatchNorm,
    "FrozenBN": FrozenBatchNorm2d,
    "GN": _group_norm_32,
}


def get_norm(norm: str | Callable[[int], nn.Module] | None, out_channels: int) -> nn.Module | None:
    """The normalization layer named by ``norm`` for ``out_channels`` channels.

    Args:
        norm: ``"BN"``, ``"SyncBN"``, ``"FrozenBN"``, ``"GN"`` (32 groups), ``""``/``None`` (no layer), or a
            callable ``channels -> nn.Module``.
        out_channels: channels of the normalized feature map.
    """
    if norm is None or norm == "":
        return None
    if isinstance(norm, str):
        if norm not in _NORMS:
            raise ValueError(f"Unknown norm {norm!r}; expected one of {sorted(_NORMS)}, '' or a callable")
        norm = _NORMS[norm]
    return norm(out_channels)
