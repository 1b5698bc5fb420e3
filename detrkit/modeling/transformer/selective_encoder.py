"""An encoder that updates only selected tokens (Focus-DETR, Zheng et al., ICCV 2023; Salience DETR, Hou et
al., CVPR 2024): every layer gathers its tokens, runs "dual attention" on them and writes them back; all other
tokens keep their values, bit for bit.

Pieces:
- :class:`TokenSelection`: which tokens each layer updates (what a selection policy returns).
- :class:`CascadeTokenSelector`: Focus-DETR's policy (one global score, keep ratio, cascade of layer ratios).
  Other policies (Salience DETR's per-level budget) return the same :class:`TokenSelection`.
- :class:`SelectiveEncoderLayer`: top-k object tokens self-attend, then deformable attention of the selected
  tokens over the ORIGINAL (pre-encoder) feature map, then FFN.
- :class:`SelectiveTokenEncoder`: the layers, with the gather / write-back around each.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from detrkit.layers.attention import MultiheadAttention
from detrkit.layers.ffn import FFN
from detrkit.layers.multi_scale_deform_attn import MultiScaleDeformableAttention
from detrkit.layers.transformer import TransformerLayerSequence
from detrkit.modeling.transformer.query_selector import gather_tokens

__all__ = [
    "CascadeTokenSelector",
    "SelectiveEncoderLayer",
    "SelectiveTokenEncoder",
    "TokenSelection",
    "cascade_token_counts",
]


@dataclass
class TokenSelection:
    """The tokens each encoder layer updates.

    Attributes:
        layer_indices: one ``(bs, K_k)`` int64 tensor per layer: token indices (into the ``S`` flattened
            tokens), best first. ``K_k`` is a batch-wide size, so an image may list more tokens than it
            updates (the tail of a smaller image: padding or low scores); they are computed but not written.
        num_updated: ``(bs,)`` int64: image ``i`` writes back the first ``min(K_k, num_updated[i])`` tokens
            of layer ``k``'s list (the official codes' per-image ``focus_token_nums``).
        scores: ``(bs, S)`` foreground logits the selection used (padding filled with a low value); the
            encoder multiplies them with the class scores to pick the object tokens.
    """

    layer_indices: list[torch.Tensor]
    num_updated: torch.Tensor
    scores: torch.Tensor


def cascade_token_counts(
    valid_tokens: torch.Tensor, keep_ratio: float, layer_ratios: Sequence[float]
) -> tuple[torch.Tensor, list[int]]:
    """Focus-DETR's token budget (official code): image ``i`` keeps ``N_i = int(valid_i * keep_ratio) + 1``
    tokens; with ``K = max_i N_i``, layer ``k`` lists ``int(layer_ratios[k] * K)`` (float32 products).

    Args:
        valid_tokens: ``(bs,)`` number of unpadded tokens per image.

    Returns:
        ``N`` ``(bs,)`` int64 and the per-layer list sizes ``[K_0, ..., K_{n-1}]``.
    """
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep_ratio={keep_ratio} must be in (0, 1]")
    if any(not 0.0 < r <= 1.0 for r in layer_ratios):
        raise ValueError(f"layer_ratios={tuple(layer_ratios)} must all be in (0, 1]")
    num_kept = (valid_tokens * keep_ratio).int().long() + 1
    budget = int(num_kept.max())
    per_layer = (torch.tensor(layer_ratios, dtype=torch.float32) * budget).int().tolist()
    return num_kept, per_layer


class CascadeTokenSelector(nn.Module):
    """Focus-DETR's foreground token selection with the cascade of the encoder layers (paper sec. 3.2-3.3).

    Padding gets the lowest score of the batch; each layer ``k`` takes the top ``K_k`` tokens of the single
    flattened score (all levels together, no per-level budget), ``K_k`` from :func:`cascade_token_counts`;
    image ``i`` updates at most ``N_i`` of them.

    Args:
        keep_ratio: ``rho``, the kept fraction of the valid tokens. Default 0.5 (official code; the paper's
            Table 1 uses 0.3).
        layer_ratios: fraction of the kept tokens each encoder layer updates. Default
            ``(1.0, 0.8, 0.6, 0.6, 0.4, 0.2)``.
    """

    def __init__(
        self, keep_ratio: float = 0.5, layer_ratios: Sequence[float] = (1.0, 0.8, 0.6, 0.6, 0.4, 0.2)
    ):
        super().__init__()
        cascade_token_counts(torch.zeros(1), keep_ratio, layer_ratios)
        self.keep_ratio = keep_ratio
        self.layer_ratios = tuple(layer_ratios)

    def forward(
        self,
        scores: torch.Tensor,
        padding_mask: torch.Tensor,
        spatial_shapes: torch.Tensor | None = None,
        level_start_index: torch.Tensor | None = None,
    ) -> TokenSelection:
        """Selection from ``(bs, S)`` foreground logits and the ``(bs, S)`` padding mask (True at padding);
        one global ranking, so the level layout (accepted like every selection policy's) is not needed."""
        num_tokens = scores.shape[1]
        num_kept, per_layer = cascade_token_counts(
            (~padding_mask).sum(-1), self.keep_ratio, self.layer_ratios
        )
        if per_layer[0] > num_tokens:
            raise ValueError(f"CascadeTokenSelector: {per_layer[0]} tokens to keep but only {num_tokens}")
        scores = scores.masked_fill(padding_mask, scores.min())
        indices = [torch.topk(scores, k, dim=1)[1] for k in per_layer]
        return TokenSelection(layer_indices=indices, num_updated=num_kept, scores=scores)


class SelectiveEncoderLayer(nn.Module):
    """One encoder layer on ``K`` selected tokens ("dual attention", Focus-DETR sec. 3.4):

    1. the ``num_object_tokens`` tokens with the highest object score self-attend (+pos), residual, LN
       (``object_norm``), and are scattered back into the ``K`` tokens;
    2. ``x = LN(x + MSDeformAttn(x + pos, refs, value))`` where ``value`` is the original feature map;
    3. ``x = LN(x + FFN(x))``.

    Parameter names follow detrex's Focus-DETR layer: ``attentions.0`` (multi-head), ``attentions.1``
    (deformable), ``ffns.0``, ``norms.0``, ``norms.1`` and ``object_norm`` (detrex ``norm2``).

    Args:
        embed_dim: ``C``. Default 256.
        num_heads: heads of both attentions. Default 8.
        feedforward_dim: FFN hidden width. Default 1024.
        attn_dropout: dropout in both attentions. Default 0.1.
        ffn_dropout: FFN dropout. Default 0.1.
        num_feature_levels: ``L``. Default 4.
        num_points: deformable sampling points per head and level. Default 4.
        num_object_tokens: tokens in the self-attention (fewer when fewer are selected). Default 300.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_heads: int = 8,
        feedforward_dim: int = 1024,
        attn_dropout: float = 0.1,
        ffn_dropout: float = 0.1,
        num_feature_levels: int = 4,
        num_points: int = 4,
        num_object_tokens: int = 300,
    ):
        super().__init__()
        if num_object_tokens < 1:
            raise ValueError(f"num_object_tokens={num_object_tokens} must be >= 1")
        self.embed_dim = embed_dim
        self.num_object_tokens = num_object_tokens
        self.attentions = nn.ModuleList(
            [
                MultiheadAttention(embed_dim, num_heads, attn_drop=attn_dropout, batch_first=True),
                MultiScaleDeformableAttention(
                    embed_dim,
                    num_heads,
                    num_levels=num_feature_levels,
                    num_points=num_points,
                    dropout=attn_dropout,
                    batch_first=True,
                ),
            ]
        )
        self.object_norm = nn.LayerNorm(embed_dim)
        self.ffns = nn.ModuleList(
            [FFN(embed_dim, feedforward_dim, embed_dim, num_fcs=2, ffn_drop=ffn_dropout)]
        )
        self.norms = nn.ModuleList([nn.LayerNorm(embed_dim), nn.LayerNorm(embed_dim)])

    def forward(
        self,
        query: torch.Tensor,
        query_pos: torch.Tensor,
        value: torch.Tensor,
        value_padding_mask: torch.Tensor | None,
        reference_points: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
        object_scores: torch.Tensor,
    ) -> torch.Tensor:
        """Updates ``K`` selected tokens.

        Args:
            query: ``(bs, K, C)`` selected tokens; ``query_pos`` ``(bs, K, C)`` their position embeddings.
            value: ``(bs, S, C)`` the original (pre-encoder) tokens of all levels.
            value_padding_mask: ``(bs, S)`` bool, True at padding.
            reference_points: ``(bs, K, L, 2)`` of the selected tokens.
            spatial_shapes: ``(L, 2)``; level_start_index: ``(L,)``.
            object_scores: ``(bs, K)`` score that picks the self-attending tokens.

        Returns:
            ``(bs, K, C)``.
        """
        num_objects = min(self.num_object_tokens, query.shape[1])
        index = torch.topk(object_scores, num_objects, dim=1)[1]
        objects = gather_tokens(query, index)
        objects_pos = gather_tokens(query_pos, index)
        objects = self.object_norm(self.attentions[0](objects, query_pos=objects_pos, key_pos=objects_pos))
        query = query.scatter(1, index[..., None].expand(-1, -1, query.shape[-1]), objects)
        query = self.attentions[1](
            query,
            value=value,
            query_pos=query_pos,
            key_padding_mask=value_padding_mask,
            reference_points=reference_points,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
        )
        query = self.norms[0](query)
        return self.norms[1](self.ffns[0](query))


class SelectiveTokenEncoder(TransformerLayerSequence):
    """``num_layers`` :class:`SelectiveEncoderLayer` on the tokens a :class:`TokenSelection` names.

    Layer ``k`` gathers the tokens of ``layer_indices[k]`` (features from the previous layer, position
    embeddings, reference points and foreground scores); their object score is
    ``max_c class_heads[k](x)_c * foreground`` (the multi-category score, Focus-DETR eq. 6); the layer's
    output is written back for the first ``min(K_k, num_updated[i])`` tokens of image ``i``. Every other
    token leaves the encoder unchanged. The deformable value is always the encoder input.

    ``class_heads`` (``num_layers`` modules ``(..., C) -> (..., num_classes)``, usually one shared module,
    the two-stage encoder class head) is assigned by the detector.

    Args:
        embed_dim, num_heads, feedforward_dim, attn_dropout, ffn_dropout, num_feature_levels,
            num_object_tokens: see :class:`SelectiveEncoderLayer`.
        num_layers: layers. Default 6.
        post_norm: one more LayerNorm on the whole output. Default False.
        use_checkpoint: recompute each layer in the backward pass (activation checkpointing) to save memory
            while training (detrex's encoder keyword). Default False.
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
        num_object_tokens: int = 300,
        use_checkpoint: bool = False,
    ):
        super().__init__(
            SelectiveEncoderLayer(
                embed_dim=embed_dim,
                num_heads=num_heads,
                feedforward_dim=feedforward_dim,
                attn_dropout=attn_dropout,
                ffn_dropout=ffn_dropout,
                num_feature_levels=num_feature_levels,
                num_object_tokens=num_object_tokens,
            ),
            num_layers,
        )
        self.embed_dim = embed_dim
        self.post_norm_layer = nn.LayerNorm(embed_dim) if post_norm else None
        self.use_checkpoint = use_checkpoint
        self.class_heads: nn.ModuleList | None = None

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
        *,
        token_selection: TokenSelection,
        reference_points: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
        **kwargs,
    ) -> torch.Tensor:
        """Encodes the selected tokens (detrex's encoder interface plus the selection).

        Args:
            query: ``(bs, S, C)`` flattened features (also the deformable value of every layer).
            key, value, key_pos, attn_masks, key_padding_mask: unused (detrex's interface).
            query_pos: ``(bs, S, C)`` position + level embedding.
            query_key_padding_mask: ``(bs, S)`` bool, True at padding.
            token_selection: which tokens each layer updates (one ``layer_indices`` entry per layer).
            reference_points: ``(bs, S, L, 2)``; spatial_shapes: ``(L, 2)``; level_start_index: ``(L,)``.
            **kwargs: ignored (e.g. ``valid_ratios``).

        Returns:
            ``(bs, S, C)`` memory.
        """
        if self.class_heads is None or len(self.class_heads) != self.num_layers:
            raise RuntimeError(
                f"{type(self).__name__}.class_heads must hold {self.num_layers} class heads (the detector "
                "assigns its two-stage encoder class head)"
            )
        if len(token_selection.layer_indices) != self.num_layers:
            raise ValueError(
                f"token_selection has {len(token_selection.layer_indices)} layer index lists for "
                f"{self.num_layers} encoder layers"
            )
        batch, _, channels = query.shape
        original = query
        flat_refs = reference_points.flatten(2)
        output = query
        for layer, class_head, indices in zip(
            self.layers, self.class_heads, token_selection.layer_indices, strict=True
        ):
            selected = gather_tokens(output, indices)
            object_scores = class_head(selected).max(-1)[0] * torch.gather(token_selection.scores, 1, indices)
            layer_args = (
                selected,
                gather_tokens(query_pos, indices),
                original,
                query_key_padding_mask,
                gather_tokens(flat_refs, indices).view(batch, -1, *reference_points.shape[2:]),
                spatial_shapes,
                level_start_index,
                object_scores,
            )
            if self.use_checkpoint and self.training:
                updated = checkpoint(layer, *layer_args, use_reentrant=False)
            else:
                updated = layer(*layer_args)
            writes = (
                torch.arange(indices.shape[1], device=indices.device) < token_selection.num_updated[:, None]
            )
            updated = torch.where(writes[..., None], updated, selected)
            output = output.scatter(1, indices[..., None].expand(-1, -1, channels), updated)
        if self.post_norm_layer is not None:
            output = self.post_norm_layer(output)
        return output
