"""Rank-DETR on DINO R50 4-scale (the paper's DINO variant; no official code): projects/dino's DINO with
the rank-adaptive classification head over the 900 matching queries, query rank layers whose positional
queries are recomputed from the sorted boxes (eq. 4; the denoising queries are not ranked), the GIoU-aware
class loss (also on the denoising queries) and the high-order matcher (IoU^4, from iteration 67,500)."""

from detrkit.config.schedules import COCO_ITERS_PER_EPOCH
from detrkit_projects.rank_detr.configs.helpers import to_rank_dino

from ....dino.configs.models.dino_r50 import model

to_rank_dino(model, matcher_change_iter=9 * COCO_ITERS_PER_EPOCH)
