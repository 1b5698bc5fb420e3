# The stand-in detector of the tools/predict.py and tools/visualize.py tests (needs tests/tools on
# PYTHONPATH for bright_detector), tested on the "bright" COCO dataset under $DETRKIT_DATASETS
# (bright_detector.write_bright_dataset): category ids 5 "bright" and 9 "whole".
import os

from bright_detector import BrightDetector

from detrkit.config import LazyCall as L
from detrkit.config import get_config
from detrkit.data import DetrDatasetMapper
from detrkit.data import transforms as T
from detrkit.data.datasets import datasets_root, register_coco_instances

BRIGHT = os.path.join(datasets_root(), "bright")
register_coco_instances(
    "bright_test", {}, os.path.join(BRIGHT, "annotations.json"), os.path.join(BRIGHT, "images")
)

model = L(BrightDetector)()
train = get_config("common/train.py").train
train.device = "cpu"
dataloader = dict(
    test=dict(
        dataset=dict(names="bright_test"),
        # halves an 80 x 120 image: the detections must come back in the original pixels
        mapper=L(DetrDatasetMapper)(
            augmentation=[L(T.ResizeShortestEdge)(short_edge_length=40, max_size=1000)],
            augmentation_with_crop=None,
            is_train=False,
        ),
    )
)
