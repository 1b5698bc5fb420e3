"""The shapes demo's small DINO (projects/dino's `dino_shapes.py`, everything else unchanged, but
in float32 for 720 iterations, the schedule its recorded result used) with cross-stage label assignment over
its 3 decoder layers."""

from detrkit_projects.stage_interactor.configs.helpers import with_csla

from ...dino.configs.dino_shapes import (
    FLOAT32_MAX_ITER,
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    set_shapes_schedule,
    train,
)

with_csla(model)
set_shapes_schedule(train, lr_multiplier, FLOAT32_MAX_ITER, bf16=False)
train.output_dir = "./output/dino_csla_shapes"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
