"""The deformable transformer encoder (Deformable DETR, Zhu et al. 2021) used by DINO and H-Deformable-DETR.

Parameter names follow detrex's ``DINOTransformerEncoder``: ``layers.{n}.attentions.0`` (deformable
self-attention), ``layers.{n}.ffns.0``, ``layers.{n}.norms.{0,1}``, optional ``post_norm_layer``.
"""

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from detrkit.layers.ffn import FFN
from detrkit.layers.multi_scale_deform_attn import MultiScaleDeformableAttention
from detrkit.layers.transformer import BaseTransformerLayer, TransformerLayerSequence

__all__ = ["DINOTransformerEncoder", "DeformableTransformerEncoder", "HDeformableDetrTransformerEncoder"]


class DeformableTransformerEncoder(TransformerLayerSequence):
    """``num_layers`` post-norm layers of multi-scale deformable self-attention + FFN:

        x = LN(x + MSDeformAttn(x + pos, p_ref, x)),   x = LN(x + FFN(x))

    Args:
        embed_dim: model width ``C``. Default 256.
        num_heads: attention heads. Default 8.
        feedforward_dim: FFN hidden width. Default 1024.
        attn_dropout: dropout in the attention. Default 0.1.
        ffn_dropout: dropout in the FFN. Default 0.1.
        num_layers: layers. Default 6.
        post_norm: one more LayerNorm after the last layer. Default False.
        num_feature_levels: feature levels ``L``. Default 4.
        use_checkpoint: recompute each layer in the backward pass (activation checkpointing) to save
            memory while training. Default False.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_heads: int = 8,
        feedforward_dim: int = 1024,
        attn_dropout: float = 0.1,
        ffn_dropout: float = 0.1,
        num_layers: int = 6,
        post_norm: bool = False,
        num_feature_levels: int = 4,
        use_checkpoint: bool = False,
    ):
        super().__init__(
            transformer_layers=BaseTransformerLayer(
                attn=MultiScaleDeformableAttention(
                    embed_dim=embed_dim,
                    num_heads=num_heads,
                    dropout=attn_dropout,
                    batch_first=True,
                    num_levels=num_feature_levels,
                ),
                ffn=FFN(
                    embed_dim=embed_dim,
                    feedforward_dim=feedforward_dim,
                    output_dim=embed_dim,
                    num_fcs=2,
                    ffn_drop=ffn_dropout,
                ),
                norm=nn.LayerNorm(embed_dim),
                operation_order=("self_attn", "norm", "ffn", "norm"),
            ),
            num_layers=num_layers,
        )
        self.embed_dim = embed_dim
        self.pre_norm = self.layers[0].pre_norm
        self.post_norm_layer = nn.LayerNorm(embed_dim) if post_norm else None
        self.use_checkpoint = use_checkpoint

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None,
        value: torch.Tensor | None,
        query_pos: torch.Tensor | None = None,
        key_pos: torch.Tensor | None = None,
        attn_masks: list[torch.Tensor | None] | None = None,
        query_key_padding_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Encodes the flattened multi-scale tokens.

        Args:
            query: ``(bs, S, C)`` flattened features.
            key, value: unused (self-attention), kept for detrex's interface.
            query_pos: ``(bs, S, C)`` positional + level embedding.
            query_key_padding_mask: ``(bs, S)`` bool, True at padding.
            **kwargs: ``reference_points`` ``(bs, S, L, 2)``, ``spatial_shapes`` ``(L, 2)``,
                ``level_start_index`` ``(L,)`` (and anything else the attention accepts).

        Returns:
            ``(bs, S, C)`` memory.
        """
        for layer in self.layers:
            layer_kwargs = dict(
                query_pos=query_pos,
                attn_masks=attn_masks,
                query_key_padding_mask=query_key_padding_mask,
                key_padding_mask=key_padding_mask,
                **kwargs,
            )
            if self.use_checkpoint and self.training:
                query = checkpoint(layer, query, key, value, use_reentrant=False, **layer_kwargs)
            else:
                query = layer(query, key, value, **layer_kwargs)
        if self.post_norm_layer is not None:
            query = self.post_norm_layer(query)
        return query


DINOTransformerEncoder = DeformableTransformerEncoder
HDeformableDetrTransformerEncoder = DeformableTransformerEncoder
