# Step learning-rate multipliers for COCO training at batch 16, in epochs of COCO_ITERS_PER_EPOCH iterations.
from fvcore.common.param_scheduler import MultiStepParamScheduler

from detrkit.config import LazyCall as L
from detrkit.config.schedules import COCO_ITERS_PER_EPOCH
from detrkit.solver import WarmupParamScheduler


def default_coco_scheduler(epochs=50, decay_epochs=40, warmup_epochs=0, base_steps=COCO_ITERS_PER_EPOCH):
    """Multiplier 1.0 until `decay_epochs`, then 0.1 until `epochs`; an optional linear warmup from
    0.001 over `warmup_epochs`. `base_steps` is the number of iterations per epoch."""
    total_steps = epochs * base_steps
    scheduler = L(MultiStepParamScheduler)(
        values=[1.0, 0.1],
        milestones=[decay_epochs * base_steps, total_steps],
    )
    return L(WarmupParamScheduler)(
        scheduler=scheduler,
        warmup_length=warmup_epochs * base_steps / total_steps,
        warmup_method="linear",
        warmup_factor=0.001,
    )


lr_multiplier_12ep = default_coco_scheduler(12, 11, 0)
lr_multiplier_24ep = default_coco_scheduler(24, 20, 0)
lr_multiplier_36ep = default_coco_scheduler(36, 30, 0)
lr_multiplier_50ep = default_coco_scheduler(50, 40, 0)

# with a short warmup (1e-3 epoch, about 8 iterations)
lr_multiplier_12ep_warmup = default_coco_scheduler(12, 11, 1e-3)
lr_multiplier_50ep_warmup = default_coco_scheduler(50, 40, 1e-3)
