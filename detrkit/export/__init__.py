"""Export of detrkit detectors to ONNX (see ``tools/export_onnx.py``)."""

from detrkit.export.onnx import OUTPUT_NAMES, compare_with_onnxruntime, export_detector_onnx
from detrkit.export.onnx_symbolics import register_onnx_symbolics
from detrkit.export.wrapper import ImageToDetections

__all__ = [
    "OUTPUT_NAMES",
    "ImageToDetections",
    "compare_with_onnxruntime",
    "export_detector_onnx",
    "register_onnx_symbolics",
]
