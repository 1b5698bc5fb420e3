"""The synthetic shapes dataset (256 px images, generated on first use): the DETR augmentations of
`coco_detr.py` scaled to its image size, batch 8, COCO evaluation on shapes_val."""

from .coco_detr import detr_dataloader

dataloader = detr_dataloader(
    train_names="shapes_train",
    test_names="shapes_val",
    scales=(224, 240, 256, 272, 288),
    max_size=400,
    crop_scales=(192, 224, 256),
    crop_size=(160, 256),
    test_scale=256,
    batch_size=8,
    num_workers=2,
)
