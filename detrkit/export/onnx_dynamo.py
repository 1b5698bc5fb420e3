"""ONNX translations of the detrkit ops for the ``torch.export``-based exporter
(``torch.onnx.export(..., dynamo=True, custom_translation_table=CUSTOM_TRANSLATION_TABLE)``), written with
onnxscript's ONNX operators (opset 18) and traced by the exporter with the graph's static shapes.

- ``detrkit::ms_deform_attn_forward``: the ``F.grid_sample`` reference
  (:func:`~detrkit.layers.multi_scale_deformable_attn_pytorch`) in ONNX operators: each level's tokens are
  sliced from ``value`` at ``level_start_index`` and reshaped to its ``spatial_shapes`` (read from the input
  tensors at run time), sampled with ``GridSample`` (bilinear, zero padding, ``align_corners=0``) and summed
  with the attention weights. The level and point counts come from the static shapes of ``sampling_loc``.
- ``detrkit::batched_nms``: ONNX ``NonMaxSuppression`` with the group shift of
  :mod:`detrkit.export.onnx_symbolics` (same results, same limits).
"""

import sys

import torch
from onnxscript import opset18 as op

__all__ = ["CUSTOM_TRANSLATION_TABLE"]


def _ms_deform_attn_forward(value, spatial_shapes, level_start_index, sampling_loc, attn_weight, im2col_step):
    """``(bs, S, heads, dim)`` value -> ``(bs, Lq, heads * dim)``; shapes as in the op."""
    levels, points = sampling_loc.shape[3], sampling_loc.shape[4]
    batch = op.Shape(value, start=0, end=1)
    heads = op.Shape(value, start=2, end=3)
    dim = op.Shape(value, start=3, end=4)
    queries = op.Shape(sampling_loc, start=1, end=2)
    batch_heads = op.Mul(batch, heads)
    # (bs, heads, dim, S): each level's tokens are a slice of the last axis.
    value_t = op.Transpose(value, perm=[0, 2, 3, 1])
    # (bs, heads, Lq, L, P, 2) in grid_sample's [-1, 1] coordinates.
    grids = op.Transpose(
        op.Sub(op.Mul(sampling_loc, op.CastLike(2.0, sampling_loc)), op.CastLike(1.0, sampling_loc)),
        perm=[0, 2, 1, 3, 4, 5],
    )
    sampled = []
    for level in range(levels):
        index = op.Constant(value_ints=[level])
        height_width = op.Reshape(op.Gather(spatial_shapes, index, axis=0), op.Constant(value_ints=[2]))
        start = op.Gather(level_start_index, index, axis=0)
        end = op.Add(start, op.ReduceProd(height_width, keepdims=1))
        value_l = op.Reshape(
            op.Slice(value_t, start, end, op.Constant(value_ints=[3])),
            op.Concat(batch_heads, dim, height_width, axis=0),
        )
        grid_l = op.Reshape(
            op.Gather(grids, op.Constant(value_int=level), axis=3),
            op.Concat(batch_heads, queries, op.Constant(value_ints=[points, 2]), axis=0),
        )
        # (bs * heads, dim, Lq, P)
        sampled.append(op.GridSample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=0))
    # (bs * heads, dim, Lq, L * P) against the weights (bs, Lq, heads, L, P) -> (bs * heads, 1, Lq, L * P)
    samples = op.Concat(*sampled, axis=3)
    weights = op.Reshape(
        op.Transpose(attn_weight, perm=[0, 2, 1, 3, 4]),
        op.Concat(
            batch_heads,
            op.Constant(value_ints=[1]),
            queries,
            op.Constant(value_ints=[levels * points]),
            axis=0,
        ),
    )
    output = op.ReduceSum(op.Mul(samples, weights), op.Constant(value_ints=[3]), keepdims=0)
    output = op.Reshape(output, op.Concat(batch, op.Mul(heads, dim), queries, axis=0))
    return op.Transpose(output, perm=[0, 2, 1])


def _batched_nms(boxes, scores, groups, iou_threshold: float):
    """``(N, 4)`` boxes, ``(N,)`` scores and groups -> ``(K,)`` int64 kept indices, by decreasing score."""
    boxes = op.Cast(boxes, to=1)  # FLOAT
    scores = op.Cast(scores, to=1)
    span = op.Add(
        op.Sub(op.ReduceMax(boxes, keepdims=0), op.ReduceMin(boxes, keepdims=0)), op.Constant(value_float=1.0)
    )
    offsets = op.Mul(op.Cast(groups, to=1), span)
    shifted = op.Add(boxes, op.Unsqueeze(offsets, op.Constant(value_ints=[1])))
    batch_axis = op.Constant(value_ints=[0])
    selected = op.NonMaxSuppression(
        op.Unsqueeze(shifted, batch_axis),
        op.Unsqueeze(scores, op.Constant(value_ints=[0, 1])),
        op.Constant(value_ints=[sys.maxsize]),
        op.Constant(value_floats=[iou_threshold]),
    )
    return op.Gather(selected, op.Constant(value_int=2), axis=1)


#: the ``custom_translation_table`` of ``torch.onnx.export(..., dynamo=True)`` for the detrkit ops.
CUSTOM_TRANSLATION_TABLE = {
    torch.ops.detrkit.ms_deform_attn_forward.default: _ms_deform_attn_forward,
    torch.ops.detrkit.batched_nms.default: _batched_nms,
}
