"""Process environment: random seeds and a summary of the software and devices for the log."""

import logging
import os
import platform
import random
import sys
from datetime import datetime

import numpy as np
import torch
import torchvision

from detrkit import __version__, ops_info

__all__ = ["collect_env_info", "seed_all_rng"]


def seed_all_rng(seed: int | None = None) -> int:
    """Seeds Python's, NumPy's and torch's random generators (and ``PYTHONHASHSEED`` for subprocesses).

    Args:
        seed: the seed; None draws one from the process id, the time and ``os.urandom``.
    Returns:
        the seed used.
    """
    if seed is None:
        seed = (
            os.getpid() + int(datetime.now().strftime("%S%f")) + int.from_bytes(os.urandom(2), "big")
        ) % 2**31
        logging.getLogger(__name__).info(f"Using a generated random seed {seed}")
    np.random.seed(seed)  # noqa: NPY002 (the global generator is the one data pipelines draw from)
    torch.manual_seed(seed)
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed


def collect_env_info() -> str:
    """A few lines naming Python, torch, torchvision, the compiled detrkit ops and the visible GPUs."""
    lines = [
        f"sys.platform: {sys.platform} ({platform.platform()})",
        f"Python: {sys.version.split()[0]}",
        f"numpy: {np.__version__}",
        f"detrkit: {__version__}, compiled ops: {ops_info()}",
        f"PyTorch: {torch.__version__} (CUDA {torch.version.cuda}), torchvision: {torchvision.__version__}",
        f"CPU threads: {torch.get_num_threads()}",
    ]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            lines.append(f"GPU {index}: {torch.cuda.get_device_name(index)}")
    else:
        lines.append("GPU: none available")
    return "\n".join(lines)
