"""Data structures with detectron2's names and attribute semantics: code reads them by attribute only, so
detectron2's own ``Instances``/``Boxes`` work wherever these do."""

from detrkit.structures.box_ops import (
    box_cxcywh_to_xyxy,
    box_iou,
    box_xyxy_to_cxcywh,
    generalized_box_iou,
    paired_box_iou,
)
from detrkit.structures.boxes import Boxes, BoxMode, pairwise_iou
from detrkit.structures.image_list import ImageList
from detrkit.structures.instances import Instances

__all__ = [
    "BoxMode",
    "Boxes",
    "ImageList",
    "Instances",
    "box_cxcywh_to_xyxy",
    "box_iou",
    "box_xyxy_to_cxcywh",
    "generalized_box_iou",
    "paired_box_iou",
    "pairwise_iou",
]
