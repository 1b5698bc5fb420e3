"""What the compiled extension reports about itself. Without the extension the ops tests skip, so under CI
(``CI=true``, as CI services set it, or ``DETRKIT_REQUIRE_OPS=1``) a missing CPU extension fails here."""

import os

import torch

import detrkit


def ops_required() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1") or os.environ.get("DETRKIT_REQUIRE_OPS") == "1"


def test_ops_info_reports_the_built_kernels():
    info = detrkit.ops_info()
    assert set(info) == {"cpu", "cuda", "error"}
    assert info["cpu"] == hasattr(torch.ops.detrkit, "ms_deform_attn_forward")
    if ops_required():
        assert info["cpu"] and info["error"] is None, f"CI needs the compiled CPU kernels: {info}"
    if os.environ.get("FORCE_CUDA") == "1":
        # CI builds with FORCE_CUDA=1: the CUDA kernels must have been compiled and registered.
        assert info["cpu"] and info["cuda"], info
