"""Evaluation with detectron2's names: the ``DatasetEvaluator`` protocol, ``inference_on_dataset``,
``COCOEvaluator`` (pycocotools box AP/AR) and ``print_csv_format``."""

from detrkit.evaluation.coco_evaluation import COCOEvaluator
from detrkit.evaluation.evaluator import (
    DatasetEvaluator,
    DatasetEvaluators,
    inference_context,
    inference_on_dataset,
)
from detrkit.evaluation.testing import print_csv_format

__all__ = [
    "COCOEvaluator",
    "DatasetEvaluator",
    "DatasetEvaluators",
    "inference_context",
    "inference_on_dataset",
    "print_csv_format",
]
