"""Reading checkpoint files without running code from them.

Unpickling can call any importable function (``os.system`` included), so a downloaded ``.pth`` or ``.pkl`` is
read with an allow-list: tensors, numpy arrays and scalars, and plain containers (dict, list, tuple,
OrderedDict, set). PyTorch zip checkpoints go through ``torch.load(weights_only=True)`` with the numpy
globals added; plain pickles (detectron2's ``.pkl``) through :class:`RestrictedUnpickler`. A file that needs
anything else is refused with :class:`UnsafePickleError` naming what it asked for, unless the caller trusts
it: ``trust_pickle=True`` (``tools/convert_checkpoint.py --trust-pickle``) or the environment variable
``DETRKIT_TRUST_PICKLE=1`` (every other path: ``DetectionCheckpointer``, ``train.init_checkpoint``,
``load_backbone_weights``); a trusted file is unpickled in full, with a warning.
"""

import codecs
import contextlib
import functools
import io
import logging
import os
import pickle
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

__all__ = [
    "TRUST_PICKLE_ENV",
    "CheckpointFormatError",
    "RestrictedUnpickler",
    "UnsafePickleError",
    "load_checkpoint_file",
]

logger = logging.getLogger(__name__)

#: set to 1 to unpickle checkpoints that hold more than tensors, arrays and containers
TRUST_PICKLE_ENV = "DETRKIT_TRUST_PICKLE"

_NUMPY_CORE = np._core if hasattr(np, "_core") else np.core

#: numpy's pickling globals, under the module names of numpy 2 (``numpy._core``) and numpy 1 (``numpy.core``)
_NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    **{
        (f"{package}.{module}", name): getattr(getattr(_NUMPY_CORE, module), name)
        for package in ("numpy._core", "numpy.core")
        for module, name in (
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
            ("numeric", "_frombuffer"),
        )
    },
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **_NUMPY_GLOBALS,
    ("collections", "OrderedDict"): OrderedDict,
    **{(module, "set"): set for module in ("builtins", "__builtin__")},  # Python 3, Python 2 / protocol 2
    **{(module, "frozenset"): frozenset for module in ("builtins", "__builtin__")},
    ("_codecs", "encode"): codecs.encode,  # bytes in protocol-2 pickles
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
}


class UnsafePickleError(pickle.UnpicklingError):
    """A checkpoint file asks to unpickle something other than tensors, numpy arrays and containers."""

    def __init__(self, path: str, names: list[str]):
        self.path, self.names = path, names
        super().__init__(
            f"{path}: refusing to unpickle {', '.join(names)}: checkpoints are read with an allow-list "
            "(tensors, numpy arrays, plain containers) because unpickling anything else can run arbitrary "
            "code. If you trust where the file comes from, allow it with --trust-pickle "
            f"(tools/convert_checkpoint.py) or {TRUST_PICKLE_ENV}=1."
        )


def _storage_from_bytes(path: str, data: bytes) -> Any:
    """``torch.storage._load_from_bytes`` (how a plainly pickled tensor stores its data), weights only."""
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except pickle.UnpicklingError:
        raise UnsafePickleError(path, ["objects outside the allow-list inside a tensor's storage"]) from None


class CheckpointFormatError(ValueError):
    """A file that is neither a PyTorch checkpoint nor a pickle, or a PyTorch checkpoint that cannot be read.

    Attributes:
        path: the file.
        reason: what went wrong.
    """

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals are limited to tensors, numpy arrays/scalars and containers;
    anything else raises :class:`UnsafePickleError` before it is imported or called."""

    def __init__(self, file, path: str, **kwargs):
        super().__init__(file, **kwargs)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return functools.partial(_storage_from_bytes, self.path)
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        raise UnsafePickleError(self.path, [f"{module}.{name}"])


def _trusted(trust_pickle: bool | None) -> bool:
    if trust_pickle is not None:
        return trust_pickle
    return os.environ.get(TRUST_PICKLE_ENV, "").lower() in ("1", "true", "yes")


def _warn_trusted(path: str, names: list[str]) -> None:
    logger.warning(f"{path}: unpickling {', '.join(names)} because the file is trusted (full unpickling)")


def _torch_load_weights(path: str) -> Any:
    """``torch.load(weights_only=True)`` admitting numpy arrays (torch >= 2.5; before, tensors only)."""
    numpy_globals = [(obj, f"{module}.{name}") for (module, name), obj in _NUMPY_GLOBALS.items()]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 pickles dtypes by class
    numpy_globals += [getattr(dtypes, name) for name in dir(dtypes) if dtypes and name.endswith("DType")]
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    with safe_globals(numpy_globals) if safe_globals else contextlib.nullcontext():
        return torch.load(path, map_location="cpu", weights_only=True)


def _is_zip(path: str) -> bool:
    """Whether ``path`` starts like ``torch.save``'s zip format (``zipfile.is_zipfile`` also accepts a pickle
    that merely ends with zip bytes)."""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _blocked_globals(path: str) -> list[str]:
    """The globals of a zip checkpoint outside the allow-list (torch >= 2.5 lists them)."""
    if not _is_zip(path) or not hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):
        return ["objects outside torch's weights_only allow-list"]
    allowed = {f"{module}.{name}" for module, name in _NUMPY_GLOBALS}
    return [n for n in torch.serialization.get_unsafe_globals_in_checkpoint(path) if n not in allowed]


def _load_torch(path: str, trust_pickle: bool | None) -> Any:
    """A ``torch.save`` file (zip, or the legacy format of torch < 1.6)."""
    try:
        return _torch_load_weights(path)
    except pickle.UnpicklingError as e:
        names = _blocked_globals(path)
        if not names:
            raise CheckpointFormatError(path, f"cannot read this PyTorch checkpoint: {e}") from e
        if not _trusted(trust_pickle):
            raise UnsafePickleError(path, names) from None
        _warn_trusted(path, names)
        return torch.load(path, map_location="cpu", weights_only=False)


def _load_pickle(path: str, trust_pickle: bool | None) -> Any:
    """A plain pickle (detectron2's ``.pkl``; latin1 for Python 2 ones)."""
    with open(path, "rb") as f:
        try:
            loaded = RestrictedUnpickler(f, path, encoding="latin1").load()
        except UnsafePickleError as e:
            if not _trusted(trust_pickle):
                raise
            _warn_trusted(path, e.names)
            f.seek(0)
            return pickle.load(f, encoding="latin1")
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
            raise CheckpointFormatError(
                path, f"neither a PyTorch checkpoint nor a pickle file ({type(e).__name__}: {e})"
            ) from e
    if type(loaded) is int and loaded == torch.serialization.MAGIC_NUMBER:  # torch < 1.6's format
        return _load_torch(path, trust_pickle)
    return loaded


def load_checkpoint_file(path: str | os.PathLike, trust_pickle: bool | None = None) -> Any:
    """The object saved in ``path``: a PyTorch checkpoint (``torch.save``'s zip format) or a plain pickle
    (detectron2's ``.pkl``), loaded on the CPU.

    Args:
        trust_pickle: unpickle objects beyond the allow-list (with a warning); ``None`` reads
            ``DETRKIT_TRUST_PICKLE``.

    Raises:
        UnsafePickleError: the file asks for other globals and is not trusted (nothing of it was run).
        CheckpointFormatError: the file is neither format (e.g. a text file), naming it.
    """
    path = os.fspath(path)
    if _is_zip(path):
        return _load_torch(path, trust_pickle)
    return _load_pickle(path, trust_pickle)
