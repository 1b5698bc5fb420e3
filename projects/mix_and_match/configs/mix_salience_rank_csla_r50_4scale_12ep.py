"""Salience DETR R50 4-scale, 12 epochs on COCO (`salience_detr_r50_4scale_12ep.py`: its recipe and
optimizer groups) with Rank-DETR's ranking decoder, rank-adaptive head and high-order matcher (from
iteration 67,500 of 90,000) and StageInteractor's cross-stage label assignment. No published number: a
combination to try."""

from detrkit.config.schedules import COCO_ITERS_PER_EPOCH
from detrkit_projects.mix_and_match.configs.helpers import to_salience_rank_csla

from ...salience_detr.configs.salience_detr_r50_4scale_12ep import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

to_salience_rank_csla(model, matcher_change_iter=9 * COCO_ITERS_PER_EPOCH)
train.output_dir = "./output/mix_salience_rank_csla_r50_4scale_12ep"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
