"""Notebook layer: hygiene of the stored sources, then a papermill smoke run of every notebook."""

from __future__ import annotations

import json

import nbformat
import pytest

from salesman_utils.config import load_profile, paths
from salesman_utils.run import NOTEBOOK_DIR, discover, run_notebooks

NOTEBOOKS = discover(NOTEBOOK_DIR)


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
    assert "write_metrics(" in code[-1].source, "the last cell records results/metrics"


@pytest.fixture(scope="module")
def smoke_run():
    prof = load_profile("smoke")
    return prof, run_notebooks(prof)


@pytest.mark.notebooks
@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
def test_smoke_run_of_every_notebook(smoke_run):
    prof, manifest = smoke_run
    assert manifest["status"] == "ok"
    assert [e["notebook"] for e in manifest["notebooks"]] == [p.name for p in NOTEBOOKS]
    for nb_path in NOTEBOOKS:
        metrics = paths(prof).metrics / f"{nb_path.stem}.json"
        assert metrics.exists(), f"{nb_path.name} wrote no {metrics.name}"
        body = json.loads(metrics.read_text())
        assert body["profile"] == "smoke" and body["seed"] == prof.seed
