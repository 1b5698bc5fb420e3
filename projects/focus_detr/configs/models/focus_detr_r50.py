"""Focus-DETR R50 4-scale (detrex's `focus_detr_r50.py`): DINO R50 4-scale (projects/dino's config) with the
foreground token selector (keep ratio 0.5 of the official code, cascade 1.0/0.8/0.6/0.6/0.4/0.2), the
dual-attention selective encoder and `loss_select` (weight 1.5, the code's non-overlapping scale ranges)."""

from detrkit_projects.focus_detr.configs.helpers import to_focus_detr

from ....dino.configs.models.dino_r50 import model

to_focus_detr(model, keep_ratio=0.5)
