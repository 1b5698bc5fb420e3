"""Rank-DETR on the small DINO of the shapes demo (projects/dino's `dino_shapes.py`, everything else
unchanged): rank-adaptive head, query rank layers, GIoU-aware class loss, and the high-order matcher from
75% of the iterations (the COCO schedules' 67,500 / 90,000)."""

from projects.rank_detr.modeling.lazy_configs import to_rank_dino

from ...dino.configs.dino_shapes import MAX_ITER, dataloader, lr_multiplier, model, optimizer, train

model = to_rank_dino(model, matcher_change_iter=int(0.75 * MAX_ITER))
train.output_dir = "./output/rank_detr_shapes"
dataloader.evaluator.output_dir = train.output_dir
