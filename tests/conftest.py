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
    """The notebook smoke run first and last: `make test` runs `-n 2 --dist loadfile
    --no-loadscope-reorder`, which keeps a file's tests on one worker, in order, and the files in
    this order. `test_notebooks.py` (notebooks 01-04, one long chain) starts first on one worker
    while the unit tests fill the other; `test_notebooks_late.py` (notebook 05 and the checks of
    all five) comes last, so the worker that finishes the unit tests runs 05 beside 04
    (`smoke_chain.py`). Stable otherwise (the order of files is kept)."""
    place = {"test_notebooks.py": 0, "test_notebooks_late.py": 2}
    items.sort(key=lambda item: place.get(item.path.name, 1))
