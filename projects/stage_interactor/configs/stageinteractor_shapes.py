"""A small StageInteractor for the synthetic shapes demo: projects/dino's `dino_shapes.py` data, MobileNetV2
backbone (3 levels, strides 8/16/32), optimizer, bfloat16 autocast and evaluation size, with a lighter decoder
in place of DINO's transformer: 3 stages, 100 queries, FFN 512, G=8 groups of 4x8 points in every stage, 32
output points, filter reuse from stage 1 on; and the official gradient clip 1.0. It trains at 1.26 s per
iteration on 2 cores against the demo DINO's 1.10, so it trains 880 iterations (18.5 minutes) where DINO
trains 1050."""

from detrkit.modeling.criterion import build_weight_dict

from ...dino.configs.dino_shapes import dataloader, lr_multiplier, optimizer, set_shapes_schedule, train
from ...dino.configs.models.backbones import set_mobilenet_v2_backbone
from .models.stageinteractor_r50 import model

NUM_STAGES = 3

set_mobilenet_v2_backbone(model)
model.neck.num_outs = 3
model.feature_strides = (8, 16, 32)
model.num_classes = 3
model.decoder.num_stages = NUM_STAGES
model.decoder.feedforward_dim = 512
model.decoder.num_groups = 8
model.decoder.first_stage_points = 4
model.decoder.out_points = 32
model.decoder.reuse_start = 1
model.criterion.weight_dict = build_weight_dict(
    {"loss_class": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0}, num_decoder_layers=NUM_STAGES, two_stage=False
)
model.device = train.device

train.clip_grad.params.max_norm = 1.0
MAX_ITER = 880
set_shapes_schedule(train, lr_multiplier, MAX_ITER, bf16=True)
train.output_dir = "./output/stageinteractor_shapes"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
