"""Builds detrkit and its compiled operators, the extension module ``detrkit._C`` (sources in ``ops/``).

The CPU kernels are always built. The CUDA kernels are built when CUDA is usable, or when ``FORCE_CUDA=1``
(with ``CUDA_HOME`` pointing at a CUDA toolkit and ``TORCH_CUDA_ARCH_LIST`` naming the target architectures),
which is how CI compiles them on a machine without a GPU.
"""

import glob
import os

import torch
from setuptools import find_packages, setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension


def build_cuda() -> bool:
    if os.environ.get("FORCE_CUDA", "0") == "1":
        if CUDA_HOME is None:
            raise RuntimeError(
                "FORCE_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME (e.g. /usr/local/cuda)"
            )
        return True
    return torch.cuda.is_available() and CUDA_HOME is not None


def extension():
    sources = sorted(glob.glob("ops/**/*.cpp", recursive=True))
    # -fopenmp makes at::parallel_for parallel in our kernels (torch's ATen backend is OpenMP; the runtime,
    # libgomp.so.1, is the one torch has already loaded).
    cxx_flags = ["-O3", "-fopenmp", "-DDETRKIT_OPENMP_SIMD"]
    link_flags = ["-fopenmp"]
    if not build_cuda():
        print("detrkit: building the CPU kernels only")
        return CppExtension(
            "detrkit._C", sources, extra_compile_args={"cxx": cxx_flags}, extra_link_args=link_flags
        )
    print(
        f"detrkit: building the CPU and CUDA kernels (CUDA_HOME={CUDA_HOME}, "
        f"TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', 'auto')})"
    )
    sources += sorted(glob.glob("ops/**/*.cu", recursive=True))
    # No --fmad=false: only the NMS IoU must round like the CPU's, and it does so itself (ops/nms/nms.h); the
    # other kernels may fuse multiply-adds. With DETRKIT_WITH_CUDA, detrkit._C reports its CUDA kernels.
    nvcc_flags = ["-O3"]
    return CUDAExtension(
        "detrkit._C",
        sources,
        extra_compile_args={"cxx": [*cxx_flags, "-DDETRKIT_WITH_CUDA"], "nvcc": nvcc_flags},
        extra_link_args=link_flags,
    )


def packages() -> list[str]:
    """``detrkit`` and the paper projects: the folder ``projects/`` installs as ``detrkit_projects``, a name
    no other project uses (detrex's own ``projects`` namespace stays importable beside it)."""
    projects = [f"detrkit_projects.{name}" for name in find_packages("projects")]
    return find_packages(include=["detrkit", "detrkit.*"]) + ["detrkit_projects", *projects]


setup(
    packages=packages(),
    package_dir={"detrkit_projects": "projects"},
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
