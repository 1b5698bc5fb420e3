"""The two-stage deformable transformer shared by DINO and H-Deformable-DETR, assembled from slots:
encoder, query selector, decoder.

``encode`` flattens the levels and runs the encoder; ``select_queries`` lets the query selector pick the
decoder's initial queries with the detector's encoder heads (``decoder.class_embed[-1]``,
``decoder.bbox_embed[-1]``, assigned by the detector); subclasses wire these into detrex's ``forward``.
"""

import torch
from torch import nn

from detrkit.layers.multi_scale_deform_attn import MultiScaleDeformableAttention
from detrkit.modeling.transformer.multi_level import (
    MultiLevelTokens,
    encoder_reference_points,
    flatten_multi_level,
)
from detrkit.modeling.transformer.query_selector import QuerySelection

__all__ = ["TwoStageDeformableTransformer"]


class TwoStageDeformableTransformer(nn.Module):
    """Encoder + query selector + decoder with a learned level embedding ``level_embeds`` ``(L, C)``.

    Args:
        encoder: a deformable encoder (``forward(query, key, value, query_pos, query_key_padding_mask,
            spatial_shapes, reference_points, level_start_index, valid_ratios)``, attribute ``embed_dim``).
        decoder: a decoder with ``num_layers`` and, once the detector has set them, ``class_embed`` and
            ``bbox_embed`` (``num_layers + 1`` heads each, the last for the encoder proposals).
        query_selector: the two-stage selection slot (see ``query_selector.py``).
        num_feature_levels: feature levels ``L``.
    """

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, query_selector: nn.Module, num_feature_levels: int
    ):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.query_selector = query_selector
        self.num_feature_levels = num_feature_levels
        self.embed_dim = encoder.embed_dim
        self.level_embeds = nn.Parameter(torch.empty(num_feature_levels, self.embed_dim))
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier-uniform for every matrix, Deformable DETR's init for the deformable attentions, N(0, 1)
        level embeddings (detrex's order)."""
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for module in self.modules():
            if isinstance(module, MultiScaleDeformableAttention):
                module.init_weights()
        nn.init.normal_(self.level_embeds)

    def encode(
        self,
        multi_level_feats: list[torch.Tensor],
        multi_level_masks: list[torch.Tensor],
        multi_level_pos_embeds: list[torch.Tensor],
        **kwargs,
    ) -> tuple[torch.Tensor, MultiLevelTokens]:
        """Runs the encoder on ``L`` levels of ``(bs, C, H_l, W_l)`` features, ``(bs, H_l, W_l)`` padding
        masks and ``(bs, C, H_l, W_l)`` position embeddings; returns the ``(bs, S, C)`` memory and the
        flattened inputs."""
        tokens = flatten_multi_level(
            multi_level_feats, multi_level_masks, multi_level_pos_embeds, self.level_embeds
        )
        memory = self.encoder(
            query=tokens.feat,
            key=None,
            value=None,
            query_pos=tokens.pos,
            query_key_padding_mask=tokens.mask,
            spatial_shapes=tokens.spatial_shapes,
            reference_points=encoder_reference_points(
                tokens.spatial_shapes, tokens.valid_ratios, tokens.feat.shape[1]
            ),
            level_start_index=tokens.level_start_index,
            valid_ratios=tokens.valid_ratios,
            **kwargs,
        )
        return memory, tokens

    def select_queries(
        self,
        memory: torch.Tensor,
        tokens: MultiLevelTokens,
        num_queries: int,
        content_queries: torch.Tensor | None = None,
    ) -> QuerySelection:
        """The query selector's pick of ``num_queries`` queries, scored by the encoder-proposal heads."""
        class_heads = getattr(self.decoder, "class_embed", None)
        box_heads = getattr(self.decoder, "bbox_embed", None)
        if class_heads is None or box_heads is None:
            raise RuntimeError(
                f"{type(self).__name__}: decoder.class_embed and decoder.bbox_embed are not set; the "
                "detector assigns its heads to the decoder (num_layers + 1 of each, the last for the "
                "encoder proposals)"
            )
        return self.query_selector(
            memory,
            tokens.mask,
            tokens.spatial_shapes,
            class_heads[self.decoder.num_layers],
            box_heads[self.decoder.num_layers],
            num_queries,
            content_queries=content_queries,
        )
