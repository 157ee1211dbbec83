"""Notebook layer: hygiene of the stored sources, then a papermill smoke run of every notebook."""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest

from salesman_utils.config import load_profile, paths
from salesman_utils.run import NOTEBOOK_DIR, discover, output_problems, run_notebooks

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
    # the notebook ends by recording results/metrics, then says what its run shows from them
    assert "notebook_findings(" in code[-1].source, "the last cell shows the generated findings"
    assert "write_metrics(" in code[-2].source, "the cell before it records results/metrics"


# The smoke run: one test per notebook, in order, on one worker (`make test` runs pytest with
# `-n 2 --dist loadfile`: a file's tests stay on one worker, in order), each reading the artifacts
# of the ones before, while the unit tests use the other core.
_RAN: dict[str, dict] = {}  # notebook file -> its manifest entry, this session


def _run(prof, nb_path) -> dict:
    manifest = run_notebooks(prof, only=[nb_path.stem[:2]])
    entry = next(e for e in manifest["notebooks"] if e["notebook"] == nb_path.name)
    _RAN[nb_path.name] = entry
    return entry


@pytest.fixture(scope="module")
def smoke_prof():
    return load_profile("smoke")


@pytest.fixture(scope="module")
def smoke_run(smoke_prof):
    """The smoke profile after every notebook ran this session (runs the ones not run yet, e.g.
    when a value test is selected alone)."""
    for nb_path in NOTEBOOKS:
        if nb_path.name not in _RAN:
            _run(smoke_prof, nb_path)
    return smoke_prof, _RAN


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
@pytest.mark.notebooks
def test_smoke_run_of_notebook(nb_path, smoke_prof):
    entry = _run(smoke_prof, nb_path)
    assert entry["status"] == "ok"
    metrics = paths(smoke_prof).metrics / f"{nb_path.stem}.json"
    assert metrics.exists(), f"{nb_path.name} wrote no {metrics.name}"
    body = json.loads(metrics.read_text())
    assert body["profile"] == "smoke" and body["seed"] == smoke_prof.seed


def _metrics(prof, name: str) -> dict:
    return json.loads((paths(prof).metrics / f"{name}.json").read_text())


def _interval_ok(triple) -> bool:
    point, lo, hi = triple
    return 0.0 <= lo <= point <= hi <= 1.0


@pytest.mark.notebooks
@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
def test_smoke_notebooks_read_well(smoke_run):
    """The smoke run's executed copies pass the check applied to the committed results/notebooks."""
    prof, _ = smoke_run
    problems = [p for nb in NOTEBOOKS for p in output_problems(paths(prof).notebooks / nb.name)]
    assert problems == []


@pytest.mark.notebooks
@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
def test_smoke_values(smoke_run):
    """Values, not only that the notebooks ran; checks chosen to hold on the smoke profile's tiny
    data whatever the seed (no effect sizes: a 120-call corpus shows none reliably)."""
    prof, _ = smoke_run
    m01 = _metrics(prof, "01_corpus_construction")
    assert sum(m01["splits"].values()) == m01["n_calls_kept"] <= prof.corpus.n_calls
    assert sum(m01["outcomes"].values()) == m01["n_calls_kept"]

    m02 = _metrics(prof, "02_bayesian_grpo_training")
    assert _interval_ok(m02["auc_posterior"]) and _interval_ok(m02["auc_naive"])
    assert m02["reward_weights"] == vars(prof.training.reward_weights)
    plan, c = m02["planner"], prof.planner
    assert {(r["arm"], r["start"]) for r in plan["finals"]} == {
        (a, s) for a in c.arms for s in c.starts
    }
    for r in plan["finals"]:
        assert r["n"] == c.n_test_calls and r["seeds"] == c.n_seeds
        assert r["lo"] <= r["test_conversion"] <= r["hi"]
    refs = {(r["policy"], r["split"]) for r in plan["references"]}
    assert ("expert (ceiling)", "test") in refs and ("random", "validation") in refs
    heldout = {row["system"] for row in m02["heldout"]}
    assert heldout == {"base_plain", *prof.training.variants}

    m03 = _metrics(prof, "03_script_library")
    assert m03["n_templates"] > 0
    for intent, lift in m03["lift"].items():  # lift = good share of the sources - of the corpus
        src, corp = m03["source_good_share"][intent], m03["corpus_good_share"][intent]
        assert 0 <= src <= 1 and 0 <= corp <= 1 and lift == pytest.approx(src - corp)

    m04 = _metrics(prof, "04_doga_inference")
    online = m04["online"]
    llm_systems = {"base_doga", "best_grpo_doga"}  # the adapter online inside DOGA
    llm_systems |= {"base_plain"} if prof.doga.plain_online else set()
    model_free = {"template_only", "script_template", "planner_template"}
    assert set(online) == llm_systems | model_free | {"planner_doga"}  # + notebook 02's planner
    for row in online.values():
        assert row["n"] == prof.doga.n_online_calls and row["lo"] <= row["rate"] <= row["hi"]
        assert 0 < row["agent_turns"] <= prof.doga.n_online_calls * prof.doga.max_turns
    # the smoke call is long enough to run the guard's paths: checks, a regeneration, a template
    guard = m04["guard"]["base_doga"]
    assert guard["checked"] > 0 and guard["regenerated"] > 0 and guard["template"] > 0, guard
    assert isinstance(m04["paired_heard"], dict)  # recorded (empty when no turn stayed the model's)
    # the unselected reading covers every guarded turn with a draft: base_doga's call has some
    drafts = m04["draft_heard"]["base_doga"]
    assert 0 < drafts["n"] <= online["base_doga"]["agent_turns"]
    assert 0 <= drafts["draft_heard_rate"] <= 1 and 0 <= drafts["template_heard_rate"] <= 1
    assert set(m04["heard_matched"]) <= {"base_doga", "best_grpo_doga", "planner_doga"}

    m05 = _metrics(prof, "05_judged_evaluation")
    expected = {"base_plain", "base_doga", *prof.training.variants, "best_grpo_doga"}
    assert expected <= set(m05["systems"]) and not m05["skipped_systems"]
    overall = pd.read_csv(paths(prof).tables / "eval_judge_overall.csv")
    assert expected <= set(overall["system"])
    assert overall["mean"].between(1, 10).all()
