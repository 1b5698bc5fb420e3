"""DINO on your own COCO-format dataset (docs/custom_dataset.md): the shapes demo's small DINO (ImageNet
MobileNetV2, 3 levels, 100 queries, images of 224-288 px) trained for a number of epochs. Copy this file
into your own folder and edit the marked lines; it needs nothing from the repository but its tools.

Dataset layout, under the datasets root ($DETRKIT_DATASETS, else $DETECTRON2_DATASETS, else ./datasets):

    my_dataset/
        images/        the image files; the json files' "file_name" are relative to this folder
        train.json     COCO instances: "images", "annotations" ("bbox": [x, y, width, height] in pixels,
        val.json       "category_id"), "categories" ("id", "name")
"""

import math
import os

from detrkit.config import get_config
from detrkit.data import MetadataCatalog, get_detection_dataset_dicts
from detrkit.data.datasets import datasets_root, register_coco_instances
from detrkit_projects.dino.shapes import set_shapes_schedule

NAME = "my_dataset"  # edit: the dataset's folder under the datasets root, and the prefix of its names
EPOCHS = 50  # edit: passes over the training images
BATCH_SIZE = 8

root = os.path.join(datasets_root(), NAME)
for split in ("train", "val"):
    # registering the same files again (the config is loaded by every tool) is a no-op
    register_coco_instances(
        f"{NAME}_{split}", {}, os.path.join(root, f"{split}.json"), os.path.join(root, "images")
    )

base = get_config("projects/dino/configs/dino_shapes.py")
model, dataloader, optimizer, train = base.model, base.dataloader, base.optimizer, base.train
lr_multiplier = base.lr_multiplier

dataloader.train.dataset.names = f"{NAME}_train"
dataloader.test.dataset.names = f"{NAME}_val"  # the evaluator follows (dataloader.evaluator.dataset_name)
dataloader.train.total_batch_size = BATCH_SIZE
# the class names come from train.json's "categories" (read now, before the dataset is loaded)
model.num_classes = len(MetadataCatalog.get(f"{NAME}_train").thing_classes)

# the schedule in epochs: iterations = epochs x batches per epoch (images without boxes are not trained on)
num_train_images = len(get_detection_dataset_dicts(f"{NAME}_train"))
set_shapes_schedule(train, lr_multiplier, EPOCHS * math.ceil(num_train_images / BATCH_SIZE), bf16=True)
train.checkpointer.period = max(1, train.max_iter // 5)
train.output_dir = f"./output/{NAME}"
