"""Rank-DETR R50 two-stage (official `rank_detr_r50.py` with the two-stage settings of
`rank_detr_r50_two_stage_12ep.py`): H-Deformable-DETR R50 (projects/dino's config) with the rank-adaptive
classification head, the query rank layers, the GIoU-aware class loss and the high-order matcher
(IoU^4, from iteration 67,500)."""

from detrkit.config.schedules import COCO_ITERS_PER_EPOCH
from detrkit_projects.rank_detr.configs.helpers import to_rank_detr

from ....dino.configs.models.h_deformable_detr_r50 import model

to_rank_detr(model, matcher_change_iter=9 * COCO_ITERS_PER_EPOCH)
