"""StageInteractor R50, 300 queries, 3x on COCO with DETR's crop and multi-scale (480-800) augmentation (the
official `stageinteractor_r50_300_query_crop_mstrain_480-800_3x_coco.py`): 36 epochs, lr x0.1 at epochs 24
and 33, the rest as the 1x config."""

from fvcore.common.param_scheduler import MultiStepParamScheduler

from detrkit.config import LazyCall as L
from detrkit.config import get_config
from detrkit.config.schedules import COCO_ITERS_PER_EPOCH

from .stageinteractor_r50_1x_coco import lr_multiplier, model, optimizer, train

MAX_ITER = 36 * COCO_ITERS_PER_EPOCH

dataloader = get_config("common/data/coco_detr.py").dataloader
dataloader.train.total_batch_size = 16
dataloader.train.num_workers = 16

model.query_generator.num_queries = 300
model.select_box_nums_for_evaluation = 300

lr_multiplier.scheduler = L(MultiStepParamScheduler)(
    values=[1.0, 0.1, 0.01],
    milestones=[24 * COCO_ITERS_PER_EPOCH, 33 * COCO_ITERS_PER_EPOCH, MAX_ITER],
)
lr_multiplier.warmup_length = 500 / MAX_ITER

train.max_iter = MAX_ITER
train.output_dir = "./output/stageinteractor_r50_300_query_crop_mstrain_480-800_3x_coco"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
