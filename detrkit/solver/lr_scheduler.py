"""Learning-rate schedules from fvcore param schedulers: warmup, and the torch scheduler applying them."""

import torch
from fvcore.common.param_scheduler import (
    CompositeParamScheduler,
    ConstantParamScheduler,
    LinearParamScheduler,
    ParamScheduler,
)
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["LRMultiplier", "WarmupParamScheduler"]


class WarmupParamScheduler(CompositeParamScheduler):
    """Prepend a warmup stage to an fvcore scheduler.

    Over the first ``warmup_length`` fraction of training the value goes from
    ``warmup_factor * scheduler(0)`` to the value ``scheduler`` has at the end of warmup (linearly, or
    stays constant); afterwards it is ``scheduler``'s own value.
    """

    def __init__(
        self,
        scheduler: ParamScheduler,
        warmup_factor: float,
        warmup_length: float,
        warmup_method: str = "linear",
        rescale_interval: bool = False,
    ):
        """
        Args:
            scheduler: the schedule that follows warmup.
            warmup_factor: start value relative to ``scheduler(0)``, e.g. 0.001.
            warmup_length: warmup's fraction of the whole training, in [0, 1].
            warmup_method: "linear" or "constant".
            rescale_interval: if True, ``scheduler`` is stretched over the rest of training (warmup
                ends at ``scheduler(0)``) instead of being read at the same absolute position.
        """
        end_value = scheduler(0.0) if rescale_interval else scheduler(warmup_length)
        start_value = warmup_factor * scheduler(0.0)
        if warmup_method == "constant":
            warmup = ConstantParamScheduler(start_value)
        elif warmup_method == "linear":
            warmup = LinearParamScheduler(start_value, end_value)
        else:
            raise ValueError(f"Unknown warmup_method {warmup_method!r}; use 'linear' or 'constant'")
        super().__init__(
            [warmup, scheduler],
            interval_scaling=["rescaled", "rescaled" if rescale_interval else "fixed"],
            lengths=[warmup_length, 1 - warmup_length],
        )


class LRMultiplier(LRScheduler):
    """A torch LR scheduler: at iteration ``t`` every param group's lr is its initial lr times
    ``multiplier(t / max_iter)``.

    ``last_iter`` plays the role of torch's ``last_epoch`` (-1 for a fresh start); the scheduler is
    meant to be stepped once per iteration.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        multiplier: ParamScheduler,
        max_iter: int,
        last_iter: int = -1,
    ):
        if not isinstance(multiplier, ParamScheduler):
            raise ValueError(
                f"LRMultiplier(multiplier=) must be an fvcore ParamScheduler, got {multiplier!r}"
            )
        self._multiplier = multiplier
        self._max_iter = max_iter
        super().__init__(optimizer, last_epoch=last_iter)

    def state_dict(self) -> dict:
        """Only torch's counters: fvcore schedulers are stateless."""
        return {"base_lrs": self.base_lrs, "last_epoch": self.last_epoch}

    def get_lr(self) -> list[float]:
        factor = self._multiplier(self.last_epoch / self._max_iter)
        return [base_lr * factor for base_lr in self.base_lrs]
