"""Focus-DETR's transformer: DINO's, with the foreground token selector in front of a selective encoder."""

import torch
from torch import nn

from detrkit.modeling.transformer import (
    CascadeTokenSelector,
    DINOTransformer,
    ForegroundScorePredictor,
    MultiLevelTokens,
    TopDownScoreModulation,
    encoder_reference_points,
    flatten_multi_level,
)

__all__ = ["FocusDETRTransformer"]


class FocusDETRTransformer(DINOTransformer):
    """:class:`DINOTransformer` whose encoder updates only foreground tokens (Focus-DETR sec. 3.2-3.4).

    Before the encoder, the two-stage projection of features + position embeddings (the query selector's
    ``enc_output`` / ``enc_output_norm``, shared with the proposals as in the official code) is scored level
    by level, coarse to fine (``token_scorer``); ``token_selector`` turns the scores into the tokens each
    encoder layer updates. The scores (``foreground_logits``, raw, ``(bs, S)``) are also returned for the
    foreground loss.

    Args:
        encoder: a :class:`~detrkit.modeling.transformer.SelectiveTokenEncoder`.
        decoder, num_feature_levels, two_stage_num_proposals, learnt_init_query, query_selector: see
            :class:`DINOTransformer`.
        token_scorer: None builds ``TopDownScoreModulation(ForegroundScorePredictor(C, C), L)``.
        token_selector: None builds ``CascadeTokenSelector()`` (keep ratio 0.5, cascade
            (1.0, 0.8, 0.6, 0.6, 0.4, 0.2)).

    Checkpoints: see :attr:`detrex_key_renames` (the ``alpha`` order is reversed by the converter).
    """

    #: detrex parameter-name prefixes (relative to the transformer) -> detrkit's.
    detrex_key_renames = {
        **DINOTransformer.detrex_key_renames,
        "enc_mask_predictor.layer1.": "token_scorer.predictor.embed.",
        "enc_mask_predictor.layer2.": "token_scorer.predictor.head.",
        "alpha": "token_scorer.alpha",
    }

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
    ):
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
        self.token_selector = CascadeTokenSelector() if token_selector is None else token_selector
        for p in self.token_scorer.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        self.foreground_logits: torch.Tensor | None = None

    def encode(
        self,
        multi_level_feats: list[torch.Tensor],
        multi_level_masks: list[torch.Tensor],
        multi_level_pos_embeds: list[torch.Tensor],
        **kwargs,
    ) -> tuple[torch.Tensor, MultiLevelTokens]:
        """Scores the tokens, selects them, runs the selective encoder; returns the ``(bs, S, C)`` memory and
        the flattened inputs, and keeps the ``(bs, S)`` foreground logits in ``foreground_logits`` (until
        :meth:`forward` returns them)."""
        tokens = flatten_multi_level(
            multi_level_feats, multi_level_masks, multi_level_pos_embeds, self.level_embeds
        )
        projected, _ = self.query_selector.gen_encoder_output_proposals(
            tokens.feat + tokens.pos, tokens.mask, tokens.spatial_shapes
        )
        self.foreground_logits = self.token_scorer(
            projected, tokens.mask, tokens.spatial_shapes, tokens.level_start_index
        )
        memory = self.encoder(
            query=tokens.feat,
            key=None,
            value=None,
            query_pos=tokens.pos,
            query_key_padding_mask=tokens.mask,
            token_selection=self.token_selector(self.foreground_logits, tokens.mask),
            reference_points=encoder_reference_points(tokens.spatial_shapes, tokens.valid_ratios),
            spatial_shapes=tokens.spatial_shapes,
            level_start_index=tokens.level_start_index,
            valid_ratios=tokens.valid_ratios,
            **kwargs,
        )
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
        """:meth:`DINOTransformer.forward`'s five outputs plus a dict for the foreground loss (the official
        code returns the logits as its sixth output): ``"foreground_logits"`` ``(bs, S)`` and
        ``"spatial_shapes"`` ``(L, 2)``."""
        outputs = super().forward(
            multi_level_feats, multi_level_masks, multi_level_pos_embeds, query_embed, attn_masks, **kwargs
        )
        foreground_logits, self.foreground_logits = self.foreground_logits, None
        spatial_shapes = torch.as_tensor(
            [f.shape[-2:] for f in multi_level_feats], device=foreground_logits.device
        )
        return (*outputs, {"foreground_logits": foreground_logits, "spatial_shapes": spatial_shapes})
