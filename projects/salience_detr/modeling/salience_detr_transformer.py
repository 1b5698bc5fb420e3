"""Salience DETR's transformer: DINO's, with salience scoring and hierarchical filtering in front of a
selective encoder, a background embedding and cross-level token fusion after it, and redundancy removal in
the query selection."""

import torch
from torch import nn

from detrkit.modeling.transformer import MultiLevelTokens, SelectiveDINOTransformer, TokenSelection
from detrkit_projects.salience_detr.modeling.background_embedding import BackgroundEmbedding
from detrkit_projects.salience_detr.modeling.query_selector import RedundancyRemovalQuerySelector
from detrkit_projects.salience_detr.modeling.token_filter import HierarchicalTokenSelector

__all__ = ["SalienceDETRTransformer"]


class SalienceDETRTransformer(SelectiveDINOTransformer):
    """:class:`~detrkit.modeling.transformer.SelectiveDINOTransformer` with Salience DETR's encoder side
    (sec. 3.2-3.5).

    Before the encoder, the two-stage projection of features + position embeddings (the query selector's
    ``enc_output`` / ``enc_output_norm``) is scored coarse to fine (``token_scorer``, eq. 4);
    ``token_selector`` turns the salience logits into the tokens each encoder layer updates. After the
    encoder, ``background_embedding`` is added to the tokens the last layer did not list, and
    ``token_fusion`` (if any) fuses the levels. The raw salience logits are returned for ``loss_salience``.

    Args:
        encoder: a :class:`~detrkit.modeling.transformer.SelectiveTokenEncoder`.
        decoder, num_feature_levels, two_stage_num_proposals, learnt_init_query: see
            :class:`~detrkit.modeling.transformer.DINOTransformer`.
        query_selector: None builds ``RedundancyRemovalQuerySelector(C, two_stage_num_proposals)``.
        token_scorer: None builds ``TopDownScoreModulation(ForegroundScorePredictor(C, C), L)``; its linear
            layers start Xavier-uniform with zero biases (the official code's init).
        token_selector: None builds ``HierarchicalTokenSelector()``; called as
            ``(scores, padding_mask, spatial_shapes, level_start_index)``.
        background_embedding: None builds ``BackgroundEmbedding(C)`` (absolute).
        token_fusion: e.g. :class:`~detrkit_projects.salience_detr.modeling.CrossLevelTokenFusion`; None: no
            fusion (the paper's faster variant).
    """

    score_name = "salience_logits"

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
            encoder,
            decoder,
            num_feature_levels,
            two_stage_num_proposals,
            learnt_init_query,
            query_selector,
            token_scorer,
            HierarchicalTokenSelector() if token_selector is None else token_selector,
        )
        for module in self.token_scorer.modules():
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
        self.background_embedding = (
            BackgroundEmbedding(self.embed_dim) if background_embedding is None else background_embedding
        )
        self.token_fusion = token_fusion

    def refine_memory(
        self, memory: torch.Tensor, tokens: MultiLevelTokens, selection: TokenSelection
    ) -> torch.Tensor:
        """The background embedding on the valid tokens the last encoder layer did not list, then the
        cross-level token fusion (if any); ``(bs, S, C)``."""
        memory = self.background_embedding(
            memory, tokens.mask, tokens.spatial_shapes, selection.layer_indices[-1]
        )
        if self.token_fusion is not None:
            memory = self.token_fusion(memory, tokens.spatial_shapes)
        return memory
