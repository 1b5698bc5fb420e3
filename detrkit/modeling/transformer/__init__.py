"""Deformable transformer of the two-stage DETRs (DINO, H-Deformable-DETR) and its slots: encoder, query
selector, decoder, contrastive denoising, hybrid-matching attention mask."""

from detrkit.modeling.transformer.decoder import (
    DeformableTransformerDecoder,
    DINOTransformerDecoder,
    HDeformableDetrTransformerDecoder,
)
from detrkit.modeling.transformer.denoising import ContrastiveDenoising, denoising_attn_mask
from detrkit.modeling.transformer.dino_transformer import DINOTransformer
from detrkit.modeling.transformer.encoder import (
    DeformableTransformerEncoder,
    DINOTransformerEncoder,
    HDeformableDetrTransformerEncoder,
)
from detrkit.modeling.transformer.h_deformable_transformer import HDeformableDetrTransformer
from detrkit.modeling.transformer.hybrid import hybrid_attn_mask
from detrkit.modeling.transformer.multi_level import (
    MultiLevelTokens,
    encoder_reference_points,
    flatten_multi_level,
    get_valid_ratio,
)
from detrkit.modeling.transformer.outputs import (
    DecoderOutput,
    NextLayerInputs,
    TokenScores,
    TransformerOutput,
    compose_query_orders,
)
from detrkit.modeling.transformer.proposals import grid_proposals
from detrkit.modeling.transformer.query_selector import (
    DeformableQuerySelector,
    QuerySelection,
    TopKProposalSelector,
    TwoStageQuerySelector,
    gather_tokens,
)
from detrkit.modeling.transformer.selective_dino_transformer import SelectiveDINOTransformer
from detrkit.modeling.transformer.selective_encoder import (
    CascadeTokenSelector,
    SelectiveEncoderLayer,
    SelectiveTokenEncoder,
    TokenSelection,
    cascade_token_counts,
)
from detrkit.modeling.transformer.token_scoring import ForegroundScorePredictor, TopDownScoreModulation
from detrkit.modeling.transformer.two_stage_transformer import TwoStageDeformableTransformer

__all__ = [
    "CascadeTokenSelector",
    "ForegroundScorePredictor",
    "SelectiveDINOTransformer",
    "SelectiveEncoderLayer",
    "SelectiveTokenEncoder",
    "TokenScores",
    "TokenSelection",
    "TopDownScoreModulation",
    "cascade_token_counts",
    "compose_query_orders",
    "ContrastiveDenoising",
    "DecoderOutput",
    "DINOTransformer",
    "DINOTransformerDecoder",
    "DINOTransformerEncoder",
    "DeformableQuerySelector",
    "DeformableTransformerDecoder",
    "DeformableTransformerEncoder",
    "HDeformableDetrTransformer",
    "HDeformableDetrTransformerDecoder",
    "HDeformableDetrTransformerEncoder",
    "MultiLevelTokens",
    "NextLayerInputs",
    "QuerySelection",
    "TopKProposalSelector",
    "TransformerOutput",
    "TwoStageDeformableTransformer",
    "TwoStageQuerySelector",
    "denoising_attn_mask",
    "encoder_reference_points",
    "flatten_multi_level",
    "gather_tokens",
    "get_valid_ratio",
    "grid_proposals",
    "hybrid_attn_mask",
]
