"""Training hooks with detectron2's names (``CallbackHook``, ``IterationTimer``, ``PeriodicWriter``,
``PeriodicCheckpointer``, ``LRScheduler``, ``EvalHook``) plus ``EMAHook`` (model EMA). A module that needs
the training iteration reads it from the event storage (``detrkit.utils.events.current_training_iteration``
)."""

import datetime
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence

import torch
from fvcore.common.checkpoint import PeriodicCheckpointer as _PeriodicCheckpointer
from fvcore.common.param_scheduler import ParamScheduler

from detrkit.engine.ema import ModelEMA
from detrkit.engine.train_loop import HookBase
from detrkit.evaluation.testing import flatten_results_dict
from detrkit.solver import LRMultiplier
from detrkit.utils import comm
from detrkit.utils.events import EventWriter

__all__ = [
    "CallbackHook",
    "EMAHook",
    "EvalHook",
    "IterationTimer",
    "LRScheduler",
    "PeriodicCheckpointer",
    "PeriodicWriter",
]

logger = logging.getLogger(__name__)


def _training_completed(trainer) -> bool:
    """False when ``after_train`` runs because training stopped with an exception."""
    return trainer.iter >= trainer.max_iter


class CallbackHook(HookBase):
    """Calls the given functions, each with the trainer, at the matching moments."""

    def __init__(
        self,
        *,
        before_train: Callable | None = None,
        after_train: Callable | None = None,
        before_step: Callable | None = None,
        after_step: Callable | None = None,
    ):
        self._before_train = before_train
        self._after_train = after_train
        self._before_step = before_step
        self._after_step = after_step

    def before_train(self) -> None:
        if self._before_train:
            self._before_train(self.trainer)

    def after_train(self) -> None:
        if self._after_train:
            self._after_train(self.trainer)

    def before_step(self) -> None:
        if self._before_step:
            self._before_step(self.trainer)

    def after_step(self) -> None:
        if self._after_step:
            self._after_step(self.trainer)


class IterationTimer(HookBase):
    """Puts ``time`` (seconds of each step, hooks registered after this one included) into the storage,
    from the ``warmup_iter``-th iteration of the run on, and logs the overall speed at the end. Register
    it first."""

    def __init__(self, warmup_iter: int = 3):
        self._warmup_iter = warmup_iter
        self._step_start = 0.0
        self._train_start = 0.0
        self._timed_seconds = 0.0
        self._timed_iters = 0

    def before_train(self) -> None:
        self._train_start = time.perf_counter()

    def before_step(self) -> None:
        self._step_start = time.perf_counter()

    def after_step(self) -> None:
        seconds = time.perf_counter() - self._step_start
        if self.trainer.iter - self.trainer.start_iter + 1 >= self._warmup_iter:
            self.trainer.storage.put_scalars(time=seconds)
            self._timed_seconds += seconds
            self._timed_iters += 1

    def after_train(self) -> None:
        total = time.perf_counter() - self._train_start
        if self._timed_iters > 0:
            logger.info(
                f"Overall training speed: {self._timed_iters} iterations in "
                f"{datetime.timedelta(seconds=int(self._timed_seconds))} "
                f"({self._timed_seconds / self._timed_iters:.4f} s / it)"
            )
        logger.info(f"Total training time: {datetime.timedelta(seconds=int(total))}")


class PeriodicWriter(HookBase):
    """Calls every writer's ``write`` every ``period`` iterations and at the last one; closes them at the
    end."""

    def __init__(self, writers: Sequence[EventWriter], period: int = 20):
        for w in writers:
            if not isinstance(w, EventWriter):
                raise TypeError(f"PeriodicWriter expects EventWriter instances, got {type(w).__name__}")
        self._writers = list(writers)
        self._period = period

    def after_step(self) -> None:
        if (self.trainer.iter + 1) % self._period == 0 or self.trainer.iter == self.trainer.max_iter - 1:
            for w in self._writers:
                w.write()

    def after_train(self) -> None:
        for w in self._writers:
            w.write()  # also the metrics of the iterations since the last period
            w.close()


class PeriodicCheckpointer(_PeriodicCheckpointer, HookBase):
    """fvcore's ``PeriodicCheckpointer`` as a hook: saves ``model_{iter:07d}`` after every ``period``-th
    iteration and ``model_final`` after the last, keeping the newest ``max_to_keep`` periodic ones. Nothing
    is saved after a failed step (e.g. a NaN loss) or with non-finite weights: the last good checkpoint
    stays the one ``last_checkpoint`` names. A resumed run counts the periodic checkpoints of the earlier
    iterations already in the folder towards ``max_to_keep`` (the oldest beyond it are deleted when training
    starts). Register it after the hooks whose state it saves (LR scheduler, EMA)."""

    def before_train(self) -> None:
        self.max_iter = self.trainer.max_iter
        save_dir = self.checkpointer.save_dir
        if self.max_to_keep is None or not self.checkpointer.save_to_disk or not os.path.isdir(save_dir):
            return
        pattern = re.compile(rf"^{re.escape(self.file_prefix)}_(\d{{7}})\.pth$")
        earlier = sorted(
            (int(match[1]), os.path.join(save_dir, name))
            for name in os.listdir(save_dir)
            if (match := pattern.match(name)) and int(match[1]) < self.trainer.iter
        )
        self.recent_checkpoints = [path for _, path in earlier]
        while len(self.recent_checkpoints) > self.max_to_keep:
            oldest = self.recent_checkpoints.pop(0)
            os.remove(oldest)
            logger.info(f"Removed {oldest}: more than max_to_keep={self.max_to_keep} checkpoints")

    def after_step(self) -> None:
        self.step(self.trainer.iter)


class LRScheduler(HookBase):
    """Puts the learning rate into the storage (``lr``) and steps the scheduler after every iteration.

    Args:
        optimizer: default: the trainer's.
        scheduler: a torch LR scheduler, or an fvcore ``ParamScheduler`` of LR multipliers over training
            progress (e.g. ``cfg.lr_multiplier``), wrapped into an ``LRMultiplier`` for ``max_iter``
            iterations starting at the current iteration. A torch scheduler's state goes into checkpoints,
            so a resumed run continues its schedule; a ParamScheduler needs none (it depends only on the
            iteration).
    """

    def __init__(self, optimizer: torch.optim.Optimizer | None = None, scheduler=None):
        self._optimizer = optimizer
        self._scheduler = scheduler
        self._best_param_group_id = 0

    def before_train(self) -> None:
        self._optimizer = self._optimizer or self.trainer.optimizer
        if isinstance(self._scheduler, ParamScheduler):
            self._scheduler = LRMultiplier(
                self._optimizer, self._scheduler, self.trainer.max_iter, last_iter=self.trainer.iter - 1
            )
        self._best_param_group_id = self.get_best_param_group_id(self._optimizer)

    @staticmethod
    def get_best_param_group_id(optimizer: torch.optim.Optimizer) -> int:
        """The param group whose LR is logged: the largest one, or (if every group has a single parameter)
        the first with the most common LR."""
        largest = max(len(g["params"]) for g in optimizer.param_groups)
        if largest == 1:
            common_lr = Counter(g["lr"] for g in optimizer.param_groups).most_common(1)[0][0]
            return next(i for i, g in enumerate(optimizer.param_groups) if g["lr"] == common_lr)
        return next(i for i, g in enumerate(optimizer.param_groups) if len(g["params"]) == largest)

    def after_step(self) -> None:
        lr = self._optimizer.param_groups[self._best_param_group_id]["lr"]
        self.trainer.storage.put_scalar("lr", lr, smoothing_hint=False)
        self.scheduler.step()

    @property
    def scheduler(self):
        return self._scheduler or self.trainer.scheduler

    def state_dict(self) -> dict:
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LRScheduler):
            return self.scheduler.state_dict()
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LRScheduler):
            logger.info("Loading scheduler from state_dict ...")
            self.scheduler.load_state_dict(state_dict)


class EvalHook(HookBase):
    """Runs ``eval_function()`` every ``eval_period`` iterations and after the last one (when training
    completed). Its result ``{task: {metric: value}}`` goes into the storage flattened (``bbox/AP``).

    Args:
        eval_period: 0 disables the periodic evaluation (the final one still runs).
        eval_function: called on every process; returns a (nested) dict of floats, or None/empty.
        eval_after_train: evaluate after the last iteration.
    """

    def __init__(
        self, eval_period: int, eval_function: Callable[[], dict | None], eval_after_train: bool = True
    ):
        self._period = eval_period
        self._func = eval_function
        self._eval_after_train = eval_after_train

    def _do_eval(self) -> None:
        results = self._func()
        if results:
            if not isinstance(results, dict):
                raise TypeError(f"Eval function must return a dict, got {type(results).__name__}: {results}")
            flat = flatten_results_dict(results)
            for name, value in flat.items():
                try:
                    flat[name] = float(value)
                except (TypeError, ValueError) as error:
                    raise ValueError(
                        f"[EvalHook] eval_function should return a nested dict of floats; got {name}: {value}"
                    ) from error
            self.trainer.storage.put_scalars(**flat, smoothing_hint=False)
        comm.synchronize()  # evaluation may take different time on different processes

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        if self._period > 0 and next_iter % self._period == 0 and next_iter != self.trainer.max_iter:
            self._do_eval()

    def after_train(self) -> None:
        if self._eval_after_train and _training_completed(self.trainer):
            self._do_eval()


class EMAHook(HookBase):
    """Updates a ``ModelEMA`` after every iteration; starts it from the model's weights unless it was
    loaded from a checkpoint. Register it before ``PeriodicCheckpointer`` so checkpoints hold the update
    of their iteration."""

    def __init__(self, model_ema: ModelEMA):
        self.model_ema = model_ema

    def before_train(self) -> None:
        if not self.model_ema.has_inited():
            self.model_ema.reset_from_model()

    def after_step(self) -> None:
        self.model_ema.update()
