"""DINO's transformer with an encoder that updates only selected tokens (the base of Focus-DETR and Salience
DETR): score the tokens, select them per encoder layer, encode, refine the memory."""

import torch
from torch import nn

from detrkit.modeling.transformer.dino_transformer import DINOTransformer
from detrkit.modeling.transformer.multi_level import (
    MultiLevelTokens,
    encoder_reference_points,
    flatten_multi_level,
)
from detrkit.modeling.transformer.outputs import TokenScores, TransformerOutput
from detrkit.modeling.transformer.selective_encoder import TokenSelection
from detrkit.modeling.transformer.token_scoring import ForegroundScorePredictor, TopDownScoreModulation

__all__ = ["SelectiveDINOTransformer"]


class SelectiveDINOTransformer(DINOTransformer):
    """:class:`DINOTransformer` whose encoder (a
    :class:`~detrkit.modeling.transformer.SelectiveTokenEncoder`) updates only selected tokens.

    Before the encoder, the two-stage projection of features + position embeddings (the query selector's
    ``enc_output`` / ``enc_output_norm``, shared with the proposals) is scored level by level, coarse to fine
    (``token_scorer``); ``token_selector(scores, padding_mask, spatial_shapes, level_start_index)`` turns the
    ``(bs, S)`` logits into the :class:`TokenSelection` of each encoder layer; :meth:`refine_memory` may
    change the encoder's output. The raw logits are returned as the output's ``extras``
    (:class:`TokenScores`); the detector gives them to the criterion under :attr:`score_name`.

    Args:
        encoder: a :class:`~detrkit.modeling.transformer.SelectiveTokenEncoder`.
        decoder, num_feature_levels, two_stage_num_proposals, learnt_init_query, query_selector: see
            :class:`DINOTransformer`.
        token_scorer: None builds ``TopDownScoreModulation(ForegroundScorePredictor(C, C), L)``; its matrices
            are Xavier-initialised, as the official codes' transformers do.
        token_selector: the selection policy (e.g. ``CascadeTokenSelector``), required.
    """

    #: the criterion's name for the ``(bs, S)`` token logits.
    score_name = "token_logits"

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
        if token_selector is None:
            raise ValueError(f"{type(self).__name__} needs a token_selector (the selection policy)")
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
        for p in self.token_scorer.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        self.token_selector = token_selector

    def refine_memory(
        self, memory: torch.Tensor, tokens: MultiLevelTokens, selection: TokenSelection
    ) -> torch.Tensor:
        """The ``(bs, S, C)`` memory after the encoder; here unchanged (Salience DETR adds its background
        embedding and token fusion)."""
        return memory

    def encode_selected(
        self,
        multi_level_feats: list[torch.Tensor],
        multi_level_masks: list[torch.Tensor],
        multi_level_pos_embeds: list[torch.Tensor],
        **kwargs,
    ) -> tuple[torch.Tensor, MultiLevelTokens, torch.Tensor]:
        """Scores and selects the tokens, runs the selective encoder and :meth:`refine_memory`; returns the
        ``(bs, S, C)`` memory, the flattened inputs and the ``(bs, S)`` token logits."""
        tokens = flatten_multi_level(
            multi_level_feats, multi_level_masks, multi_level_pos_embeds, self.level_embeds
        )
        projected, _ = self.query_selector.gen_encoder_output_proposals(
            tokens.feat + tokens.pos, tokens.mask, tokens.spatial_shapes
        )
        logits = self.token_scorer(projected, tokens.mask, tokens.spatial_shapes, tokens.level_start_index)
        selection = self.token_selector(logits, tokens.mask, tokens.spatial_shapes, tokens.level_start_index)
        memory = self.encoder(
            query=tokens.feat,
            key=None,
            value=None,
            query_pos=tokens.pos,
            query_key_padding_mask=tokens.mask,
            token_selection=selection,
            reference_points=encoder_reference_points(
                tokens.spatial_shapes, tokens.valid_ratios, tokens.feat.shape[1]
            ),
            spatial_shapes=tokens.spatial_shapes,
            level_start_index=tokens.level_start_index,
            valid_ratios=tokens.valid_ratios,
            **kwargs,
        )
        return self.refine_memory(memory, tokens, selection), tokens, logits

    def forward(
        self,
        multi_level_feats: list[torch.Tensor],
        multi_level_masks: list[torch.Tensor],
        multi_level_pos_embeds: list[torch.Tensor],
        query_embed: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
        attn_masks: list[torch.Tensor | None] | None = None,
        **kwargs,
    ) -> TransformerOutput[TokenScores]:
        """:meth:`DINOTransformer.forward` with the selective encoder; the output's ``extras`` are the
        :class:`TokenScores` (``(bs, S)`` raw logits, ``(L, 2)`` spatial shapes) for the token loss."""
        memory, tokens, logits = self.encode_selected(
            multi_level_feats, multi_level_masks, multi_level_pos_embeds, **kwargs
        )
        output = self.decode(memory, tokens, query_embed, attn_masks, **kwargs)
        output.extras = TokenScores(logits, tokens.spatial_shapes)
        return output
