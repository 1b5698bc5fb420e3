"""The mix of `mix_focus_rank_csla_r50_4scale_12ep.py` on the shapes demo: `focus_detr_shapes.py` (the
demo's small DINO with Focus-DETR's shapes settings) with Rank-DETR's decoder, head, class loss and
high-order matcher (from 75% of its iterations) and cross-stage label assignment, by config alone."""

from detrkit_projects.rank_detr.configs.helpers import to_rank_dino
from detrkit_projects.stage_interactor.configs.helpers import with_csla

from ...focus_detr.configs.focus_detr_shapes import dataloader, lr_multiplier, model, optimizer, train

to_rank_dino(model, matcher_change_iter=int(0.75 * train.max_iter))
with_csla(model)
train.output_dir = "./output/mix_focus_rank_csla_shapes"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
