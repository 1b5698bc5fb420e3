"""``FrozenBatchNorm2d`` and ``get_norm`` with detectron2's semantics (``detectron2.layers.batch_norm``).

A frozen batch norm is the affine map ``y = (x - running_mean) / sqrt(running_var + eps) * weight + bias``
with all four statistics held in buffers: it never updates and has no trainable parameters, which is how
detection backbones keep their ImageNet statistics with small per-GPU batches.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FrozenBatchNorm2d", "get_norm"]


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
