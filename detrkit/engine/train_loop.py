"""The training loop with detectron2's names: ``HookBase``, ``TrainerBase`` (iterations and hooks),
``SimpleTrainer`` (one optimisation step per iteration, optional gradient clipping) and ``AMPTrainer``
(mixed precision: float16 + GradScaler on CUDA, bfloat16 on CPU)."""

import abc
import logging
import math
import time
import weakref
from collections.abc import Iterable, Mapping

import torch
import torch.distributed as dist
from torch import nn

from detrkit.utils import comm
from detrkit.utils.events import EventStorage

__all__ = ["AMPTrainer", "HookBase", "SimpleTrainer", "TrainerBase"]

logger = logging.getLogger(__name__)


class HookBase:
    """Callbacks around training; ``self.trainer`` is set (as a weak proxy) by ``register_hooks``.

    Order per run: ``before_train``, then per iteration ``before_step``, the step (``after_backward`` is
    called inside it, between backward and the optimizer step), ``after_step``; finally ``after_train``
    (also when training stopped with an exception: then ``trainer.iter < trainer.max_iter``).
    """

    trainer: "TrainerBase"

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_backward(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def state_dict(self) -> dict:
        """State to save in checkpoints (empty: nothing to save)."""
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        pass


class TrainerBase(abc.ABC):
    """Runs ``run_step`` for iterations ``start_iter .. max_iter - 1`` inside an ``EventStorage``, calling
    the hooks around it. ``iter`` is the current iteration; it is ``>= max_iter`` after a complete run."""

    def __init__(self) -> None:
        self._hooks: list[HookBase] = []
        self.iter = 0
        self.start_iter = 0
        self.max_iter = 0
        self.storage: EventStorage | None = None

    def register_hooks(self, hooks: Iterable[HookBase | None]) -> None:
        """Appends ``hooks`` (None entries are skipped); they run in registration order."""
        hooks = [h for h in hooks if h is not None]
        for h in hooks:
            if not isinstance(h, HookBase):
                raise TypeError(f"register_hooks expects HookBase instances, got {type(h).__name__}")
            h.trainer = weakref.proxy(self)  # a proxy: hooks must not keep the trainer alive
        self._hooks.extend(hooks)

    def train(self, start_iter: int, max_iter: int) -> None:
        logger.info(f"Starting training from iteration {start_iter}")
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        with EventStorage(start_iter) as self.storage:
            try:
                self.before_train()
                for self.iter in range(start_iter, max_iter):
                    self.before_step()
                    self.run_step()
                    self.after_step()
                self.iter += 1  # >= max_iter tells the hooks' after_train that the run completed
            except Exception:
                logger.exception(f"Exception during training at iteration {self.iter}:")
                raise
            finally:
                self.after_train()

    def before_train(self) -> None:
        for h in self._hooks:
            h.before_train()

    def after_train(self) -> None:
        self.storage.iter = self.iter
        for h in self._hooks:
            h.after_train()

    def before_step(self) -> None:
        self.storage.iter = self.iter
        for h in self._hooks:
            h.before_step()

    def after_backward(self) -> None:
        for h in self._hooks:
            h.after_backward()

    def after_step(self) -> None:
        for h in self._hooks:
            h.after_step()

    @abc.abstractmethod
    def run_step(self) -> None:
        """One training iteration."""

    def state_dict(self) -> dict:
        """``{"iteration": iter, "hooks": {hook class name: state}}``; hooks with empty state are left out."""
        hooks_state = {}
        for h in self._hooks:
            state = h.state_dict()
            if state:
                name = type(h).__qualname__
                if name in hooks_state:
                    raise KeyError(f"Two hooks of type {name} have state; cannot save both")
                hooks_state[name] = state
        result = {"iteration": self.iter}
        if hooks_state:
            result["hooks"] = hooks_state
        return result

    def load_state_dict(self, state_dict: dict) -> None:
        self.iter = state_dict["iteration"]
        hooks_by_name = {type(h).__qualname__: h for h in self._hooks}
        for name, state in state_dict.get("hooks", {}).items():
            if name in hooks_by_name:
                hooks_by_name[name].load_state_dict(state)
            else:
                logger.warning(f"Cannot find the hook '{name}', its state_dict is ignored.")


class SimpleTrainer(TrainerBase):
    """Per iteration: ``data = next(data_loader)``, ``loss_dict = model(data)``, sum of the losses,
    backward, optional gradient clipping, optimizer step; writes ``total_loss``, each loss (averaged over
    processes) and ``data_time`` to the event storage.

    A non-finite loss raises ``FloatingPointError`` naming every non-finite loss and the iteration, before
    backward and the optimizer step, so the weights stay those of the previous iteration. With several
    processes the check uses the losses reduced over all processes, so all of them stop together. A
    ``FloatingPointError`` raised by the model's forward pass (a detector's check of its predictions) is
    re-raised with the iteration, on every process at once.

    Args:
        model: returns a dict of scalar losses (or one scalar tensor, logged as ``total_loss``) in training
            mode, with the same keys on every process; may be wrapped in DistributedDataParallel.
        data_loader: an iterable; iterated once, endlessly.
        optimizer: a torch optimizer.
        clip_grad_params: keyword arguments of ``torch.nn.utils.clip_grad_norm_`` (``max_norm``,
            ``norm_type``), e.g. ``{"max_norm": 0.1, "norm_type": 2}``; None: no clipping.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        *,
        clip_grad_params: Mapping | None = None,
    ):
        super().__init__()
        model.train()
        self.model = model
        self.data_loader = data_loader
        self._data_loader_iter_obj = None
        self.optimizer = optimizer
        self.clip_grad_params = dict(clip_grad_params) if clip_grad_params is not None else None

    @property
    def _data_loader_iter(self):
        if self._data_loader_iter_obj is None:  # created on first use: the loader may start workers
            self._data_loader_iter_obj = iter(self.data_loader)
        return self._data_loader_iter_obj

    def run_step(self) -> None:
        if not self.model.training:
            raise RuntimeError(f"[{type(self).__name__}] model was changed to eval mode!")
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        forward_error = None
        try:
            loss_dict, losses = self._forward(data)
        except FloatingPointError as error:
            forward_error = error
        self._stop_together(forward_error)
        reduced = self._reduce_and_check(loss_dict)
        self.optimizer.zero_grad()
        self._backward_and_step(losses)
        self._write_metrics(reduced, data_time)

    def _forward(self, data) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``(loss_dict, sum of its values)``."""
        loss_dict = self.model(data)
        if isinstance(loss_dict, torch.Tensor):
            loss_dict = {"total_loss": loss_dict}
        return loss_dict, sum(loss_dict.values())

    def _backward_and_step(self, losses: torch.Tensor) -> None:
        losses.backward()
        self.after_backward()
        if self.clip_grad_params is not None:
            self.clip_grads()
        self.optimizer.step()

    def clip_grads(self) -> torch.Tensor | None:
        """Clips the gradient norm of the trainable parameters in place; returns the norm before clipping."""
        params = [p for p in self.model.parameters() if p.requires_grad and p.grad is not None]
        if not params:
            return None
        return torch.nn.utils.clip_grad_norm_(params, **self.clip_grad_params)

    def _stop_together(self, error: FloatingPointError | None) -> None:
        """Called by every process after its forward pass: raises FloatingPointError with the iteration
        when ``error`` is not None, or when the forward pass failed on another process (one flag all-reduced
        when there are several processes, so none is left waiting in the next collective)."""
        failed_elsewhere = False
        if comm.get_world_size() > 1:
            flag = torch.tensor([float(error is not None)], device=next(self.model.parameters()).device)
            dist.all_reduce(flag)
            failed_elsewhere = error is None and flag.item() > 0
        stopped = "\nStopped before the optimizer step; no checkpoint is written."
        if error is not None:
            raise FloatingPointError(f"At iteration={self.iter}: {error}{stopped}") from error
        if failed_elsewhere:
            raise FloatingPointError(
                f"At iteration={self.iter}: the forward pass of another process raised FloatingPointError "
                f"(see its log){stopped}"
            )

    def _reduce_and_check(self, loss_dict: dict[str, torch.Tensor]) -> dict[str, float]:
        """The losses averaged over processes, as floats; FloatingPointError if any is NaN/inf."""
        detached = {k: v.detach().float() for k, v in loss_dict.items()}
        reduced = {k: float(v) for k, v in comm.reduce_dict(detached).items()}
        bad = {k: v for k, v in reduced.items() if not math.isfinite(v)}
        if bad or not math.isfinite(sum(reduced.values())):
            details = " ".join(f"{k}={v}" for k, v in bad.items()) or f"sum of losses={sum(reduced.values())}"
            raise FloatingPointError(
                f"Loss became infinite or NaN at iteration={self.iter}: {details}\n"
                f"All losses: {reduced}. Stopped before the optimizer step; no checkpoint is written."
            )
        return reduced

    def _write_metrics(self, reduced_losses: dict[str, float], data_time: float) -> None:
        self.storage.put_scalar("data_time", data_time)
        self.storage.put_scalar("total_loss", sum(reduced_losses.values()))
        if len(reduced_losses) > 1:
            self.storage.put_scalars(**reduced_losses)

    def state_dict(self) -> dict:
        result = super().state_dict()
        result["optimizer"] = self.optimizer.state_dict()
        return result

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.optimizer.load_state_dict(state_dict["optimizer"])


class AMPTrainer(SimpleTrainer):
    """``SimpleTrainer`` with the forward pass under autocast: on CUDA in ``precision`` (float16 by
    default, with a GradScaler; bfloat16 needs none), on CPU in bfloat16 without a scaler. The device is
    that of the model's parameters.

    Args:
        grad_scaler: a ``torch.amp.GradScaler`` to use on CUDA with float16 (default: a new one).
        precision: the autocast dtype on CUDA.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        *,
        clip_grad_params: Mapping | None = None,
        grad_scaler: torch.amp.GradScaler | None = None,
        precision: torch.dtype = torch.float16,
    ):
        super().__init__(model, data_loader, optimizer, clip_grad_params=clip_grad_params)
        if isinstance(model, nn.DataParallel):
            raise TypeError("AMPTrainer does not support single-process multi-device training (DataParallel)")
        self.device_type = next(model.parameters()).device.type
        if self.device_type == "cpu":
            self.precision = torch.bfloat16
            self.grad_scaler = None
        else:
            self.precision = precision
            if grad_scaler is None and precision == torch.float16:
                grad_scaler = torch.amp.GradScaler(self.device_type)
            self.grad_scaler = grad_scaler

    def _forward(self, data) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        with torch.autocast(device_type=self.device_type, dtype=self.precision):
            return super()._forward(data)

    def _backward_and_step(self, losses: torch.Tensor) -> None:
        if self.grad_scaler is None:
            super()._backward_and_step(losses)
            return
        self.grad_scaler.scale(losses).backward()
        self.after_backward()
        if self.clip_grad_params is not None:
            self.grad_scaler.unscale_(self.optimizer)
            self.clip_grads()
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()

    def state_dict(self) -> dict:
        result = super().state_dict()
        if self.grad_scaler is not None:
            result["grad_scaler"] = self.grad_scaler.state_dict()
        return result

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        if self.grad_scaler is not None and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
