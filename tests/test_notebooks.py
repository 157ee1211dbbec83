"""Notebook layer: the papermill smoke run of notebooks 01, 02 and 04, then the hygiene of every
stored notebook source."""

from __future__ import annotations

import nbformat
import pytest
from smoke_chain import NOTEBOOKS, check_smoke_run, run_id

# The smoke run of notebooks 01, 02 and 04, one test each, in order, on one worker (the long chain);
# 03 and 05 are in test_notebooks_late.py, which the other worker runs after the slowest unit
# tests (conftest.py, tests/smoke_chain.py). These three come before the hygiene tests below: while
# a worker has more than two tests left in its file, pytest-xdist hands it no other file, so this
# worker takes on no unit file that the other one then waits for.
CHAIN = [p for p in NOTEBOOKS if p.stem[:2] in {"01", "02", "04"}]


@pytest.mark.parametrize("nb_path", CHAIN, ids=[p.stem for p in CHAIN])
@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
@pytest.mark.notebooks
def test_smoke_run_of_notebook(nb_path, smoke_profile, request):
    check_smoke_run(smoke_profile, nb_path, run_id(request.config))


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_source_notebook_is_clean(nb_path):
    nb = nbformat.read(str(nb_path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "stored with outputs"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "needs exactly one papermill `parameters` cell"
    assert nb.cells.index(params[0]) <= 2, "the parameters cell belongs near the top"
    assert 'profile: str = "' in params[0].source
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "!pip" not in "".join(c.source for c in code)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    # the notebook ends by recording results/metrics, then says what its run shows from them
    assert "notebook_findings(" in code[-1].source, "the last cell shows the generated findings"
    assert "write_metrics(" in code[-2].source, "the cell before it records results/metrics"
