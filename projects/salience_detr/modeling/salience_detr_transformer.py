"""Salience DETR's transformer: DINO's, with salience scoring and hierarchical filtering in front of a
selective encoder, a background embedding and cross-level token fusion after it, and redundancy removal in
the query selection."""

import torch
from torch import nn

from detrkit.modeling.transformer import (
    DINOTransformer,
    ForegroundScorePredictor,
    MultiLevelTokens,
    TopDownScoreModulation,
    encoder_reference_points,
    flatten_multi_level,
)
from projects.salience_detr.modeling.background_embedding import BackgroundEmbedding
from projects.salience_detr.modeling.query_selector import RedundancyRemovalQuerySelector
from projects.salience_detr.modeling.token_filter import HierarchicalTokenSelector

__all__ = ["SalienceDETRTransformer"]


class SalienceDETRTransformer(DINOTransformer):
    """:class:`DINOTransformer` with Salience DETR's encoder side (sec. 3.2-3.5).

    Before the encoder, the two-stage projection of features + position embeddings (the query selector's
    ``enc_output`` / ``enc_output_norm``) is scored coarse to fine (``token_scorer``, eq. 4);
    ``token_selector`` turns the salience logits into the tokens each encoder layer updates. After the
    encoder, ``background_embedding`` is added to the tokens the last layer did not list, and
    ``token_fusion`` (if any) fuses the levels. The raw salience logits are returned for ``loss_salience``.

    Args:
        encoder: a :class:`~detrkit.modeling.transformer.SelectiveTokenEncoder`.
        decoder, num_feature_levels, two_stage_num_proposals, learnt_init_query: see
            :class:`DINOTransformer`.
        query_selector: None builds ``RedundancyRemovalQuerySelector(C, two_stage_num_proposals)``.
        token_scorer: None builds ``TopDownScoreModulation(ForegroundScorePredictor(C, C), L)``.
        token_selector: None builds ``HierarchicalTokenSelector()``; called as
            ``(scores, padding_mask, spatial_shapes, level_start_index)``.
        background_embedding: None builds ``BackgroundEmbedding(C)`` (absolute).
        token_fusion: e.g. :class:`~projects.salience_detr.modeling.CrossLevelTokenFusion`; None: no fusion
            (the paper's faster variant).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        num_feature_levels: int = 4,
        two_stage_num_proposals: int = 900,
        learnt_init_query: bool = True,
        query_selector: nn.Module | None = None,
        token_scorer: nn.Module | None = None,
        token_selector: nn.Module | None = None,
        background_embedding: nn.Module | None = None,
        token_fusion: nn.Module | None = None,
    ):
        if query_selector is None:
            query_selector = RedundancyRemovalQuerySelector(encoder.embed_dim, two_stage_num_proposals)
        super().__init__(
            encoder, decoder, num_feature_levels, two_stage_num_proposals, learnt_init_query, query_selector
        )
        self.token_scorer = (
            TopDownScoreModulation(
                ForegroundScorePredictor(self.embed_dim, self.embed_dim), num_feature_levels
            )
            if token_scorer is None
            else token_scorer
        )
        for module in self.token_scorer.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        self.token_selector = HierarchicalTokenSelector() if token_selector is None else token_selector
        self.background_embedding = (
            BackgroundEmbedding(self.embed_dim) if background_embedding is None else background_embedding
        )
        self.token_fusion = token_fusion
        self.salience_logits: torch.Tensor | None = None

    def encode(
        self,
        multi_level_feats: list[torch.Tensor],
        multi_level_masks: list[torch.Tensor],
        multi_level_pos_embeds: list[torch.Tensor],
        **kwargs,
    ) -> tuple[torch.Tensor, MultiLevelTokens]:
        """Scores and filters the tokens, runs the selective encoder, adds the background embedding and
        fuses the levels; returns the ``(bs, S, C)`` memory and the flattened inputs, and keeps the
        ``(bs, S)`` salience logits in ``salience_logits`` (until :meth:`forward` returns them)."""
        tokens = flatten_multi_level(
            multi_level_feats, multi_level_masks, multi_level_pos_embeds, self.level_embeds
        )
        projected, _ = self.query_selector.gen_encoder_output_proposals(
            tokens.feat + tokens.pos, tokens.mask, tokens.spatial_shapes
        )
        self.salience_logits = self.token_scorer(
            projected, tokens.mask, tokens.spatial_shapes, tokens.level_start_index
        )
        selection = self.token_selector(
            self.salience_logits, tokens.mask, tokens.spatial_shapes, tokens.level_start_index
        )
        memory = self.encoder(
            query=tokens.feat,
            key=None,
            value=None,
            query_pos=tokens.pos,
            query_key_padding_mask=tokens.mask,
            token_selection=selection,
            reference_points=encoder_reference_points(tokens.spatial_shapes, tokens.valid_ratios),
            spatial_shapes=tokens.spatial_shapes,
            level_start_index=tokens.level_start_index,
            valid_ratios=tokens.valid_ratios,
            **kwargs,
        )
        memory = self.background_embedding(
            memory, tokens.mask, tokens.spatial_shapes, selection.layer_indices[-1]
        )
        if self.token_fusion is not None:
            memory = self.token_fusion(memory, tokens.spatial_shapes)
        return memory, tokens

    def forward(
        self,
        multi_level_feats: list[torch.Tensor],
        multi_level_masks: list[torch.Tensor],
        multi_level_pos_embeds: list[torch.Tensor],
        query_embed: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
        attn_masks: list[torch.Tensor | None] | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, ...]:
        """:meth:`DINOTransformer.forward`'s five outputs plus a dict for the salience loss:
        ``"salience_logits"`` ``(bs, S)`` and ``"spatial_shapes"`` ``(L, 2)``."""
        outputs = super().forward(
            multi_level_feats, multi_level_masks, multi_level_pos_embeds, query_embed, attn_masks, **kwargs
        )
        salience_logits, self.salience_logits = self.salience_logits, None
        spatial_shapes = torch.as_tensor(
            [f.shape[-2:] for f in multi_level_feats], device=salience_logits.device
        )
        return (*outputs, {"salience_logits": salience_logits, "spatial_shapes": spatial_shapes})
