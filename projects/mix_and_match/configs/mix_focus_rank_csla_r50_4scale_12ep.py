"""Focus-DETR R50 4-scale, 12 epochs on COCO (`focus_detr_r50_4scale_12ep.py`: its encoder, token
selection and foreground loss) with Rank-DETR's ranking decoder, rank-adaptive head, GIoU-aware class loss
and high-order matcher (from iteration 67,500 of 90,000) and StageInteractor's cross-stage label assignment
on the decoder layers. Every piece fills a slot of detrkit's modules through its project's config helper: no
class is written for the combination. No published number: a combination to try."""

from detrkit.config.schedules import COCO_ITERS_PER_EPOCH
from detrkit_projects.rank_detr.configs.helpers import to_rank_dino
from detrkit_projects.stage_interactor.configs.helpers import with_csla

from ...focus_detr.configs.focus_detr_r50_4scale_12ep import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

to_rank_dino(model, matcher_change_iter=9 * COCO_ITERS_PER_EPOCH)
with_csla(model)
train.output_dir = "./output/mix_focus_rank_csla_r50_4scale_12ep"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
