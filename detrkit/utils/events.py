"""Training metrics with detectron2's names: ``EventStorage`` collects scalars per iteration, and writers
turn them into a console line, ``metrics.json`` (one JSON object per line) and TensorBoard events."""

import abc
import datetime
import json
import logging
import os
import sys
from collections import defaultdict
from contextlib import contextmanager

import torch
from fvcore.common.history_buffer import HistoryBuffer

__all__ = [
    "CommonMetricPrinter",
    "EventStorage",
    "EventWriter",
    "JSONWriter",
    "TensorboardXWriter",
    "current_training_iteration",
    "get_event_storage",
]

_CURRENT_STORAGE_STACK: list["EventStorage"] = []


def get_event_storage() -> "EventStorage":
    """The innermost ``EventStorage`` being used (``with EventStorage(): ...``)."""
    if not _CURRENT_STORAGE_STACK:
        raise AssertionError(
            "get_event_storage() has to be called inside a 'with EventStorage(...)' context!"
        )
    return _CURRENT_STORAGE_STACK[-1]


def current_training_iteration() -> int | None:
    """The iteration of the training step now running: the ``iter`` of the innermost active
    ``EventStorage``, detrkit's or, when detectron2 is loaded (detrex's trainer), detectron2's; both trainers
    set it before every step. None outside a trainer's storage."""
    stacks = [_CURRENT_STORAGE_STACK]
    detectron2_events = sys.modules.get("detectron2.utils.events")
    if detectron2_events is not None:
        stacks.append(getattr(detectron2_events, "_CURRENT_STORAGE_STACK", []))
    for stack in stacks:
        if stack:
            return int(stack[-1].iter)
    return None


class EventStorage:
    """Per-iteration scalars of a training run: every ``put_scalar`` is kept in a history buffer and as the
    latest value with the iteration it was written at. Used as a context manager so that code anywhere can
    reach it with ``get_event_storage()``."""

    def __init__(self, start_iter: int = 0):
        self._history: defaultdict[str, HistoryBuffer] = defaultdict(HistoryBuffer)
        self._smoothing_hints: dict[str, bool] = {}
        self._latest_scalars: dict[str, tuple[float, int]] = {}
        self._iter = start_iter
        self._current_prefix = ""

    def put_scalar(self, name: str, value, smoothing_hint: bool = True, cur_iter: int | None = None) -> None:
        """Records ``value`` (a number or one-element tensor) for ``name`` at ``cur_iter`` (default: the
        current iteration). ``smoothing_hint`` tells writers to show the median over a window (True) or the
        latest value (False); it must stay the same for a name."""
        name = self._current_prefix + name
        cur_iter = self._iter if cur_iter is None else cur_iter
        value = float(value)
        self._history[name].update(value, cur_iter)
        self._latest_scalars[name] = (value, cur_iter)
        existing_hint = self._smoothing_hints.setdefault(name, smoothing_hint)
        if existing_hint != smoothing_hint:
            raise ValueError(
                f"Scalar {name} was put with smoothing_hint={existing_hint} before, now {smoothing_hint}"
            )

    def put_scalars(self, *, smoothing_hint: bool = True, cur_iter: int | None = None, **kwargs) -> None:
        """``put_scalar`` for every keyword argument."""
        for name, value in kwargs.items():
            self.put_scalar(name, value, smoothing_hint=smoothing_hint, cur_iter=cur_iter)

    def history(self, name: str) -> HistoryBuffer:
        """All values put for ``name``; KeyError if there are none."""
        if name not in self._history:
            raise KeyError(f"No history metric available for {name}!")
        return self._history[name]

    def histories(self) -> dict[str, HistoryBuffer]:
        return dict(self._history)

    def latest(self) -> dict[str, tuple[float, int]]:
        """``name -> (latest value, iteration it was put at)``."""
        return dict(self._latest_scalars)

    def latest_with_smoothing_hint(self, window_size: int = 20) -> dict[str, tuple[float, int]]:
        """Like ``latest``, but scalars put with ``smoothing_hint=True`` are the median of their last
        ``window_size`` values."""
        result = {}
        for name, (value, itr) in self._latest_scalars.items():
            if self._smoothing_hints[name]:
                value = self._history[name].median(window_size)
            result[name] = (value, itr)
        return result

    def smoothing_hints(self) -> dict[str, bool]:
        return dict(self._smoothing_hints)

    def step(self) -> None:
        """Advances the current iteration by one."""
        self._iter += 1

    @property
    def iter(self) -> int:
        """The current iteration (the trainer sets it before each step)."""
        return self._iter

    @iter.setter
    def iter(self, value: int) -> None:
        self._iter = int(value)

    @property
    def iteration(self) -> int:
        return self._iter

    @contextmanager
    def name_scope(self, name: str):
        """Scalars put inside get the prefix ``name + "/"``."""
        old_prefix = self._current_prefix
        self._current_prefix = name.rstrip("/") + "/"
        try:
            yield
        finally:
            self._current_prefix = old_prefix

    def __enter__(self) -> "EventStorage":
        _CURRENT_STORAGE_STACK.append(self)
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        if not _CURRENT_STORAGE_STACK or _CURRENT_STORAGE_STACK[-1] is not self:
            raise RuntimeError("EventStorage contexts were exited out of order")
        _CURRENT_STORAGE_STACK.pop()


class EventWriter(abc.ABC):
    """Writes what the current ``EventStorage`` holds somewhere; ``write`` is called periodically."""

    @abc.abstractmethod
    def write(self) -> None:
        """Writes the scalars of the current storage."""

    def close(self) -> None:  # noqa: B027 (optional: only writers holding files override it)
        """Releases what the writer holds (files); nothing by default."""


class _NewScalarsWriter(EventWriter):
    """Base of the writers that emit each (scalar, iteration) once: the smoothed latest values put after
    the last iteration already written."""

    def __init__(self, window_size: int):
        self._window_size = window_size
        self._last_write = -1

    def _new_scalars(self) -> dict[int, dict[str, float]]:
        """``iteration -> {name: value}`` for the scalars not written yet."""
        by_iter: defaultdict[int, dict[str, float]] = defaultdict(dict)
        latest = get_event_storage().latest_with_smoothing_hint(self._window_size)
        for name, (value, itr) in latest.items():
            if itr > self._last_write:
                by_iter[itr][name] = value
        if by_iter:
            self._last_write = max(by_iter)
        return dict(sorted(by_iter.items()))


class JSONWriter(_NewScalarsWriter):
    """Appends one JSON object per iteration to ``json_file`` (``metrics.json``), e.g.
    ``{"data_time": 0.01, "iteration": 19, "loss_bbox": 0.3, "lr": 0.0001, "time": 0.2, "total_loss": 1.2}``;
    smoothed scalars are the median of the last ``window_size`` values."""

    def __init__(self, json_file: str, window_size: int = 20):
        super().__init__(window_size)
        self._file_handle = open(json_file, "a")  # kept open for the whole run; closed by close()

    def write(self) -> None:
        for itr, scalars in self._new_scalars().items():
            self._file_handle.write(json.dumps({**scalars, "iteration": itr}, sort_keys=True) + "\n")
        self._file_handle.flush()
        os.fsync(self._file_handle.fileno())

    def close(self) -> None:
        self._file_handle.close()


class TensorboardXWriter(_NewScalarsWriter):
    """Writes the scalars as TensorBoard events into ``log_dir`` (``torch.utils.tensorboard``); ``kwargs``
    go to ``SummaryWriter``."""

    def __init__(self, log_dir: str, window_size: int = 20, **kwargs):
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard, which is slow to load

        super().__init__(window_size)
        self._writer = SummaryWriter(log_dir, **kwargs)

    def write(self) -> None:
        for itr, scalars in self._new_scalars().items():
            for name, value in scalars.items():
                self._writer.add_scalar(name, value, itr)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class CommonMetricPrinter(EventWriter):
    """Logs one console line per write, e.g.
    ``eta: 0:01:40  iter: 19/100 (20.0%)  total_loss: 1.2  loss_bbox: 0.3  time: 1.0001  data_time: 0.0100
    lr: 0.0001  max_mem: 1234M`` (losses and times are medians of the last ``window_size`` values; the ETA
    uses the median step time, and needs ``max_iter``)."""

    def __init__(self, max_iter: int | None = None, window_size: int = 20):
        self.logger = logging.getLogger("detrkit.utils.events")
        self._max_iter = max_iter
        self._window_size = window_size

    def _eta(self, storage: EventStorage) -> str | None:
        if self._max_iter is None or "time" not in storage.histories():
            return None
        eta_seconds = storage.history("time").median(1000) * (self._max_iter - storage.iter - 1)
        storage.put_scalar("eta_seconds", eta_seconds, smoothing_hint=False)
        return str(datetime.timedelta(seconds=int(eta_seconds)))

    def write(self) -> None:
        storage = get_event_storage()
        iteration = storage.iter
        if self._max_iter is not None and iteration >= self._max_iter:
            return  # training completed: the last step's line was written already
        histories = storage.histories()
        parts = []
        eta = self._eta(storage)
        if eta is not None:
            parts.append(f"eta: {eta}")
        if self._max_iter:
            parts.append(
                f"iter: {iteration}/{self._max_iter} ({100.0 * (iteration + 1) / self._max_iter:.1f}%)"
            )
        else:
            parts.append(f"iter: {iteration}")
        parts += [f"{k}: {h.median(self._window_size):.4g}" for k, h in histories.items() if "loss" in k]
        for key in ("time", "data_time"):
            if key in histories:
                parts.append(f"{key}: {histories[key].median(self._window_size):.4f}")
        if "lr" in histories:
            parts.append(f"lr: {histories['lr'].latest():.5g}")
        if torch.cuda.is_available():
            parts.append(f"max_mem: {torch.cuda.max_memory_allocated() / 1024 / 1024:.0f}M")
        self.logger.info("  ".join(parts))
