"""COCO instances json -> detectron2 dataset dicts, and ``register_coco_instances``.

Every problem in a json file is reported with the file, the entry and the field: malformed json, missing
keys, annotations of unknown images or categories, duplicate ids. Boxes with non-positive width or height
are dropped with one counted warning.
"""

import contextlib
import functools
import io
import json
import logging
import math
import os
from typing import Any

from pycocotools.coco import COCO

from detrkit.data.catalog import DatasetCatalog, MetadataCatalog
from detrkit.structures import BoxMode

__all__ = ["load_coco_json", "read_coco_categories", "register_coco_instances"]

logger = logging.getLogger(__name__)

_REQUIRED_KEYS = {
    "images": ("id", "file_name", "height", "width"),
    "annotations": ("id", "image_id", "bbox", "category_id"),
    "categories": ("id", "name"),
}


def load_coco_json(json_file: str, image_root: str, dataset_name: str | None = None) -> list[dict]:
    """Reads a COCO instances json file (boxes only; the image files are not opened).

    Args:
        json_file: path of the json file.
        image_root: folder that the images' ``file_name`` are relative to.
        dataset_name: if given, ``thing_classes`` and ``thing_dataset_id_to_contiguous_id`` are stored in
            ``MetadataCatalog.get(dataset_name)``.

    Returns:
        One dict per image, sorted by image id: ``{"file_name", "height", "width", "image_id",
        "annotations": [{"bbox": [x, y, w, h], "bbox_mode": BoxMode.XYWH_ABS, "category_id", "iscrowd"}]}``
        with ``category_id`` contiguous: the sorted dataset category ids mapped to ``0..K-1``.
    """
    dataset = _read_json(json_file)
    _check_structure(json_file, dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_api = COCO()
        coco_api.dataset = dataset
        coco_api.createIndex()

    categories = _categories_metadata(dataset)
    id_map = categories["thing_dataset_id_to_contiguous_id"]
    if dataset_name is not None:
        MetadataCatalog.get(dataset_name).set(**categories)

    num_degenerate = 0
    dataset_dicts = []
    for img in coco_api.loadImgs(sorted(coco_api.imgs)):
        objs = []
        for ann in coco_api.imgToAnns[img["id"]]:
            x, y, w, h = _read_bbox(json_file, ann)
            if w <= 0 or h <= 0:
                num_degenerate += 1
                continue
            objs.append(
                {
                    "bbox": [x, y, w, h],
                    "bbox_mode": BoxMode.XYWH_ABS,
                    "category_id": id_map[ann["category_id"]],
                    "iscrowd": int(ann.get("iscrowd", 0)),
                }
            )
        dataset_dicts.append(
            {
                "file_name": os.path.join(image_root, img["file_name"]),
                "height": img["height"],
                "width": img["width"],
                "image_id": img["id"],
                "annotations": objs,
            }
        )
    if num_degenerate:
        logger.warning(
            f"{json_file}: dropped {num_degenerate} annotations whose box has width or height <= 0"
        )
    logger.info(f"Loaded {len(dataset_dicts)} images in COCO format from {json_file}")
    return dataset_dicts


def _categories_metadata(dataset: dict) -> dict:
    """``thing_classes`` (names in the order of the sorted category ids) and
    ``thing_dataset_id_to_contiguous_id`` (sorted ids -> ``0..K-1``) of a checked COCO json dict."""
    categories = sorted(dataset["categories"], key=lambda cat: cat["id"])
    return {
        "thing_classes": [cat["name"] for cat in categories],
        "thing_dataset_id_to_contiguous_id": {cat["id"]: i for i, cat in enumerate(categories)},
    }


def read_coco_categories(json_file: str) -> dict:
    """The class metadata of a COCO json file without loading its images and annotations into dataset dicts:
    ``{"thing_classes": [...], "thing_dataset_id_to_contiguous_id": {...}}`` (see :func:`load_coco_json`)."""
    dataset = _read_json(json_file)
    _check_section(json_file, dataset, "categories")
    return _categories_metadata(dataset)


def _read_json(json_file: str) -> dict:
    try:
        with open(json_file) as f:
            dataset = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{json_file}: malformed json at line {e.lineno}, column {e.colno} (char {e.pos}): {e.msg}"
        ) from e
    if not isinstance(dataset, dict):
        raise ValueError(
            f"{json_file}: expected a json object at the top level, got {type(dataset).__name__}"
        )
    return dataset


def _check_structure(json_file: str, dataset: dict) -> None:
    """Raises ValueError naming the file, entry and field for missing keys, duplicate ids and annotations
    that refer to an image or category that does not exist."""
    for section in _REQUIRED_KEYS:
        _check_section(json_file, dataset, section)
    image_ids = {img["id"] for img in dataset["images"]}
    cat_ids = {cat["id"] for cat in dataset["categories"]}
    for ann in dataset["annotations"]:
        if ann["image_id"] not in image_ids:
            raise ValueError(
                f"{json_file}: annotation {ann['id']} has image_id {ann['image_id']}, not in images"
            )
        if ann["category_id"] not in cat_ids:
            raise ValueError(
                f"{json_file}: annotation {ann['id']} has category_id {ann['category_id']}, "
                f"not in categories {sorted(cat_ids)}"
            )


def _check_section(json_file: str, dataset: dict, section: str) -> None:
    """Raises ValueError naming the file, entry and field when ``dataset[section]`` is missing, not a list,
    or has an entry without a required key or with a repeated id."""
    if section not in dataset:
        raise ValueError(f"{json_file}: missing top-level key '{section}'")
    if not isinstance(dataset[section], list):
        raise ValueError(f"{json_file}: '{section}' must be a list, got {type(dataset[section]).__name__}")
    seen = set()
    for index, entry in enumerate(dataset[section]):
        missing = [key for key in _REQUIRED_KEYS[section] if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise ValueError(f"{json_file}: {section}[{index}] has no key '{missing[0]}'")
        if entry["id"] in seen:
            raise ValueError(f"{json_file}: {section}[{index}] repeats id {entry['id']}")
        seen.add(entry["id"])


def _read_bbox(json_file: str, ann: dict[str, Any]) -> list[float]:
    bbox = ann["bbox"]
    if (
        not isinstance(bbox, list | tuple)
        or len(bbox) != 4
        or not all(isinstance(v, int | float) and math.isfinite(v) for v in bbox)
    ):
        raise ValueError(f"{json_file}: annotation {ann['id']} has bbox {bbox}, expected 4 finite numbers")
    return [float(v) for v in bbox]


# name -> (json_file, image_root, metadata) of each register_coco_instances call, paths absolute
_REGISTERED: dict[str, tuple[str, str, dict]] = {}


def register_coco_instances(name: str, metadata: dict, json_file: str, image_root: str) -> None:
    """Registers a COCO-format dataset: ``DatasetCatalog`` loads it lazily with :func:`load_coco_json`, and
    ``MetadataCatalog.get(name)`` gets ``json_file``, ``image_root``, ``evaluator_type="coco"`` and
    ``metadata``; ``thing_classes`` and ``thing_dataset_id_to_contiguous_id``, unless given, are read from
    the json's categories on first access (:func:`read_coco_categories`), before the dataset is loaded.

    Registering the same name again is a no-op when ``json_file``, ``image_root`` and ``metadata`` are the
    same (a config file that registers its dataset can be loaded twice), and a ValueError otherwise.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_coco_instances: name must be a non-empty str, got {name!r}")
    registration = (os.path.abspath(json_file), os.path.abspath(image_root), dict(metadata))
    if name in DatasetCatalog:
        if _REGISTERED.get(name) == registration:
            return
        before = _REGISTERED.get(name)
        described = (
            f"json_file={before[0]!r}, image_root={before[1]!r}, metadata={before[2]}"
            if before
            else "by another function than register_coco_instances"
        )
        raise ValueError(
            f"register_coco_instances: dataset {name!r} is already registered, {described}; now "
            f"json_file={registration[0]!r}, image_root={registration[1]!r}, metadata={registration[2]}. "
            "Use another name, or DatasetCatalog.remove(name) and MetadataCatalog.remove(name) first."
        )
    DatasetCatalog.register(name, lambda: load_coco_json(json_file, image_root, name))
    _REGISTERED[name] = registration
    MetadataCatalog.get(name).set(
        json_file=json_file, image_root=image_root, evaluator_type="coco", **metadata
    ).set_lazy(
        ("thing_classes", "thing_dataset_id_to_contiguous_id"),
        functools.partial(read_coco_categories, json_file),
    )
