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


def pytest_collection_modifyitems(config, items):
    """The order of the test files, for `make test` (`-n 2 --dist loadfile
    --no-loadscope-reorder`: a file's tests stay on one worker, in order, and the files are handed
    out in this order). `test_notebooks.py` (notebooks 01-04, one long chain) goes first, on one
    worker, while the unit tests fill the other; `test_notebooks_late.py` (notebook 05 and the
    checks of all five) goes halfway through the unit files, so the other worker runs notebook 05
    beside 04, waiting on 02 and 03 if it gets there first (`smoke_chain.py`: a wait that leaves
    both cores to the notebooks), and the unit files after it fill both workers at the end;
    `test_notebooks_checks.py` (reads all five notebooks' outputs) goes last. Stable otherwise (the
    order of files is kept)."""
    first, late, checks = "test_notebooks.py", "test_notebooks_late.py", "test_notebooks_checks.py"
    units = [i.path.name for i in items if i.path.name not in {first, late, checks}]
    half = {name: k for k, name in enumerate(dict.fromkeys(units))}
    place = {first: -1.0, late: len(half) / 2 - 0.5, checks: len(half)}
    items.sort(key=lambda item: place.get(item.path.name, half.get(item.path.name, 0)))
