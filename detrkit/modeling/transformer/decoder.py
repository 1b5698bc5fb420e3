"""Deformable transformer decoders with iterative box refinement and look-forward-twice.

``DeformableTransformerDecoder`` is H-Deformable-DETR's decoder (the query positional embedding comes from
outside and stays fixed); ``DINOTransformerDecoder`` recomputes it in every layer from the current reference
box and normalises the layer outputs. Parameter names follow detrex: ``layers.{n}.attentions.0`` (self-
attention), ``layers.{n}.attentions.1`` (deformable cross-attention; with ``num_cross_attentions=2`` also
``.2``), ``layers.{n}.ffns.0``, ``layers.{n}.norms.{0,1,2}`` (``{0..3}``); DINO adds ``ref_point_head`` and
``norm``; a ``between_layers`` hook's parameters are under ``between_layers.``.

The box heads are not the decoder's own: the detector assigns ``decoder.bbox_embed`` (and
``decoder.class_embed``, read by the query selector) after building them, as in detrex.
"""

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from detrkit.layers.attention import MultiheadAttention
from detrkit.layers.ffn import FFN
from detrkit.layers.logits import inverse_sigmoid
from detrkit.layers.mlp import MLP
from detrkit.layers.multi_scale_deform_attn import MultiScaleDeformableAttention
from detrkit.layers.position_embedding import get_sine_pos_embed
from detrkit.layers.transformer import BaseTransformerLayer, TransformerLayerSequence
from detrkit.modeling.transformer.outputs import DecoderOutput, NextLayerInputs, compose_query_orders

__all__ = [
    "DINOTransformerDecoder",
    "DeformableTransformerDecoder",
    "HDeformableDetrTransformerDecoder",
    "deformable_decoder_layer",
]


def deformable_decoder_layer(
    embed_dim: int,
    num_heads: int,
    feedforward_dim: int,
    attn_dropout: float,
    ffn_dropout: float,
    num_feature_levels: int,
    num_cross_attentions: int = 1,
) -> BaseTransformerLayer:
    """One post-norm decoder layer: self-attention, ``num_cross_attentions`` deformable cross-attentions (each
    with its own offsets, weights, projections and norm; the second attends with the queries the first
    updated), FFN. Parameters ``attentions.0`` (self), ``attentions.1..n`` (cross), ``ffns.0``,
    ``norms.0..n+1``.

    Raises:
        ValueError: ``num_cross_attentions < 1``.
    """
    if num_cross_attentions < 1:
        raise ValueError(
            f"num_cross_attentions={num_cross_attentions}: a decoder layer needs at least 1 cross-attention"
        )
    cross_attentions = [
        MultiScaleDeformableAttention(
            embed_dim=embed_dim,
            num_heads=num_heads,
            dropout=attn_dropout,
            batch_first=True,
            num_levels=num_feature_levels,
        )
        for _ in range(num_cross_attentions)
    ]
    return BaseTransformerLayer(
        attn=[
            MultiheadAttention(
                embed_dim=embed_dim, num_heads=num_heads, attn_drop=attn_dropout, batch_first=True
            ),
            *cross_attentions,
        ],
        ffn=FFN(
            embed_dim=embed_dim,
            feedforward_dim=feedforward_dim,
            output_dim=embed_dim,
            ffn_drop=ffn_dropout,
        ),
        norm=nn.LayerNorm(embed_dim),
        operation_order=("self_attn", "norm")
        + ("cross_attn", "norm") * num_cross_attentions
        + ("ffn", "norm"),
    )


class DeformableTransformerDecoder(TransformerLayerSequence):
    """``num_layers`` post-norm layers of self-attention + deformable cross-attention + FFN over queries with
    4-d reference boxes, refined after every layer by ``bbox_embed[i]`` (Deformable DETR eq. in App. A.4):

        b_i = sigmoid(bbox_embed_i(q_i) + sigmoid^-1(b_{i-1})),   b_{i-1} detached before the next layer.

    With ``look_forward_twice`` (DINO sec. 3.5) the references returned for the loss are the undetached
    ``b_i``, so layer ``i + 1``'s box loss also trains layer ``i``'s box head; otherwise the detached ones.

    After each layer and its box refinement, the ``between_layers`` hook (if any) is called as
    ``between_layers(layer_idx=l, num_layers=n, class_embed=self.class_embed, output=q_l,
    layer_output=h_l, query_pos=p, reference_points=b_l.detach(), new_reference_points=b_l)`` (shapes
    ``(bs, nq, C)`` and ``(bs, nq, 4)``; ``h_l`` is what the layer contributes to the outputs, already
    recorded) and returns the :class:`~detrkit.modeling.transformer.NextLayerInputs` of layer ``l + 1``
    (Rank-DETR's query ranking sorts them). Its permutations compose into the output's ``query_ids``.

    Args:
        embed_dim: model width ``C``. Default 256.
        num_heads: attention heads. Default 8.
        feedforward_dim: FFN hidden width. Default 1024.
        attn_dropout: dropout in both attentions. Default 0.1.
        ffn_dropout: dropout in the FFN. Default 0.1.
        num_layers: layers. Default 6.
        return_intermediate: return every layer's output and references (for the auxiliary losses).
            Default True.
        num_feature_levels: feature levels ``L``. Default 4.
        look_forward_twice: see above. Default True.
        use_checkpoint: recompute each layer in the backward pass to save memory while training.
            Default False.
        num_cross_attentions: deformable cross-attentions per layer (:func:`deformable_decoder_layer`; 2:
            StageInteractor's dual cross-attention). Default 1.
        between_layers: the hook above; None: the identity. Default None.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_heads: int = 8,
        feedforward_dim: int = 1024,
        attn_dropout: float = 0.1,
        ffn_dropout: float = 0.1,
        num_layers: int = 6,
        return_intermediate: bool = True,
        num_feature_levels: int = 4,
        look_forward_twice: bool = True,
        use_checkpoint: bool = False,
        num_cross_attentions: int = 1,
        between_layers: nn.Module | None = None,
    ):
        super().__init__(
            transformer_layers=deformable_decoder_layer(
                embed_dim,
                num_heads,
                feedforward_dim,
                attn_dropout,
                ffn_dropout,
                num_feature_levels,
                num_cross_attentions,
            ),
            num_layers=num_layers,
        )
        self.embed_dim = embed_dim
        self.return_intermediate = return_intermediate
        self.look_forward_twice = look_forward_twice
        self.use_checkpoint = use_checkpoint
        self.num_cross_attentions = num_cross_attentions
        self.between_layers = between_layers
        self.bbox_embed = None
        self.class_embed = None

    def layer_query_pos(
        self, reference_points_input: torch.Tensor, query_pos: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The positional embedding each layer's queries get; here the given one, unchanged.

        Args:
            reference_points_input: ``(bs, nq, L, 4)`` reference boxes scaled by the valid ratios.
            query_pos: ``(bs, nq, C)`` or None, as passed to ``forward``.
        """
        return query_pos

    def layer_output(self, output: torch.Tensor) -> torch.Tensor:
        """What a layer contributes to the intermediate outputs (``(bs, nq, C)``); here its output as is."""
        return output

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None,
        value: torch.Tensor,
        query_pos: torch.Tensor | None = None,
        key_pos: torch.Tensor | None = None,
        attn_masks: list[torch.Tensor | None] | None = None,
        query_key_padding_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        reference_points: torch.Tensor | None = None,
        valid_ratios: torch.Tensor | None = None,
        **kwargs,
    ) -> DecoderOutput:
        """Decodes ``nq`` queries against the encoder memory.

        Args:
            query: ``(bs, nq, C)`` content queries.
            key: unused by the deformable cross-attention (detrex passes the memory).
            value: ``(bs, S, C)`` encoder memory.
            query_pos: ``(bs, nq, C)`` positional embedding (ignored by DINO's decoder, which makes its own).
            attn_masks: ``[self_attn_mask, cross_attn_mask]``; the self-attention mask is ``(nq, nq)`` bool,
                True where attention is blocked (denoising groups, hybrid branches); the cross-attention mask
                applies to every cross-attention of a layer.
            key_padding_mask: ``(bs, S)`` bool, True at padded memory tokens.
            reference_points: ``(bs, nq, 4)`` boxes ``(cx, cy, w, h)`` in [0, 1] (``(nq, 4)`` is broadcast).
            valid_ratios: ``(bs, L, 2)``.
            **kwargs: ``spatial_shapes``, ``level_start_index`` for the deformable attention.

        Returns:
            A :class:`DecoderOutput`: with ``return_intermediate`` ``(num_layers, bs, nq, C)`` states and
            ``(num_layers, bs, nq, 4)`` references, otherwise the last layer's ``(bs, nq, C)`` and
            ``(bs, nq, 4)``; the query order of every layer when ``between_layers`` reorders them.
        """
        if reference_points is None or reference_points.shape[-1] != 4:
            shape = None if reference_points is None else tuple(reference_points.shape)
            raise ValueError(f"{type(self).__name__} needs 4-d reference boxes, got reference_points {shape}")
        if attn_masks is not None and not isinstance(attn_masks, torch.Tensor):
            if len(attn_masks) != 2:
                raise ValueError(
                    f"attn_masks must be [self_attn_mask, cross_attn_mask], got {len(attn_masks)}"
                )
            attn_masks = [attn_masks[0], *[attn_masks[1]] * self.num_cross_attentions]
        output = query
        if reference_points.dim() == 2:
            reference_points = reference_points[None].expand(output.shape[0], -1, -1)
        intermediate, intermediate_references, orders = [], [], []
        for layer_idx, layer in enumerate(self.layers):
            reference_points_input = reference_points[:, :, None] * torch.cat([valid_ratios] * 2, -1)[:, None]
            layer_kwargs = dict(
                query_pos=self.layer_query_pos(reference_points_input, query_pos),
                key_pos=key_pos,
                attn_masks=attn_masks,
                query_key_padding_mask=query_key_padding_mask,
                key_padding_mask=key_padding_mask,
                reference_points=reference_points_input,
                **kwargs,
            )
            if self.use_checkpoint and self.training:
                output = checkpoint(layer, output, key, value, use_reentrant=False, **layer_kwargs)
            else:
                output = layer(output, key, value, **layer_kwargs)

            new_reference_points = reference_points
            if self.bbox_embed is not None:
                new_reference_points = (
                    self.bbox_embed[layer_idx](output) + inverse_sigmoid(reference_points)
                ).sigmoid()
                reference_points = new_reference_points.detach()
            layer_output = self.layer_output(output)
            next_inputs = NextLayerInputs(output, query_pos, reference_points, new_reference_points)
            if self.between_layers is not None:
                next_inputs = self.between_layers(
                    layer_idx=layer_idx,
                    num_layers=self.num_layers,
                    class_embed=self.class_embed,
                    output=output,
                    layer_output=layer_output,
                    query_pos=query_pos,
                    reference_points=reference_points,
                    new_reference_points=new_reference_points,
                )
            output, query_pos, reference_points, new_reference_points, order = next_inputs
            if layer_idx + 1 < self.num_layers:
                orders.append(order)
            if self.return_intermediate:
                intermediate.append(layer_output)
                intermediate_references.append(
                    new_reference_points if self.look_forward_twice else reference_points
                )
        query_ids = compose_query_orders(orders)
        if self.return_intermediate:
            return DecoderOutput(torch.stack(intermediate), torch.stack(intermediate_references), query_ids)
        return DecoderOutput(output, reference_points, query_ids)


class DINOTransformerDecoder(DeformableTransformerDecoder):
    """DINO's decoder: each layer's query position is ``ref_point_head(PE(b))``, an MLP
    (``2C -> C -> C``) of the sine embedding of the current reference box (DAB-DETR's anchor queries), and
    every intermediate output passes through ``norm`` (a shared LayerNorm). Arguments as in
    :class:`DeformableTransformerDecoder`.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_heads: int = 8,
        feedforward_dim: int = 1024,
        attn_dropout: float = 0.1,
        ffn_dropout: float = 0.1,
        num_layers: int = 6,
        return_intermediate: bool = True,
        num_feature_levels: int = 4,
        look_forward_twice: bool = True,
        use_checkpoint: bool = False,
        num_cross_attentions: int = 1,
        between_layers: nn.Module | None = None,
    ):
        super().__init__(
            embed_dim=embed_dim,
            num_heads=num_heads,
            feedforward_dim=feedforward_dim,
            attn_dropout=attn_dropout,
            ffn_dropout=ffn_dropout,
            num_layers=num_layers,
            return_intermediate=return_intermediate,
            num_feature_levels=num_feature_levels,
            look_forward_twice=look_forward_twice,
            use_checkpoint=use_checkpoint,
            num_cross_attentions=num_cross_attentions,
            between_layers=between_layers,
        )
        self.ref_point_head = MLP(2 * embed_dim, embed_dim, embed_dim, 2)
        self.norm = nn.LayerNorm(embed_dim)

    def layer_query_pos(
        self, reference_points_input: torch.Tensor, query_pos: torch.Tensor | None
    ) -> torch.Tensor:
        """``ref_point_head(PE(b))`` of the level-0 scaled reference box (``C/2`` sine features per
        coordinate, ``(y, x, w, h)`` order), ``(bs, nq, C)``."""
        sine = get_sine_pos_embed(reference_points_input[:, :, 0, :], num_pos_feats=self.embed_dim // 2)
        return self.ref_point_head(sine)

    def layer_output(self, output: torch.Tensor) -> torch.Tensor:
        """The layer output through the shared final LayerNorm."""
        return self.norm(output)


HDeformableDetrTransformerDecoder = DeformableTransformerDecoder
