"""Swin Transformer backbone: torchvision's Swin (blocks, weights and parameter names ``features.<i>.*``
unchanged) with detectron2's ``SwinTransformer`` interface: constructor arguments, outputs ``"p<i>"`` for
``i`` in ``out_indices`` (stride ``2 ** (i + 2)``, ``embed_dim * 2 ** i`` channels), each through its own
LayerNorm ``norm<i>``, and ``frozen_stages``.

Swin-T/S/B (torchvision's ``swin_t/s/b``): ``embed_dim`` 96/96/128, ``depths`` (2, 2, 6, 2)/(2, 2, 18, 2)/
(2, 2, 18, 2), ``num_heads`` (3, 6, 12, 24)/(3, 6, 12, 24)/(4, 8, 16, 32), ``window_size`` 7.
"""

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.swin_transformer import SwinTransformer as TorchvisionSwinTransformer

from detrkit.modeling.backbone.backbone import Backbone

__all__ = ["SwinTransformer"]


class SwinTransformer(Backbone):
    """Swin Transformer returning ``{"p<i>": (N, embed_dim * 2**i, ceil(H / 2**(i+2)), ceil(W / 2**(i+2)))}``.

    torchvision's ``features`` holds the patch embedding at index 0, stage ``i``'s blocks at ``2i + 1`` and
    the patch merging after stage ``i`` at ``2i + 2``; stages after the last output are not built.

    Args:
        pretrain_img_size: accepted for detectron2 config compatibility; without absolute position
            embedding (torchvision's Swin has none) the pretraining size does not matter.
        patch_size: side of the square patches of the patch embedding (the input is zero-padded to a
            multiple of it, bottom/right, like detectron2).
        embed_dim, depths, num_heads, window_size, mlp_ratio: architecture (see the module docstring).
        drop_rate: dropout after the attention projection and in the MLPs.
        attn_drop_rate: dropout of the attention weights.
        drop_path_rate: stochastic depth, growing linearly from 0 over the blocks to this value.
        out_indices: stages to output.
        frozen_stages: -1 freezes nothing, 0 the patch embedding, ``k >= 2`` also stages ``0..k-2`` with their
            patch merging (detectron2's semantics).
    """

    def __init__(
        self,
        pretrain_img_size: int = 224,
        patch_size: int = 4,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.2,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        frozen_stages: int = -1,
    ):
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(
                f"depths {tuple(depths)} and num_heads {tuple(num_heads)} must have the same length"
            )
        if not out_indices or any(not 0 <= i < len(depths) for i in out_indices):
            raise ValueError(
                f"out_indices {tuple(out_indices)} must be a non-empty subset of 0..{len(depths) - 1}"
            )
        trunk = TorchvisionSwinTransformer(
            patch_size=[patch_size, patch_size],
            embed_dim=embed_dim,
            depths=list(depths),
            num_heads=list(num_heads),
            window_size=[window_size, window_size],
            mlp_ratio=mlp_ratio,
            dropout=drop_rate,
            attention_dropout=attn_drop_rate,
            stochastic_depth_prob=drop_path_rate,
        )
        self.pretrain_img_size = pretrain_img_size
        self.patch_size = patch_size
        self.depths = tuple(depths)
        self.out_indices = tuple(sorted(out_indices))
        self.num_stages = self.out_indices[-1] + 1
        self.features = trunk.features[: 2 * self.num_stages]
        for i in self.out_indices:
            self.add_module(f"norm{i}", nn.LayerNorm(embed_dim * 2**i))
        self._out_features = [f"p{i}" for i in self.out_indices]
        self._out_feature_channels = {f"p{i}": embed_dim * 2**i for i in self.out_indices}
        self._out_feature_strides = {f"p{i}": patch_size * 2**i for i in self.out_indices}
        self.frozen_stages = frozen_stages
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        frozen = [0] if self.frozen_stages >= 0 else []
        for stage in range(min(self.frozen_stages - 1, self.num_stages)):
            frozen += [2 * stage + 1, 2 * stage + 2]
        for index in frozen:
            if index < len(self.features):
                self.features[index].requires_grad_(False)

    @property
    def size_divisibility(self) -> int:
        return 32

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, 3, H, W)`` -> ``{"p<i>": (N, C_i, H_i, W_i)}`` (see the class docstring)."""
        pad_h, pad_w = (-x.shape[-2]) % self.patch_size, (-x.shape[-1]) % self.patch_size
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.features[0](x)  # (N, H / 4, W / 4, C), channels last
        outputs = {}
        for stage in range(self.num_stages):
            x = self.features[2 * stage + 1](x)
            if stage in self.out_indices:
                outputs[f"p{stage}"] = getattr(self, f"norm{stage}")(x).permute(0, 3, 1, 2).contiguous()
            if 2 * stage + 2 < len(self.features):
                x = self.features[2 * stage + 2](x)
        return outputs

    def convert_pretrained_state_dict(
        self, state_dict: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """torchvision's Swin state dict without the classifier (``head``), the final ``norm`` and the stages
        not built; output norms ``norm<i>`` it lacks keep their current values (fresh, as in detectron2)."""
        unused = ("head.", "norm.") + tuple(
            f"features.{i}." for i in range(len(self.features), 2 * len(self.depths))
        )
        converted = {key: value for key, value in state_dict.items() if not key.startswith(unused)}
        for i in self.out_indices:
            for key, value in getattr(self, f"norm{i}").state_dict(prefix=f"norm{i}.").items():
                converted.setdefault(key, value)
        return converted
