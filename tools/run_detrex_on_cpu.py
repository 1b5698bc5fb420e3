#!/usr/bin/env python
"""Runs a detrex (or detectron2) script on a machine without a GPU, unchanged:

    python tools/run_detrex_on_cpu.py <detrex>/tools/train_net.py --config-file F [train.device=cpu ...]

detrex hard-codes CUDA in a few places that a CPU run reaches: ``.cuda()`` and ``.to("cuda")`` on tensors
(DINO's denoising and criterion), and the ``assert torch.cuda.is_available()`` at the top of its
``Trainer.run_step``. For this process only, and without editing any file, this wrapper maps them to the CPU:

- ``Tensor.cuda()`` and ``Module.cuda()`` return the object unchanged (it stays on the CPU);
- ``Tensor.to(...)`` with a CUDA device moves to the CPU instead;
- ``torch.cuda.is_available()`` answers True when a ``run_step`` outside detrkit asks (the trainer's
  assertion), and the truth everywhere else, so the rest of the program still knows there is no GPU.

Give detrex's own configs ``train.device=cpu model.device=cpu`` (they copy the device at load time); detrkit's
configs already default to the CPU without a GPU. A GPU user needs none of this.
"""

import os
import runpy
import sys
from contextlib import contextmanager

import torch

import detrkit

__all__ = ["cuda_mapped_to_cpu"]

_DETRKIT_DIR = os.path.dirname(os.path.abspath(detrkit.__file__))


def _cpu(device):
    """``device`` with CUDA replaced by the CPU (other values unchanged)."""
    if isinstance(device, str) and device.startswith("cuda"):
        return "cpu"
    if isinstance(device, torch.device) and device.type == "cuda":
        return torch.device("cpu")
    return device


@contextmanager
def cuda_mapped_to_cpu():
    """Within the block, CUDA requests run on the CPU as described in the module docstring."""
    tensor_to, tensor_cuda, module_cuda = torch.Tensor.to, torch.Tensor.cuda, torch.nn.Module.cuda
    is_available = torch.cuda.is_available

    def to(self, *args, **kwargs):
        if "device" in kwargs:
            kwargs["device"] = _cpu(kwargs["device"])
        return tensor_to(self, *(_cpu(a) for a in args), **kwargs)

    def trainer_sees_a_gpu() -> bool:
        caller = sys._getframe(1).f_code
        return (caller.co_name == "run_step" and not caller.co_filename.startswith(_DETRKIT_DIR)) or (
            is_available()
        )

    torch.Tensor.to = to
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    torch.cuda.is_available = trainer_sees_a_gpu
    try:
        yield
    finally:
        torch.Tensor.to, torch.Tensor.cuda, torch.nn.Module.cuda = tensor_to, tensor_cuda, module_cuda
        torch.cuda.is_available = is_available


def main() -> None:
    if len(sys.argv) < 2 or not sys.argv[1].endswith(".py"):
        sys.exit(f"usage: {sys.argv[0]} SCRIPT.py [its arguments ...]")
    script = os.path.abspath(sys.argv[1])
    if not os.path.isfile(script):
        sys.exit(f"{sys.argv[0]}: no such script: {script}")
    sys.argv = [script, *sys.argv[2:]]
    sys.path.insert(0, os.path.dirname(script))
    with cuda_mapped_to_cpu():
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
