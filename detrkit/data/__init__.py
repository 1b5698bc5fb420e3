"""Datasets, augmentations and data loaders with detectron2's names and semantics.

Importing registers the builtin COCO 2017 splits (``coco_2017_train``/``coco_2017_val`` under the datasets
root: ``$DETRKIT_DATASETS``, else ``$DETECTRON2_DATASETS``, else ``./datasets``) and the synthetic
``shapes_train``/``shapes_val``; nothing is read or generated until a dataset is loaded.
"""

from detrkit.data import transforms
from detrkit.data.build import (
    DatasetFromList,
    MapDataset,
    build_batch_data_loader,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detrkit.data.catalog import DatasetCatalog, Metadata, MetadataCatalog
from detrkit.data.dataset_mapper import CorruptImageError, DetrDatasetMapper
from detrkit.data.datasets import load_coco_json, register_coco_instances
from detrkit.data.samplers import InferenceSampler, TrainingSampler
from detrkit.data.shapes import generate_shapes_dataset, register_shapes_datasets

register_shapes_datasets()

__all__ = [
    "CorruptImageError",
    "DatasetCatalog",
    "DatasetFromList",
    "DetrDatasetMapper",
    "InferenceSampler",
    "MapDataset",
    "Metadata",
    "MetadataCatalog",
    "TrainingSampler",
    "build_batch_data_loader",
    "build_detection_test_loader",
    "build_detection_train_loader",
    "generate_shapes_dataset",
    "get_detection_dataset_dicts",
    "load_coco_json",
    "register_coco_instances",
    "register_shapes_datasets",
    "transforms",
]
