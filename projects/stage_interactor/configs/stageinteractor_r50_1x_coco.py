"""StageInteractor R50, 100 queries, 1x on COCO (the official `stageinteractor_r50_1x_coco.py`): single-scale
training (short side 800, long side at most 1333, horizontal flip), batch 16, AdamW lr 2.5e-5 (backbone
included), weight decay 1e-4, gradient clipping 1.0, lr x0.1 at epochs 8 and 11 after a 500-iteration
linear warmup from x0.001, 12 epochs of COCO_ITERS_PER_EPOCH iterations."""

from fvcore.common.param_scheduler import MultiStepParamScheduler

from detrkit.config import LazyCall as L
from detrkit.config import get_config
from detrkit.config.schedules import COCO_ITERS_PER_EPOCH
from detrkit.data import transforms as T
from detrkit.solver import WarmupParamScheduler

from .models.stageinteractor_r50 import model

MAX_ITER = 12 * COCO_ITERS_PER_EPOCH

dataloader = get_config("common/data/coco_detr.py").dataloader
optimizer = get_config("common/optim.py").AdamW
train = get_config("common/train.py").train

dataloader.train.mapper.augmentation = [
    L(T.RandomFlip)(),
    L(T.ResizeShortestEdge)(short_edge_length=800, max_size=1333),
]
dataloader.train.mapper.augmentation_with_crop = None
dataloader.train.total_batch_size = 16
dataloader.train.num_workers = 16

optimizer.lr = 2.5e-5
optimizer.betas = (0.9, 0.999)
optimizer.weight_decay = 1e-4

lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(
        values=[1.0, 0.1, 0.01],
        milestones=[8 * COCO_ITERS_PER_EPOCH, 11 * COCO_ITERS_PER_EPOCH, MAX_ITER],
    ),
    warmup_length=500 / MAX_ITER,
    warmup_method="linear",
    warmup_factor=0.001,
)

train.init_checkpoint = "detectron2://ImageNetPretrained/torchvision/R-50.pkl"
train.max_iter = MAX_ITER
train.eval_period = COCO_ITERS_PER_EPOCH
train.log_period = 20
train.checkpointer.period = COCO_ITERS_PER_EPOCH
train.clip_grad.enabled = True
train.clip_grad.params.max_norm = 1.0
train.clip_grad.params.norm_type = 2
train.output_dir = "./output/stageinteractor_r50_1x_coco"
model.device = train.device
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
