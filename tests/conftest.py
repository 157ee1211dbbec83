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
    """The notebook smoke run first: it is one long chain on one xdist worker (`make test` runs
    `-n 2 --dist loadfile --no-loadscope-reorder`), so starting it first lets the unit tests fill the other core instead
    of leaving the chain alone at the end. Stable otherwise (the order of files is kept)."""
    items.sort(key=lambda item: item.get_closest_marker("notebooks") is None)
