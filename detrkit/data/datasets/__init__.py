"""COCO-format datasets; importing registers the builtin COCO 2017 splits (lazily) under
:func:`datasets_root`."""

from detrkit.data.datasets import builtin as _builtin  # noqa: F401  (registers coco_2017_*)
from detrkit.data.datasets.builtin import datasets_root
from detrkit.data.datasets.coco import load_coco_json, read_coco_categories, register_coco_instances

__all__ = ["datasets_root", "load_coco_json", "read_coco_categories", "register_coco_instances"]
