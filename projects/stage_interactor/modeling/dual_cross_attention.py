"""Dual cross-attention (DCA, StageInteractor sec. 4 for DETR-like detectors): every decoder layer runs its
deformable cross-attention twice, each with its own sampling offsets, attention weights, projections and
post-norm; the second attends with the queries the first updated. No official code exists for it: this is the
paper's description, and the project README lists the choices."""

from detrkit.modeling.transformer import DeformableTransformerDecoder, DINOTransformerDecoder

__all__ = ["DCADeformableTransformerDecoder", "DCADINOTransformerDecoder", "DualCrossAttentionMixin"]


class DualCrossAttentionMixin:
    """Turns any :class:`~detrkit.modeling.transformer.DeformableTransformerDecoder` subclass into its dual
    cross-attention version: layers ``self_attn, norm, cross_attn, norm, cross_attn, norm, ffn, norm``
    (parameters ``attentions.1`` and ``attentions.2`` for the two cross-attentions, ``norms.0..3``). Use it
    first in the bases; the constructor is the decoder's."""

    num_cross_attentions = 2


class DCADINOTransformerDecoder(DualCrossAttentionMixin, DINOTransformerDecoder):
    """DINO's decoder with dual cross-attention."""


class DCADeformableTransformerDecoder(DualCrossAttentionMixin, DeformableTransformerDecoder):
    """Deformable-DETR's / H-Deformable-DETR's decoder with dual cross-attention."""
