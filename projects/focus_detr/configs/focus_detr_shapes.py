"""Focus-DETR on the small DINO of the shapes demo (projects/dino's `dino_shapes.py`, everything else
unchanged, but in float32 for 720 iterations, the schedule its recorded result used): its 3 levels (strides
8/16/32, scale ranges of the code's first two levels and beyond 128) and 1 encoder layer updating the kept
half of the tokens."""

import math

from detrkit_projects.focus_detr.configs.helpers import to_focus_detr

from ...dino.configs.dino_shapes import (
    FLOAT32_MAX_ITER,
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    set_shapes_schedule,
    train,
)

to_focus_detr(
    model,
    keep_ratio=0.5,
    layer_ratios=(1.0,),
    strides=(8, 16, 32),
    scale_ranges=((-1.0, 64.0), (64.0, 128.0), (128.0, math.inf)),
)
set_shapes_schedule(train, lr_multiplier, FLOAT32_MAX_ITER, bf16=False)
train.output_dir = "./output/focus_detr_shapes"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
