"""COCO-format datasets; importing registers the builtin COCO 2017 splits (lazily)."""

from detrkit.data.datasets import builtin as _builtin  # noqa: F401  (registers coco_2017_*)
from detrkit.data.datasets.coco import load_coco_json, register_coco_instances

__all__ = ["load_coco_json", "register_coco_instances"]
