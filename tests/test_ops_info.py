"""What the compiled extension reports about itself."""

import os

import torch

import detrkit


def test_ops_info_reports_the_built_kernels():
    info = detrkit.ops_info()
    assert set(info) == {"cpu", "cuda", "error"}
    assert info["cpu"] == hasattr(torch.ops.detrkit, "ms_deform_attn_forward")
    if os.environ.get("FORCE_CUDA") == "1":
        # CI builds with FORCE_CUDA=1: the CUDA kernels must have been compiled and registered.
        assert info["cpu"] and info["cuda"], info
