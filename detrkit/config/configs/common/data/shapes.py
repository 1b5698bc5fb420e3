"""The synthetic shapes dataset (256 px images, generated on first use): the DETR augmentations scaled to
its image size, batch 8, COCO evaluation on shapes_val."""

from omegaconf import OmegaConf

from detrkit.config import LazyCall as L
from detrkit.data import (
    DetrDatasetMapper,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detrkit.data import transforms as T
from detrkit.evaluation import COCOEvaluator

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="shapes_train"),
    mapper=L(DetrDatasetMapper)(
        augmentation=[
            L(T.RandomFlip)(),
            L(T.ResizeShortestEdge)(
                short_edge_length=(224, 240, 256, 272, 288), max_size=400, sample_style="choice"
            ),
        ],
        augmentation_with_crop=[
            L(T.RandomFlip)(),
            L(T.ResizeShortestEdge)(short_edge_length=(192, 224, 256), sample_style="choice"),
            L(T.RandomCrop)(crop_type="absolute_range", crop_size=(160, 256)),
            L(T.ResizeShortestEdge)(
                short_edge_length=(224, 240, 256, 272, 288), max_size=400, sample_style="choice"
            ),
        ],
        is_train=True,
        mask_on=False,
        img_format="RGB",
    ),
    total_batch_size=8,
    num_workers=2,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="shapes_val", filter_empty=False),
    mapper=L(DetrDatasetMapper)(
        augmentation=[L(T.ResizeShortestEdge)(short_edge_length=256, max_size=400)],
        augmentation_with_crop=None,
        is_train=False,
        mask_on=False,
        img_format="RGB",
    ),
    num_workers=2,
)

dataloader.evaluator = L(COCOEvaluator)(dataset_name="${..test.dataset.names}")
