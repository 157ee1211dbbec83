"""Shared fixtures: one loaded embedded chat model and embedder for the whole session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def smoke_profile():
    from salesman_utils.config import load_profile

    return load_profile("smoke")


@pytest.fixture(scope="session")
def chat_backend(tmp_path_factory):
    """The embedded SmolLM2-135M-Instruct behind a local backend with a throwaway cache."""
    from salesman_utils.llm import make_backend

    cache = tmp_path_factory.mktemp("llm-cache") / "llm.sqlite"
    return make_backend({"kind": "local", "batch_size": 8}, cache_path=cache)


@pytest.fixture(scope="session")
def embedder():
    from salesman_utils.models import load_embedder

    return load_embedder(None)


@pytest.fixture()
def merchant():
    """A hand-made merchant with visible store metrics (shared by the DOGA and referee tests)."""
    from salesman_utils.world.simulator import MerchantProfile

    return MerchantProfile(
        "m1",
        "Rosa's Noodles",
        "Rosa",
        "restaurant",
        "Springfield",
        metrics={"monthly_orders": 812, "rating": 4.3, "exposure": 3120, "conversion": 3.1},
        peer_medians={"monthly_orders": 1100, "rating": 4.5, "exposure": 4100, "conversion": 4.0},
    )


# The unit files that took longest (summed `--durations=0` of `make unit`, seconds): test_doga 50,
# test_planner 38, test_training 30, test_bayes 21, test_run 15, test_serve 14. Re-measure:
# .venv/bin/python -m pytest -n 2 -m "not notebooks" --durations=0, summed per file.
SLOW_UNITS = (
    "test_doga.py",
    "test_planner.py",
    "test_training.py",
    "test_bayes.py",
    "test_run.py",
    "test_serve.py",
)


def pytest_collection_modifyitems(config, items):
    """The order of the test files, for `make test` (`-n 2 --dist loadfile
    --no-loadscope-reorder`: a file's tests stay on one worker, in order, and the files are handed
    out in this order, each to the first worker with two tests or fewer left).
    - `test_notebooks.py` (notebooks 01, 02 and 04: the long chain, about 5 minutes) goes first and
      keeps one worker;
    - the slowest unit files (`SLOW_UNITS`, about 2.5 minutes) fill the other worker;
    - `test_notebooks_late.py` (notebooks 03 and 05) comes next: that worker runs 03 while 02 is
      still running and 05 beside 04 (`smoke_chain.py`), waiting on 02 if it gets there first;
    - the other unit files, in their order, fill both workers at the end, short ones last;
    - `test_notebooks_checks.py` (reads all five notebooks' outputs) goes last."""
    first, late, checks = "test_notebooks.py", "test_notebooks_late.py", "test_notebooks_checks.py"
    units = [i.path.name for i in items if i.path.name not in {first, late, checks}]
    rest = [name for name in dict.fromkeys(units) if name not in SLOW_UNITS]
    order = [first, *SLOW_UNITS, late, *rest, checks]
    place = {name: k for k, name in enumerate(order)}
    items.sort(key=lambda item: place.get(item.path.name, len(order)))
