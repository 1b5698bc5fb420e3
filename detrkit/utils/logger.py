"""Logging set-up with detectron2's names: console output on the main process, a log file per process."""

import functools
import logging
import os
import sys
import time

from termcolor import colored

__all__ = ["log_every_n_seconds", "setup_logger"]

_FILE_FORMAT = "[%(asctime)s] %(name)s %(levelname)s: %(message)s"
_DATE_FORMAT = "%m/%d %H:%M:%S"


class _ColorfulFormatter(logging.Formatter):
    """Short logger names and a coloured WARNING/ERROR tag for the console."""

    def __init__(self, *args, root_name: str, abbrev_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._root_name = root_name + "."
        self._abbrev_name = abbrev_name + "." if abbrev_name else ""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging.Formatter's name)
        short_name = record.name.replace(self._root_name, self._abbrev_name)
        # a copy: the record is shared with the other handlers (the log file keeps the full name)
        message = super().formatMessage(logging.makeLogRecord({**record.__dict__, "name": short_name}))
        if record.levelno == logging.WARNING:
            return colored("WARNING", "red", attrs=["blink"]) + " " + message
        if record.levelno >= logging.ERROR:
            return colored("ERROR", "red", attrs=["blink", "underline"]) + " " + message
        return message


@functools.lru_cache  # a second call with the same arguments must not add duplicate handlers
def setup_logger(
    output: str | None = None,
    distributed_rank: int = 0,
    *,
    color: bool = True,
    name: str = "detrkit",
    abbrev_name: str | None = None,
    enable_propagation: bool = False,
    configure_stdout: bool = True,
) -> logging.Logger:
    """Configures logger ``name`` at DEBUG level.

    Args:
        output: a ``.txt``/``.log`` file, or a folder (the log goes to ``output/log.txt``); processes other
            than rank 0 write to ``<file>.rank<r>``. None: no file.
        distributed_rank: only rank 0 logs to stdout.
        color: coloured WARNING/ERROR tags on the console.
        name: the logger to configure (the root of a package's loggers, e.g. "detrkit" or "fvcore").
        abbrev_name: shorter name shown on the console instead of ``name`` (default: "dk" for "detrkit").
        enable_propagation: also pass records on to the root logger.
        configure_stdout: add the console handler (on rank 0).
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = enable_propagation
    if abbrev_name is None:
        abbrev_name = "dk" if name == "detrkit" else name

    if configure_stdout and distributed_rank == 0:
        handler = logging.StreamHandler(stream=sys.stdout)
        handler.setLevel(logging.DEBUG)
        if color:
            formatter = _ColorfulFormatter(
                colored("[%(asctime)s %(name)s]: ", "green") + "%(message)s",
                datefmt=_DATE_FORMAT,
                root_name=name,
                abbrev_name=abbrev_name,
            )
        else:
            formatter = logging.Formatter(_FILE_FORMAT, datefmt=_DATE_FORMAT)
        handler.setFormatter(formatter)
        logger.addHandler(handler)

    if output is not None:
        filename = output if output.endswith((".txt", ".log")) else os.path.join(output, "log.txt")
        if distributed_rank > 0:
            filename = f"{filename}.rank{distributed_rank}"
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        handler = logging.FileHandler(filename, mode="a")
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(logging.Formatter(_FILE_FORMAT, datefmt=_DATE_FORMAT))
        logger.addHandler(handler)
    return logger


_LAST_LOGGED: dict[tuple, float] = {}


def log_every_n_seconds(lvl: int, msg: str, n: float = 1, *, name: str | None = None) -> None:
    """Logs ``msg`` at level ``lvl`` at most once every ``n`` seconds per calling line.

    Args:
        name: logger name; default: the calling module's ``__name__``.
    """
    frame = sys._getframe(1)
    key = (frame.f_code.co_filename, frame.f_lineno)
    now = time.time()
    if now - _LAST_LOGGED.get(key, -float("inf")) >= n:
        logging.getLogger(name or frame.f_globals.get("__name__", "detrkit")).log(lvl, msg)
        _LAST_LOGGED[key] = now
