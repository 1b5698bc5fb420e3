"""Rank-DETR on the small DINO of the shapes demo (projects/dino's `dino_shapes.py`, everything else
unchanged, but in float32 for 720 iterations, the schedule its recorded result used): rank-adaptive head,
query rank layers, GIoU-aware class loss, and the high-order matcher from 75% of the iterations (the COCO
schedules' 67,500 / 90,000)."""

from detrkit_projects.rank_detr.configs.helpers import to_rank_dino

from ...dino.configs.dino_shapes import (
    FLOAT32_MAX_ITER,
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    set_shapes_schedule,
    train,
)

MAX_ITER = FLOAT32_MAX_ITER
set_shapes_schedule(train, lr_multiplier, MAX_ITER, bf16=False)
to_rank_dino(model, matcher_change_iter=int(0.75 * MAX_ITER))
train.output_dir = "./output/rank_detr_shapes"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
