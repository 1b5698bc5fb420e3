"""COCO 2017 detection data for DETR-style models: detrex's DETR augmentations (flip + multi-scale resize,
or with probability 0.5 the resize-crop-resize branch), batch 16, COCO evaluation on val2017.
`detr_dataloader` builds the same data for other datasets and image sizes (`shapes.py` imports it)."""

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


def detr_dataloader(
    train_names, test_names, scales, max_size, crop_scales, crop_size, test_scale, batch_size, num_workers
):
    """The DETR data: training on `train_names` with a horizontal flip and a resize of the short side to one
    of `scales` (long side at most `max_size`), or with probability 0.5 a resize to one of `crop_scales`,
    a random crop of `crop_size` (min, max) and the same resize; `batch_size` images a batch; tested on
    `test_names` resized to `test_scale` (long side at most `max_size`) with COCO evaluation."""
    resize = L(T.ResizeShortestEdge)(short_edge_length=scales, max_size=max_size, sample_style="choice")
    dataloader = OmegaConf.create()
    dataloader.train = L(build_detection_train_loader)(
        dataset=L(get_detection_dataset_dicts)(names=train_names),
        mapper=L(DetrDatasetMapper)(
            augmentation=[L(T.RandomFlip)(), resize],
            augmentation_with_crop=[
                L(T.RandomFlip)(),
                L(T.ResizeShortestEdge)(short_edge_length=crop_scales, sample_style="choice"),
                L(T.RandomCrop)(crop_type="absolute_range", crop_size=crop_size),
                resize,
            ],
            is_train=True,
            mask_on=False,
            img_format="RGB",
        ),
        total_batch_size=batch_size,
        num_workers=num_workers,
    )
    dataloader.test = L(build_detection_test_loader)(
        dataset=L(get_detection_dataset_dicts)(names=test_names, filter_empty=False),
        mapper=L(DetrDatasetMapper)(
            augmentation=[L(T.ResizeShortestEdge)(short_edge_length=test_scale, max_size=max_size)],
            augmentation_with_crop=None,
            is_train=False,
            mask_on=False,
            img_format="RGB",
        ),
        num_workers=num_workers,
    )
    dataloader.evaluator = L(COCOEvaluator)(dataset_name="${..test.dataset.names}")
    return dataloader


dataloader = detr_dataloader(
    train_names="coco_2017_train",
    test_names="coco_2017_val",
    scales=(480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800),
    max_size=1333,
    crop_scales=(400, 500, 600),
    crop_size=(384, 600),
    test_scale=800,
    batch_size=16,
    num_workers=4,
)
