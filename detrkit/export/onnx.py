"""ONNX export of a detector (:class:`ImageToDetections` traced at one fixed image size) and its check
against PyTorch with onnxruntime on CPU."""

import copy
import os
import warnings

import torch
from torch import nn

from detrkit.export.onnx_symbolics import DEFAULT_OPSET, register_onnx_symbolics
from detrkit.export.wrapper import ImageToDetections

__all__ = [
    "DYNAMO_MIN_OPSET",
    "EXPORTERS",
    "OUTPUT_NAMES",
    "compare_with_onnxruntime",
    "export_detector_onnx",
]

OUTPUT_NAMES = ("boxes", "scores", "labels")


EXPORTERS = ("torchscript", "dynamo")

#: the lowest opset of the torch.export-based exporter and of the translations in :mod:`.onnx_dynamo`.
DYNAMO_MIN_OPSET = 18


def export_detector_onnx(
    detector: nn.Module,
    path: str | os.PathLike,
    image: torch.Tensor,
    opset: int | None = None,
    exporter: str = "torchscript",
) -> None:
    """Writes ``detector`` as an ONNX graph with input ``image`` ``(1, 3, H, W)`` (float, [0, 255]) and
    outputs :data:`OUTPUT_NAMES` (see :class:`ImageToDetections`), traced on ``image``.

    ``exporter="torchscript"`` (default; opset :data:`DEFAULT_OPSET` unless given, at least 16) is
    ``torch.onnx.export(..., dynamo=False)``: it records the tensor operations run on ``image``, so the sizes
    derived from ``H, W`` (feature maps, tokens per level, the number of tokens kept by Focus-DETR's and
    Salience DETR's selectors) become constants of the graph, while the data-dependent parts stay operators
    (TopK, the compiled NMS as ``NonMaxSuppression``, the postprocess's empty-box filter). The graph therefore
    accepts only ``(1, 3, H, W)`` inputs. The tracer's warnings about values turned into constants are
    silenced: that is the intent (:func:`compare_with_onnxruntime` checks it).

    ``exporter="dynamo"`` (opset :data:`DYNAMO_MIN_OPSET` unless given, at least that) is
    ``torch.onnx.export(..., dynamo=True)``: ``torch.export`` captures the model with the compiled ops in its
    graph, and :data:`~detrkit.export.onnx_dynamo.CUSTOM_TRANSLATION_TABLE` translates them. The model must
    be capturable by ``torch.export`` (no Python reads of tensor values whose result sets a shape).
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    wrapper = ImageToDetections(detector).eval()
    names = dict(input_names=["image"], output_names=list(OUTPUT_NAMES))
    if exporter == "dynamo":
        opset = DYNAMO_MIN_OPSET if opset is None else opset
        if opset < DYNAMO_MIN_OPSET:
            raise ValueError(
                f"opset {opset} < {DYNAMO_MIN_OPSET}: the dynamo exporter needs {DYNAMO_MIN_OPSET}"
            )
        from detrkit.export.onnx_dynamo import CUSTOM_TRANSLATION_TABLE  # needs onnxscript

        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                (image,),
                str(path),
                dynamo=True,
                opset_version=opset,
                custom_translation_table=CUSTOM_TRANSLATION_TABLE,
                **names,
            )
        return
    opset = DEFAULT_OPSET if opset is None else opset
    if opset < 16:
        raise ValueError(f"opset {opset} < 16: the deformable attention needs ONNX GridSample (opset 16)")
    register_onnx_symbolics(opset)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(wrapper, (image,), str(path), dynamo=False, opset_version=opset, **names)


def _max_abs_diffs(
    boxes: torch.Tensor, scores: torch.Tensor, reference_boxes: torch.Tensor, reference_scores: torch.Tensor
) -> tuple[float, float] | None:
    """Largest absolute differences of boxes and of scores, None when the detection counts differ."""
    if len(boxes) != len(reference_boxes):
        return None
    return (
        float((boxes - reference_boxes).abs().max()),
        float((scores.to(reference_scores.dtype) - reference_scores).abs().max()),
    )


def compare_with_onnxruntime(
    detector: nn.Module, path: str | os.PathLike, image: torch.Tensor, float64_reference: bool = False
) -> dict[str, float | int | bool | None]:
    """Runs the ONNX graph at ``path`` with onnxruntime (CPU) and ``detector`` in PyTorch on ``image``
    ``(1, 3, H, W)``; returns ``detections`` (the count), ``max_abs_diff_boxes`` (pixels),
    ``max_abs_diff_scores`` and ``labels_equal``.

    With ``float64_reference``, also ``float64_max_abs_diff_boxes`` / ``_scores``: how far a float64 copy
    of ``detector`` is from the float32 one on ``image`` (None if their counts differ), the rounding
    sensitivity of the model. Where top-k selections meet near-equal scores (random weights, Focus-DETR's
    token selection, Rank-DETR's query sorting), float32 rounding alone can change a selection; a difference
    from onnxruntime no larger than this one is rounding, not a translation error.

    Raises:
        ValueError: if onnxruntime and PyTorch return different numbers of detections.
    """
    import onnxruntime  # only the check needs it

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_boxes, onnx_scores, onnx_labels = session.run(list(OUTPUT_NAMES), {"image": image.numpy()})
    with torch.no_grad():
        boxes, scores, labels = ImageToDetections(detector)(image)
    diffs = _max_abs_diffs(torch.from_numpy(onnx_boxes), torch.from_numpy(onnx_scores), boxes, scores)
    if diffs is None:
        raise ValueError(f"onnxruntime returned {len(onnx_boxes)} detections, PyTorch {len(boxes)}")
    result = {
        "detections": len(boxes),
        "max_abs_diff_boxes": diffs[0],
        "max_abs_diff_scores": diffs[1],
        "labels_equal": bool(torch.equal(torch.from_numpy(onnx_labels), labels)),
    }
    if float64_reference:
        with torch.no_grad():
            boxes64, scores64, _ = ImageToDetections(copy.deepcopy(detector).double())(image.double())
        diffs64 = _max_abs_diffs(boxes, scores, boxes64, scores64)
        result["float64_max_abs_diff_boxes"], result["float64_max_abs_diff_scores"] = diffs64 or (None, None)
    return result
