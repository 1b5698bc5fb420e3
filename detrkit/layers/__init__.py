"""Layers shared by all detectors: compiled ops with their pure-PyTorch references."""

from detrkit.layers.multi_scale_deform_attn import (
    MultiScaleDeformableAttention,
    multi_scale_deformable_attn,
    multi_scale_deformable_attn_pytorch,
)
from detrkit.layers.nms import batched_nms, batched_nms_pytorch

__all__ = [
    "MultiScaleDeformableAttention",
    "batched_nms",
    "batched_nms_pytorch",
    "multi_scale_deformable_attn",
    "multi_scale_deformable_attn_pytorch",
]
