"""Focus-DETR's transformer: DINO's, with the foreground token selector in front of a selective encoder."""

from torch import nn

from detrkit.modeling.transformer import CascadeTokenSelector, DINOTransformer, SelectiveDINOTransformer

__all__ = ["FocusDETRTransformer"]


class FocusDETRTransformer(SelectiveDINOTransformer):
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

    score_name = "foreground_logits"

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
            encoder,
            decoder,
            num_feature_levels,
            two_stage_num_proposals,
            learnt_init_query,
            query_selector,
            token_scorer,
            CascadeTokenSelector() if token_selector is None else token_selector,
        )
