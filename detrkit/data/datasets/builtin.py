"""The datasets root and the standard COCO 2017 splits registered under it.

One rule for where datasets live (:func:`datasets_root`): ``$DETRKIT_DATASETS``, else
``$DETECTRON2_DATASETS`` (detectron2's name for the same folder), else ``./datasets``. COCO is read from
``<root>/coco``, laid out as in detectron2::

    coco/annotations/instances_{train,val}2017.json
    coco/{train,val}2017/

and the synthetic shapes dataset is generated into ``<root>/shapes`` (with neither variable set: into
``~/.cache/detrkit/shapes``, see :mod:`detrkit.data.shapes`). The variables are read when ``detrkit.data``
is first imported. Registration is lazy: nothing is read until ``DatasetCatalog.get`` is called.
"""

import os

from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

from detrkit.data.datasets.coco import register_coco_instances

__all__ = [
    "COCO_SPLITS",
    "DATASETS_ENV_VARS",
    "coco_instances_metadata",
    "datasets_root",
    "register_all_coco",
]

DATASETS_ENV_VARS = ("DETRKIT_DATASETS", "DETECTRON2_DATASETS")  # in order of precedence

COCO_SPLITS = {
    "coco_2017_train": ("coco/train2017", "coco/annotations/instances_train2017.json"),
    "coco_2017_val": ("coco/val2017", "coco/annotations/instances_val2017.json"),
}


def datasets_root(default: str = "datasets") -> str:
    """The first of ``$DETRKIT_DATASETS`` and ``$DETECTRON2_DATASETS`` that is set (and not empty), else
    ``default``; ``~`` expanded."""
    for variable in DATASETS_ENV_VARS:
        if os.environ.get(variable):
            return os.path.expanduser(os.environ[variable])
    return os.path.expanduser(default)


def coco_instances_metadata() -> dict:
    """The 80 COCO thing classes (in contiguous order) and the COCO category id of each, as detectron2's
    builtin metadata; the names are torchvision's COCO_V1 category list, whose index is the COCO id."""
    names = FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    dataset_ids = [i for i, name in enumerate(names) if name not in ("__background__", "N/A")]
    return {
        "thing_classes": [names[i] for i in dataset_ids],
        "thing_dataset_id_to_contiguous_id": {dataset_id: i for i, dataset_id in enumerate(dataset_ids)},
    }


def register_all_coco(root: str) -> None:
    """Registers every split of :data:`COCO_SPLITS` with its files under ``root``."""
    metadata = coco_instances_metadata()
    for name, (image_root, json_file) in COCO_SPLITS.items():
        register_coco_instances(name, metadata, os.path.join(root, json_file), os.path.join(root, image_root))


register_all_coco(datasets_root())
