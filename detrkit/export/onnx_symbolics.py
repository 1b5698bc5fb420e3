"""ONNX translations, for the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``), of the
operators of detrkit models that it cannot translate itself.

- ``detrkit::batched_nms`` becomes ONNX ``NonMaxSuppression`` (one class, one batch): each group's boxes are
  shifted by ``group * (max - min + 1)`` along both axes so that boxes of different groups never overlap
  (the coordinate trick of ``torchvision.ops.batched_nms``), then the kept indices are read from the third
  column of ``selected_indices``. onnxruntime returns them by decreasing score, equal scores by index, as
  :func:`batched_nms` does.
- ``aten::sort`` (also the ``stable=True`` overload, which the exporter rejects) becomes ONNX ``TopK`` over
  the whole axis; ``TopK`` puts equal values in index order, i.e. it sorts stably (Rank-DETR's query ranking).
- ``detrkit::ms_deform_attn_forward`` needs no translation: during an export
  :func:`~detrkit.layers.multi_scale_deformable_attn` runs its ``F.grid_sample`` reference instead.

Differences from the compiled kernel: the IoU is computed and compared with the threshold in float32 (the
kernel compares in float64), and the shifted coordinates lose precision when ``groups * (max - min + 1)``
is large compared with the box size; neither matters for integer grid boxes (Salience DETR's redundancy
removal), the only user of NMS inside a detrkit model.
"""

import sys

import torch
from torch.onnx import register_custom_op_symbolic, symbolic_helper

__all__ = ["DEFAULT_OPSET", "register_onnx_symbolics"]

#: the opset the symbolics are registered for and the exporter uses (GridSample needs 16).
DEFAULT_OPSET = 17

_FLOAT = 1  # onnx.TensorProto.FLOAT


def _batched_nms(g, boxes, scores, groups, iou_threshold):
    """``(N, 4)`` boxes, ``(N,)`` scores and groups, float threshold -> ``(K,)`` int64 kept indices."""
    boxes = g.op("Cast", boxes, to_i=_FLOAT)
    scores = g.op("Cast", scores, to_i=_FLOAT)
    high = g.op("ReduceMax", boxes, keepdims_i=0)
    low = g.op("ReduceMin", boxes, keepdims_i=0)
    one = g.op("Constant", value_t=torch.tensor(1.0))
    span = g.op("Add", g.op("Sub", high, low), one)
    offsets = g.op("Mul", g.op("Cast", groups, to_i=_FLOAT), span)
    shifted = g.op("Add", boxes, g.op("Unsqueeze", offsets, g.op("Constant", value_t=torch.tensor([1]))))
    batch_axis = g.op("Constant", value_t=torch.tensor([0]))
    selected = g.op(
        "NonMaxSuppression",
        g.op("Unsqueeze", shifted, batch_axis),
        g.op("Unsqueeze", g.op("Unsqueeze", scores, batch_axis), batch_axis),
        g.op("Constant", value_t=torch.tensor([sys.maxsize], dtype=torch.int64)),
        g.op(
            "Constant",
            value_t=torch.tensor([symbolic_helper._maybe_get_const(iou_threshold, "f")], dtype=torch.float),
        ),
    )
    return g.op("Gather", selected, g.op("Constant", value_t=torch.tensor(2)), axis_i=1)


def _sort(g, tensor, *args):
    """``aten::sort(self, dim, descending)`` and ``aten::sort.stable(self, stable, dim, descending)`` ->
    (values, indices), each the shape of ``tensor``."""
    dim, descending = (symbolic_helper._maybe_get_const(arg, "i") for arg in args[-2:])
    return symbolic_helper._sort_helper(g, tensor, dim, descending=bool(descending))


def register_onnx_symbolics(opset: int = DEFAULT_OPSET) -> None:
    """Registers the translations above for ``opset`` (idempotent)."""
    register_custom_op_symbolic("detrkit::batched_nms", _batched_nms, opset)
    register_custom_op_symbolic("aten::sort", _sort, opset)
