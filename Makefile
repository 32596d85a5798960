# Two commands do all the set-up on a fresh machine:
#   make demo   - installs the package (runtime dependencies only) into .venv, then runs the offline demo against
#                 the bundled SCRIPTED endpoint
#   make test   - installs the package with its dev extras into .venv, then runs the test suite (CPU, Triton
#                 interpreter)
# Editing pyproject.toml or setup.py re-installs on the next make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH := torch==2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
# A torch that can run KernelAgent (pyproject says torch>=2.5); exits 1 when there is none.
HAS_TORCH := import sys, torch; sys.exit(tuple(map(int, torch.__version__.split('.')[:2])) < (2, 5))
HAS_CUDA_TORCH := import sys, torch; sys.exit(not torch.cuda.is_available())

.PHONY: setup demo test lint

setup: $(TEST_STAMP)

# The venv sees the system's packages when the system python already has a CUDA torch: that torch (and its triton)
# is kept, never replaced by a CPU wheel.
$(PY):
	if $(PYTHON) -c "$(HAS_CUDA_TORCH)" 2>/dev/null; then \
	  echo "using the system's CUDA torch (venv with --system-site-packages)"; \
	  $(PYTHON) -m venv --system-site-packages $(VENV); \
	else $(PYTHON) -m venv $(VENV); fi
	$(PY) -m pip install -q --upgrade pip

# torch first, pinned: a usable torch already importable (a CUDA build on a GPU machine) is kept; else torch==2.13.0
# from the configured index (this workplace's mirror has the CPU build), else the same version from PyTorch's CPU
# index. Never an unpinned `torch`: on a CPU machine pip would pull a multi-GB CUDA build.
$(DEMO_STAMP): pyproject.toml setup.py $(PY)
	if $(PY) -c "$(HAS_TORCH)" 2>/dev/null; then \
	  $(PY) -c "import torch; print('keeping torch', torch.__version__, '(cuda)' if torch.cuda.is_available() else '')"; \
	else \
	  $(PY) -m pip install -q $(TORCH) || $(PY) -m pip install -q $(TORCH) --index-url $(TORCH_CPU_INDEX); \
	fi
	$(PY) -m pip install -q -e .
	touch $(DEMO_STAMP)

# The dev extras (pytest, ruff, ray, langgraph-cli) and the published Triton read by tests/thirdparty, with --no-deps
# (their dependencies would pull a CUDA torch).
$(TEST_STAMP): $(DEMO_STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps liger-kernel==0.8.5 unsloth==2026.10.9 fla-core==0.6.0 flag-gems==5.0.2
	touch $(TEST_STAMP)

demo: $(DEMO_STAMP)
	$(PY) cli.py demo

test: $(TEST_STAMP)
	$(PY) -m pytest -q

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
