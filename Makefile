# Two commands on a fresh machine:
#   make run    install everything into .venv and run the main job offline (default dataset); rerun: reprints it
#   make test   install everything into .venv and run the test suite
# torch is installed first and pinned by TORCH_SPEC (an unpinned torch pulls a CUDA build).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= test,plots,llm,optim
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install run test test-all lint clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

# rerunnable: --resume skips the finished runs (a complete result is printed again, not retrained)
run: install
	$(VENV)/bin/pyg-ham train --out runs/main.json --resume

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest -q --runslow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) *.egg-info

lint: install
	$(PY) -m pip install -q "ruff>=0.6" "mypy>=1.10"
	$(PY) -m ruff check .
	$(PY) -m mypy pyg_ham/optim pyg_ham/sampling
