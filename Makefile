# Two commands on a fresh machine: `make run` and `make test` (each sets everything up first).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
FMNIST := /usr/share/datasets/fashion-mnist
CONFIG ?= configs/default.yaml

.PHONY: run test bench lint clean setup data data-optional help

help:
	@echo "make run    set up, train $(CONFIG) on Fashion-MNIST, evaluate on the test set"
	@echo "make test   set up and run the test suite"
	@echo "make bench  convtrain vs PyTorch on this CPU (installs torch==2.13.0, CPU build)"
	@echo "make lint   ruff over the code     make clean   remove venv, caches, runs"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[viz]'
	touch $@

# the test suite's extras: pytest, and onnx + onnxruntime and dask distributed for the export
# and sweep tests (optional for users: `pip install 'convtrain[onnx,cluster]'`)
$(VENV)/.test-extras: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test,viz,onnx,cluster]'
	touch $@

setup: $(VENV)/.installed

# Fashion-MNIST from Debian's dataset-fashion-mnist package (no network access at run time).
data:
	@sh scripts/ensure-data.sh

data-optional:
	@sh scripts/ensure-data.sh || echo "(tests that need Fashion-MNIST will be skipped)"

run: setup data
	$(VENV)/bin/convtrain fit $(CONFIG) --resume auto
	$(VENV)/bin/convtrain eval runs/$$($(PY) -c "import convtrain.config as c; print(c.load('$(CONFIG)').name)")/best.npz

test: $(VENV)/.test-extras data-optional
	$(PY) -m pytest

$(VENV)/.bench: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	touch $@

bench: $(VENV)/.bench data
	$(PY) -m benchmarks.run

lint: $(VENV)/.test-extras
	$(PY) -m pip install -q ruff==0.17.6
	$(VENV)/bin/ruff check convtrain tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . \( -name '*.nbi' -o -name '*.nbc' \) -delete
