"""Model EMA: an exponential moving average of a model's parameters and buffers, with the semantics of
detrex's ``detrex.modeling.ema`` (checkpointed as ``ema_state``; optionally used for evaluation)."""

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["ModelEMA"]


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, (DistributedDataParallel, nn.DataParallel)) else model


class ModelEMA:
    """Keeps ``ema = decay * ema + (1 - decay) * value`` for every floating-point parameter and buffer of
    ``model`` (batch-norm statistics included); integer buffers are copied. Names are those of the
    unwrapped model, so checkpoints are the same with and without DDP.

    Args:
        model: the model (DDP-wrapped or not).
        decay: weight of the old average per update.
        device: where the averages live ("" = with the model's tensors; "cpu" saves GPU memory).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, device: str = ""):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"ModelEMA decay must be in [0, 1], got {decay}")
        self.model = _unwrap(model)
        self.decay = decay
        self.device = device
        self.state: dict[str, torch.Tensor] = {}

    def _named_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        return itertools.chain(self.model.named_parameters(), self.model.named_buffers())

    def has_inited(self) -> bool:
        return bool(self.state)

    def reset_from_model(self) -> None:
        """Starts the average from the model's current values."""
        self.state = {name: self._placed(value.detach().clone()) for name, value in self._named_tensors()}

    def _placed(self, value: torch.Tensor) -> torch.Tensor:
        return value.to(self.device) if self.device else value

    @torch.no_grad()
    def update(self) -> None:
        """One averaging step with the model's current values."""
        averages, values = [], []
        for name, value in self._named_tensors():
            average = self.state[name]
            value = self._placed(value.detach())
            if average.is_floating_point():
                averages.append(average)
                values.append(value.to(average.dtype))
            else:
                average.copy_(value)
        if averages:
            torch._foreach_lerp_(averages, values, 1.0 - self.decay)

    @torch.no_grad()
    def apply_to_model(self) -> None:
        """Overwrites the model's parameters and buffers with the averages."""
        for name, value in self._named_tensors():
            if name not in self.state:
                raise KeyError(f"ModelEMA has no average for {name!r}; it holds {len(self.state)} tensors")
            value.copy_(self.state[name])

    @contextmanager
    def apply_and_restore(self):
        """Inside the block the model has the averaged weights; afterwards its own weights are back."""
        saved = {name: value.detach().clone() for name, value in self._named_tensors()}
        self.apply_to_model()
        try:
            yield
        finally:
            with torch.no_grad():
                for name, value in self._named_tensors():
                    value.copy_(saved[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.state)

    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Takes the averages of a checkpoint, placed on ``device`` or next to the model's tensors."""
        own = dict(self._named_tensors())
        self.state = {
            name: value.to(self.device or (own[name].device if name in own else value.device))
            for name, value in state_dict.items()
        }
