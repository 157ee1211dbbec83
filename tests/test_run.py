"""The papermill runner: order, parameters, executed copies, failure naming, manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from salesman_utils.config import load_profile
from salesman_utils.run import NotebookFailed, discover, main, run_notebooks

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"


@pytest.fixture
def nb_dir(tmp_path):
    folder = tmp_path / "notebooks"
    shutil.copytree(FIXTURES, folder)
    return folder


def test_discover_orders_and_filters(nb_dir):
    assert [p.name for p in discover(nb_dir)] == ["01_ok.ipynb", "02_fails.ipynb"]
    assert [p.name for p in discover(nb_dir, only=["02"])] == ["02_fails.ipynb"]
    with pytest.raises(SystemExit, match="07"):
        discover(nb_dir, only=["07"])


def test_runner_executes_copies_and_writes_manifest(nb_dir, tmp_path):
    prof = load_profile("smoke")
    source_before = (nb_dir / "01_ok.ipynb").read_text()
    manifest = run_notebooks(prof, only=["01"], notebook_dir=nb_dir, results_dir=tmp_path / "res")
    assert (nb_dir / "ran_ok.txt").read_text() == "smoke"  # the profile reached the parameters
    assert (nb_dir / "01_ok.ipynb").read_text() == source_before  # never executed in place
    executed = json.loads((tmp_path / "res" / "notebooks" / "01_ok.ipynb").read_text())
    assert any(c["cell_type"] == "code" and c.get("execution_count") for c in executed["cells"])
    on_disk = json.loads((tmp_path / "res" / "run_manifest.json").read_text())
    assert on_disk == manifest
    assert on_disk["status"] == "ok" and on_disk["profile"] == "smoke"
    assert on_disk["notebooks"][0]["notebook"] == "01_ok.ipynb"
    assert on_disk["notebooks"][0]["wall_s"] >= 0
    assert on_disk["packages"]["papermill"] and on_disk["seeds"]["seed"] == prof.seed
    assert "commit" in on_disk["git"]


def test_runner_names_notebook_and_cell_on_failure(nb_dir, tmp_path):
    prof = load_profile("smoke")
    with pytest.raises(NotebookFailed) as err:
        run_notebooks(prof, notebook_dir=nb_dir, results_dir=tmp_path / "res")
    msg = str(err.value)
    assert "02_fails.ipynb" in msg and "cell 4" in msg and "planted failure" in msg
    assert "raise ValueError" in msg
    manifest = json.loads((tmp_path / "res" / "run_manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert [e["status"] for e in manifest["notebooks"]] == ["ok", "failed"]


def test_cli_exits_nonzero_on_failure(nb_dir, tmp_path, monkeypatch, capsys):
    import salesman_utils.run as run_mod

    monkeypatch.setattr(run_mod, "NOTEBOOK_DIR", nb_dir)
    monkeypatch.setattr(
        run_mod,
        "run_notebooks",
        lambda prof, only=None: run_notebooks(
            prof, only=only, notebook_dir=nb_dir, results_dir=tmp_path / "res"
        ),
    )
    assert main(["--profile", "smoke"]) == 1
    assert "02_fails.ipynb" in capsys.readouterr().err


def test_no_notebooks_is_not_an_error(tmp_path, capsys):
    manifest = run_notebooks(
        load_profile("smoke"), notebook_dir=tmp_path, results_dir=tmp_path / "res"
    )
    assert manifest["notebooks"] == [] and manifest["status"] == "ok"
    assert "no notebooks" in capsys.readouterr().out


def test_only_runs_merge_into_the_manifest(nb_dir, tmp_path):
    prof = load_profile("smoke")
    (nb_dir / "02_fails.ipynb").unlink()
    shutil.copy(nb_dir / "01_ok.ipynb", nb_dir / "03_ok.ipynb")
    res = tmp_path / "res"
    run_notebooks(prof, only=["01"], notebook_dir=nb_dir, results_dir=res)
    manifest = run_notebooks(prof, only=["03"], notebook_dir=nb_dir, results_dir=res)
    assert [e["notebook"] for e in manifest["notebooks"]] == ["01_ok.ipynb", "03_ok.ipynb"]
    assert manifest["status"] == "ok"
