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


def run_in(tmp_path: Path, prof, **kwargs) -> dict:
    """`run_notebooks` with its results and its half-executed copies under `tmp_path`."""
    return run_notebooks(
        prof, results_dir=tmp_path / "res", staging_dir=tmp_path / "executing", **kwargs
    )


def test_discover_orders_and_filters(nb_dir):
    assert [p.name for p in discover(nb_dir)] == ["01_ok.ipynb", "02_fails.ipynb"]
    assert [p.name for p in discover(nb_dir, only=["02"])] == ["02_fails.ipynb"]
    with pytest.raises(SystemExit, match="07"):
        discover(nb_dir, only=["07"])


def test_runner_executes_copies_and_writes_manifest(nb_dir, tmp_path):
    prof = load_profile("smoke")
    source_before = (nb_dir / "01_ok.ipynb").read_text()
    manifest = run_in(tmp_path, prof, only=["01"], notebook_dir=nb_dir)
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
        run_in(tmp_path, prof, notebook_dir=nb_dir)
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
        lambda prof, only=None: run_in(tmp_path, prof, only=only, notebook_dir=nb_dir),
    )
    assert main(["--profile", "smoke"]) == 1
    assert "02_fails.ipynb" in capsys.readouterr().err


def test_no_notebooks_is_not_an_error(tmp_path, capsys):
    manifest = run_in(tmp_path, load_profile("smoke"), notebook_dir=tmp_path)
    assert manifest["notebooks"] == [] and manifest["status"] == "ok"
    assert "no notebooks" in capsys.readouterr().out


def test_only_runs_merge_into_the_manifest(nb_dir, tmp_path):
    prof = load_profile("smoke")
    (nb_dir / "02_fails.ipynb").unlink()
    shutil.copy(nb_dir / "01_ok.ipynb", nb_dir / "03_ok.ipynb")
    run_in(tmp_path, prof, only=["01"], notebook_dir=nb_dir)
    manifest = run_in(tmp_path, prof, only=["03"], notebook_dir=nb_dir)
    assert [e["notebook"] for e in manifest["notebooks"]] == ["01_ok.ipynb", "03_ok.ipynb"]
    assert manifest["status"] == "ok"


def _run_beside(nb_dir, tmp_path, monkeypatch, other: str, fails: bool = False) -> dict:
    """Run A (notebook 01) with run B (`--only other`) started and ended while A is inside its
    notebook; returns the manifest on disk after A ends as ({notebook: status}, its status)."""
    import salesman_utils.run as run

    prof = load_profile("smoke")
    real = run.execute_one

    def execute_one(nb, out, profile_arg):
        if nb.name == "01_ok.ipynb":
            if fails:
                with pytest.raises(NotebookFailed):
                    run_in(tmp_path, prof, only=[other], notebook_dir=nb_dir)
            else:
                run_in(tmp_path, prof, only=[other], notebook_dir=nb_dir)
        return real(nb, out, profile_arg)

    monkeypatch.setattr(run, "execute_one", execute_one)
    run_in(tmp_path, prof, only=["01"], notebook_dir=nb_dir)
    manifest = json.loads((tmp_path / "res" / "run_manifest.json").read_text())
    return {e["notebook"]: e["status"] for e in manifest["notebooks"]}, manifest["status"]


def test_two_only_runs_at_once_keep_each_others_entries(nb_dir, tmp_path, monkeypatch):
    """Run A (notebook 01) is still executing when run B (notebook 03) starts and ends: A's next
    write re-reads the manifest under its lock and keeps B's entry (the test loop runs notebooks
    04 and 05 side by side)."""
    (nb_dir / "02_fails.ipynb").unlink()
    shutil.copy(nb_dir / "01_ok.ipynb", nb_dir / "03_ok.ipynb")
    by_name, status = _run_beside(nb_dir, tmp_path, monkeypatch, "03")
    assert by_name == {"01_ok.ipynb": "ok", "03_ok.ipynb": "ok"} and status == "ok"


def test_a_run_ending_beside_a_failed_one_is_not_ok(nb_dir, tmp_path, monkeypatch):
    """Run B (notebook 02) fails while run A (notebook 01) executes: A's final status, computed
    after it merges B's entry, is "partial", not "ok"."""
    by_name, status = _run_beside(nb_dir, tmp_path, monkeypatch, "02", fails=True)
    assert by_name == {"01_ok.ipynb": "ok", "02_fails.ipynb": "failed"}
    assert status == "partial"


# --- a run that stops is marked as stopped (issue 27) ------------------------------------------


def _old_manifest(res: Path, names: list[str]) -> None:
    """A previous run of the smoke profile in which every notebook was "ok"."""
    (res / "notebooks").mkdir(parents=True, exist_ok=True)
    entries = [{"notebook": n, "status": "ok", "commit": "old", "wall_s": 9.0} for n in names]
    manifest = {"profile": "smoke", "status": "ok", "notebooks": entries}
    (res / "run_manifest.json").write_text(json.dumps(manifest))


def test_a_failed_notebook_is_marked_failed_and_its_copy_kept_out_of_results(nb_dir, tmp_path):
    shutil.copy(nb_dir / "01_ok.ipynb", nb_dir / "03_ok.ipynb")
    res = tmp_path / "res"
    _old_manifest(res, ["01_ok.ipynb", "02_fails.ipynb", "03_ok.ipynb"])
    complete = res / "notebooks" / "02_fails.ipynb"
    complete.write_text("the last complete copy")
    with pytest.raises(NotebookFailed) as err:
        run_in(tmp_path, load_profile("smoke"), only=["02"], notebook_dir=nb_dir)
    assert err.value.status == "failed" and err.value.cell == 4
    manifest = json.loads((res / "run_manifest.json").read_text())
    assert manifest["status"] == "failed"
    by_name = {e["notebook"]: e for e in manifest["notebooks"]}
    assert sorted(by_name) == ["01_ok.ipynb", "02_fails.ipynb", "03_ok.ipynb"]  # none dropped
    failed = by_name["02_fails.ipynb"]
    assert failed["status"] == "failed" and failed["cell"] == 4  # not the old "ok"
    assert failed["error"] == "ValueError: planted failure in fixture"
    assert by_name["01_ok.ipynb"]["commit"] == by_name["03_ok.ipynb"]["commit"] == "old"
    # the half-executed copy stays beside the artifacts; results/ keeps the last complete one
    partial = tmp_path / "executing" / "02_fails.ipynb"
    assert failed["partial_copy"] == str(partial.resolve()) and partial.exists()
    assert complete.read_text() == "the last complete copy"
    assert str(partial) in str(err.value)


def _half_run_notebook(path: Path, running: int) -> None:
    """What papermill has saved when Ctrl-C lands in source cell `running` (1-based): the cells
    before it completed, that one running, the rest pending."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# slow")] + [
        nbformat.v4.new_code_cell(f"x = {i}") for i in range(1, 4)
    ]
    for number, cell in enumerate(nb.cells, start=1):
        state = "completed" if number < running else "running" if number == running else "pending"
        cell.metadata["papermill"] = {"status": state}
    nbformat.write(nb, str(path))


@pytest.fixture
def interrupted_papermill(monkeypatch):
    """papermill's execute_notebook replaced by one that saves a half-run copy, then gets Ctrl-C."""
    import papermill

    def execute_notebook(source, output, **kwargs):
        _half_run_notebook(Path(output), running=3)
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)


def test_ctrl_c_marks_the_notebook_interrupted_with_its_cell(
    nb_dir, tmp_path, interrupted_papermill
):
    res = tmp_path / "res"
    _old_manifest(res, ["01_ok.ipynb", "02_fails.ipynb"])
    with pytest.raises(KeyboardInterrupt):
        run_in(tmp_path, load_profile("smoke"), only=["02"], notebook_dir=nb_dir)
    manifest = json.loads((res / "run_manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    entries = {e["notebook"]: e for e in manifest["notebooks"]}
    assert entries["01_ok.ipynb"]["status"] == "ok"  # not re-run: kept
    assert entries["02_fails.ipynb"]["status"] == "interrupted"
    assert entries["02_fails.ipynb"]["cell"] == 3
    assert not (res / "notebooks" / "02_fails.ipynb").exists()  # no half copy in the results
    assert (tmp_path / "executing" / "02_fails.ipynb").exists()


def test_cli_ctrl_c_is_one_line_naming_the_manifest(
    nb_dir, tmp_path, monkeypatch, capsys, interrupted_papermill
):
    import salesman_utils.run as run_mod

    monkeypatch.setattr(run_mod, "NOTEBOOK_DIR", nb_dir)
    monkeypatch.setattr(
        run_mod,
        "run_notebooks",
        lambda prof, only=None: run_in(tmp_path, prof, only=only, notebook_dir=nb_dir),
    )
    assert main(["--profile", "smoke", "--only", "01"]) == 130
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "INTERRUPTED" in lines[0] and "run_manifest.json" in lines[0]


def test_an_interrupt_in_the_kernel_is_marked_interrupted(tmp_path):
    import nbformat

    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.read(str(FIXTURES / "01_ok.ipynb"), as_version=4)  # its kernel metadata
    nb.cells = [
        nbformat.v4.new_code_cell('profile: str = "smoke"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("raise KeyboardInterrupt"),
    ]
    nbformat.write(nb, str(folder / "01_stop.ipynb"))
    with pytest.raises(NotebookFailed) as err:
        run_in(tmp_path, load_profile("smoke"), notebook_dir=folder)
    assert err.value.status == "interrupted" and err.value.cell == 2
    assert "01_stop.ipynb: cell 2" in str(err.value)
    entry = json.loads((tmp_path / "res" / "run_manifest.json").read_text())["notebooks"][0]
    assert entry["status"] == "interrupted" and entry["cell"] == 2
    assert not (tmp_path / "res" / "notebooks" / "01_stop.ipynb").exists()


def test_a_running_notebook_is_on_disk_as_running_and_a_rerun_counts_the_stopped_time(
    nb_dir, tmp_path, monkeypatch
):
    """A SIGKILL cannot be caught: the manifest says "running" while a notebook runs, so a killed
    run never leaves an old "ok" behind. The re-run after a stop records the stopped time."""
    import papermill

    res = tmp_path / "res"
    _old_manifest(res, ["01_ok.ipynb"])
    manifest = json.loads((res / "run_manifest.json").read_text())
    manifest["notebooks"][0].update(status="interrupted", wall_s=40.0)
    (res / "run_manifest.json").write_text(json.dumps(manifest))
    seen = {}

    def execute_notebook(source, output, **kwargs):
        seen.update(json.loads((res / "run_manifest.json").read_text())["notebooks"][0])
        shutil.copy(source, output)

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    manifest = run_in(tmp_path, load_profile("smoke"), only=["01"], notebook_dir=nb_dir)
    assert seen["status"] == "running" and "wall_s" not in seen
    entry = manifest["notebooks"][0]
    assert entry["status"] == "ok" and entry["earlier_stopped_s"] == 40.0
    assert (res / "notebooks" / "01_ok.ipynb").exists()  # a finished copy moves to the results
    assert not (tmp_path / "executing" / "01_ok.ipynb").exists()


def test_a_runner_error_outside_the_cells_is_marked_failed(nb_dir, tmp_path, monkeypatch):
    import papermill

    def execute_notebook(source, output, **kwargs):
        raise ValueError("No language found in notebook")

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    with pytest.raises(ValueError):
        run_in(tmp_path, load_profile("smoke"), only=["01"], notebook_dir=nb_dir)
    manifest = json.loads((tmp_path / "res" / "run_manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["notebooks"][0]["error"] == "ValueError: No language found in notebook"
