"""Loading of the compiled operators (``detrkit._C``) and what they provide."""

import functools
import warnings

import torch  # noqa: F401  (loads the libraries detrkit._C links against)

try:
    from detrkit import _C  # loading the library registers torch.ops.detrkit.*

    _LOAD_ERROR = None
    # "meta": the ops' fake kernels (detrkit._ops) compute output shapes for meta tensors.
    _KERNEL_DEVICES = frozenset([*_C.kernel_devices, "meta"])
except ImportError as error:  # the extension was not built: the pure-PyTorch references take over
    _LOAD_ERROR = error
    _KERNEL_DEVICES = frozenset()

if _LOAD_ERROR is None:
    # Fake kernels and autograd of the ops, for torch.compile / torch.export and for backward.
    from detrkit import _ops  # noqa: F401


def has_kernel(op: str, device_type: str) -> bool:
    """Whether ``torch.ops.detrkit.<op>`` has a compiled kernel for ``device_type`` ("cpu", "cuda", ...).

    Every op of ``detrkit._C`` is built for the same devices, which the extension reports itself
    (``detrkit._C.kernel_devices``); ``op`` names which one the caller needs.
    """
    return device_type in _KERNEL_DEVICES


def ops_info() -> dict:
    """What the compiled extension provides: ``{"cpu": bool, "cuda": bool, "error": str | None}``.

    ``cpu``/``cuda`` tell whether kernels for that device were built into ``detrkit._C``; ``error`` says why
    the extension could not be loaded (then both are False and the pure-PyTorch references are used).
    """
    return {
        "cpu": has_kernel("ms_deform_attn_forward", "cpu") and has_kernel("batched_nms", "cpu"),
        "cuda": has_kernel("ms_deform_attn_forward", "cuda") and has_kernel("batched_nms", "cuda"),
        "error": None if _LOAD_ERROR is None else str(_LOAD_ERROR),
    }


@functools.cache
def warn_reference_fallback(op: str, device_type: str) -> None:
    """Warns once per (op, device) that the pure-PyTorch reference replaces a missing compiled kernel."""
    reason = f" ({_LOAD_ERROR})" if _LOAD_ERROR is not None else ""
    warnings.warn(
        f"detrkit: no compiled {op} kernel for {device_type}{reason}; using the pure-PyTorch reference, "
        "which is slower and uses more memory. Rebuild with `make setup` (FORCE_CUDA=1 for CUDA kernels).",
        stacklevel=3,
    )
