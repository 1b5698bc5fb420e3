"""Layers shared by all detectors, with detectron2's and detrex's names: compiled ops with their
pure-PyTorch references, normalisation, convolution and transformer blocks, position embeddings."""

from detrkit.layers.attention import MultiheadAttention
from detrkit.layers.batch_norm import FrozenBatchNorm2d, fold_frozen_batch_norms, get_norm
from detrkit.layers.conv import ConvNormAct
from detrkit.layers.ffn import FFN
from detrkit.layers.logits import inverse_sigmoid
from detrkit.layers.mlp import MLP
from detrkit.layers.multi_scale_deform_attn import (
    MultiScaleDeformableAttention,
    multi_scale_deformable_attn,
    multi_scale_deformable_attn_pytorch,
)
from detrkit.layers.nms import batched_nms, batched_nms_pytorch
from detrkit.layers.position_embedding import (
    PositionEmbeddingLearned,
    PositionEmbeddingSine,
    get_sine_pos_embed,
)
from detrkit.layers.shape_spec import ShapeSpec
from detrkit.layers.transformer import BaseTransformerLayer, TransformerLayerSequence

__all__ = [
    "FFN",
    "MLP",
    "BaseTransformerLayer",
    "ConvNormAct",
    "FrozenBatchNorm2d",
    "fold_frozen_batch_norms",
    "MultiScaleDeformableAttention",
    "MultiheadAttention",
    "PositionEmbeddingLearned",
    "PositionEmbeddingSine",
    "ShapeSpec",
    "TransformerLayerSequence",
    "batched_nms",
    "batched_nms_pytorch",
    "get_norm",
    "get_sine_pos_embed",
    "inverse_sigmoid",
    "multi_scale_deformable_attn",
    "multi_scale_deformable_attn_pytorch",
]
