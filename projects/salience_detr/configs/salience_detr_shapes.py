"""Salience DETR on the small DINO of the shapes demo (projects/dino's `dino_shapes.py`, everything else
unchanged): its 3 levels (ratios 0.4/0.8/1.0; scale ranges of the code's first two levels and beyond 128),
1 encoder layer updating all kept tokens, no cross-level token fusion (the paper's faster variant: on CPU its
grouped convolutions would make a training step over 10x slower than DINO's). Its training step takes about
1.06x DINO's (the salience loss, the per-image token gathering and the redundancy-removal NMS), so it trains
680 float32 iterations where DINO trains 720, to stay in the demo's 20 minutes (the float32 schedule its
recorded result used; the demo's DINO has since moved to bfloat16)."""

import math

from detrkit_projects.salience_detr.configs.helpers import to_salience_detr

from ...dino.configs.dino_shapes import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    set_shapes_schedule,
    train,
)

to_salience_detr(
    model,
    level_ratios=(0.4, 0.8, 1.0),
    layer_ratios=(1.0,),
    scale_ranges=((-1.0, 64.0), (64.0, 128.0), (128.0, math.inf)),
    token_fusion=False,
)
MAX_ITER = 680
set_shapes_schedule(train, lr_multiplier, MAX_ITER, bf16=False)
train.output_dir = "./output/salience_detr_shapes"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
