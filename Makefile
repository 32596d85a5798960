# Two commands do all the set-up on a fresh machine:
#   make demo   - installs into .venv, then runs the offline demo against the bundled SCRIPTED endpoint
#   make test   - installs into .venv, then runs the test suite (CPU, Triton interpreter)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint

setup: $(STAMP)

# torch==2.13.0 first: a CPU build this workplace's pip has on disk. Unpinned, pip would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 || $(PY) -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps liger-kernel==0.8.5 unsloth==2026.10.9 fla-core==0.6.0 flag-gems==5.0.2  # tests/thirdparty
	touch $(STAMP)

demo: $(STAMP)
	$(PY) cli.py demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
