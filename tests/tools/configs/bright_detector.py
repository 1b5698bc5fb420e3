# The stand-in detector of the tools/predict.py tests (needs tests/tools on PYTHONPATH for bright_detector);
# its classes are those of the "bright_test" dataset's metadata, set here (category ids 5 and 9).
from bright_detector import BrightDetector
from omegaconf import OmegaConf

from detrkit.config import LazyCall as L
from detrkit.config import get_config
from detrkit.data import DetrDatasetMapper, MetadataCatalog
from detrkit.data import transforms as T

MetadataCatalog.get("bright_test").set(
    thing_classes=["bright", "whole"], thing_dataset_id_to_contiguous_id={5: 0, 9: 1}
)
model = L(BrightDetector)()
train = get_config("common/train.py").train
train.device = "cpu"
dataloader = OmegaConf.create()
dataloader.test = dict(
    dataset=dict(names="bright_test"),
    # halves a 120 x 80 image: the detections come back in the original pixels
    mapper=L(DetrDatasetMapper)(
        augmentation=[L(T.ResizeShortestEdge)(short_edge_length=40, max_size=1000)],
        augmentation_with_crop=None,
        is_train=False,
    ),
)
