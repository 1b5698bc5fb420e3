"""Parameter and FLOP counting of detectron2-style detectors, in the papers' convention (fvcore: one
multiply-add is one flop).

fvcore traces the model; a detrkit model takes a list of dicts and returns Instances, so
:class:`FlattenedDetector` presents it to the tracer as ``image tensor -> (boxes, scores, classes)``. The
compiled deformable attention op gets its own counter (:func:`ms_deform_attn_flop_jit`).
"""

from collections import Counter

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn

__all__ = [
    "FlattenedDetector",
    "flop_count",
    "ms_deform_attn_flop_jit",
    "trainable_parameter_count",
]

# Per sampled point and channel: 4 bilinear corner multiply-adds and 1 for the attention weight, as the
# grid_sample reference path computes it.
MS_DEFORM_ATTN_FLOPS_PER_SAMPLE_CHANNEL = 5


def ms_deform_attn_flop_jit(inputs: list, outputs: list) -> int:
    """fvcore handle of ``detrkit::ms_deform_attn_forward``: 5 * bs * Lq * heads * L * P * dim.

    ``inputs`` are the traced op's arguments: value ``(bs, S, heads, dim)``, spatial shapes, level starts,
    sampling locations ``(bs, Lq, heads, L, P, 2)``, attention weights, im2col step.
    """
    dim = get_shape(inputs[0])[3]
    batch, queries, heads, levels, points, _ = get_shape(inputs[3])
    return MS_DEFORM_ATTN_FLOPS_PER_SAMPLE_CHANNEL * batch * queries * heads * levels * points * dim


class FlattenedDetector(nn.Module):
    """``image (3, H, W) -> (boxes (K, 4), scores (K,), classes (K,))`` around a detectron2-style model in
    eval mode (input ``[{"image", "height", "width"}]``, output ``[{"instances": ...}]``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        height, width = image.shape[-2:]
        instances = self.model([{"image": image, "height": height, "width": width}])[0]["instances"]
        return instances.pred_boxes.tensor, instances.scores, instances.pred_classes


def trainable_parameter_count(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad`` (shared parameters once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def flop_count(model: nn.Module, image: torch.Tensor) -> tuple[float, Counter]:
    """GFLOPs of one eval forward of ``model`` on ``image`` ``(3, H, W)``, and GFLOPs per operator type.

    The model is put in eval mode; fvcore's handles count convolutions, matmuls, linear layers, einsum,
    batch/group/layer norms and upsampling; :func:`ms_deform_attn_flop_jit` counts deformable attention.
    Element-wise operators are not counted (fvcore's and the papers' convention).
    """
    model.eval()
    with torch.no_grad():
        analysis = FlopCountAnalysis(FlattenedDetector(model), (image,))
        analysis.set_op_handle("detrkit::ms_deform_attn_forward", ms_deform_attn_flop_jit)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_operator = Counter({op: flops / 1e9 for op, flops in analysis.by_operator().items()})
        return analysis.total() / 1e9, by_operator
