"""The mix of `mix_salience_rank_csla_r50_4scale_12ep.py` on the shapes demo: `salience_detr_shapes.py`
(the demo's small DINO with Salience's shapes settings) with the high-order matcher from 75% of its
iterations."""

from detrkit_projects.mix_and_match.configs.helpers import to_salience_rank_csla

from ...salience_detr.configs.salience_detr_shapes import (
    MAX_ITER,
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

to_salience_rank_csla(model, matcher_change_iter=int(0.75 * MAX_ITER))
train.output_dir = "./output/mix_salience_rank_csla_shapes"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
