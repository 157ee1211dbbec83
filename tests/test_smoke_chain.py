"""The smoke run's scheduler (`smoke_chain.ensure`): upstream notebooks first, each notebook once
per session whichever worker asks, a failure reported downstream, a stale marker ignored."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
import smoke_chain

from salesman_utils.run import NotebookFailed


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """`run_notebooks` replaced by one that records the order and takes a little time."""
    ran: list[str] = []
    failing: set[str] = set()

    def run_notebooks(profile, only):
        (nb,) = only
        ran.append(nb)
        time.sleep(0.05)
        if nb in failing:
            raise NotebookFailed("boom", cell=3, error="ValueError: planted")
        return {"notebooks": [{"notebook": f"{nb}_x.ipynb", "status": "ok"}]}

    monkeypatch.setattr(smoke_chain, "run_notebooks", run_notebooks)
    monkeypatch.setattr(smoke_chain, "paths", lambda prof: SimpleNamespace(artifacts=tmp_path))
    return SimpleNamespace(ran=ran, failing=failing)


def test_upstream_first_and_each_notebook_once(fake):
    assert smoke_chain.ensure(None, "04", "s1")["status"] == "ok"
    assert fake.ran == ["01", "02", "03", "04"]
    smoke_chain.ensure(None, "05", "s1")
    assert fake.ran == ["01", "02", "03", "04", "05"]  # 01-03 not again in this session


def test_two_workers_at_once_run_each_notebook_once(fake):
    threads = [
        threading.Thread(target=smoke_chain.ensure, args=(None, nb, "s1")) for nb in ("04", "05")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(fake.ran) == ["01", "02", "03", "04", "05"]
    order = fake.ran.index
    assert order("02") < order("04") and order("03") < order("05")


def test_another_sessions_marker_is_stale(fake):
    smoke_chain.ensure(None, "01", "s1")
    smoke_chain.ensure(None, "01", "s2")
    assert fake.ran == ["01", "01"]


def test_an_upstream_failure_is_reported_downstream(fake):
    fake.failing.add("02")
    entry = smoke_chain.ensure(None, "04", "s1")
    assert entry["status"] == "upstream failed" and entry["upstream"]["status"] == "failed"
    assert entry["upstream"]["error"] == "ValueError: planted" and "04" not in fake.ran


def test_a_half_written_marker_is_stale_and_a_runner_error_is_recorded(fake, tmp_path, monkeypatch):
    (tmp_path / "smoke-session").mkdir()
    (tmp_path / "smoke-session" / "01.json").write_text('{"session": "s1", "ent')
    assert smoke_chain.ensure(None, "01", "s1")["status"] == "ok" and fake.ran == ["01"]

    def broken(profile, only):
        raise RuntimeError("kernel died")

    monkeypatch.setattr(smoke_chain, "run_notebooks", broken)
    entry = smoke_chain.ensure(None, "02", "s1")
    assert entry["status"] == "failed" and "kernel died" in entry["error"]
    assert smoke_chain.ensure(None, "02", "s1") == entry  # recorded: not run again
