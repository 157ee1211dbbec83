"""Checks of the whole smoke run (all five notebooks' outputs): last in the test queue
(`conftest.py`), so that they find the notebooks done instead of holding a worker while they run.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from smoke_chain import NOTEBOOKS, ensure, run_id

from salesman_utils.config import paths
from salesman_utils.run import output_problems


@pytest.fixture(scope="module")
def smoke_run(smoke_profile, request):
    """The smoke profile after every notebook ran this session (waits for, or runs, the ones not
    finished yet, e.g. when a value test is selected alone)."""
    for nb_path in NOTEBOOKS:
        entry = ensure(smoke_profile, nb_path.stem[:2], run_id(request.config))
        assert entry["status"] == "ok", entry
    return smoke_profile


def _metrics(prof, name: str) -> dict:
    return json.loads((paths(prof).metrics / f"{name}.json").read_text())


def _interval_ok(triple) -> bool:
    point, lo, hi = triple
    return 0.0 <= lo <= point <= hi <= 1.0


@pytest.mark.notebooks
@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
def test_smoke_notebooks_read_well(smoke_run):
    """The smoke run's executed copies pass the check applied to the committed results/notebooks."""
    prof = smoke_run
    problems = [p for nb in NOTEBOOKS for p in output_problems(paths(prof).notebooks / nb.name)]
    assert problems == []


@pytest.mark.notebooks
@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
def test_smoke_values(smoke_run):
    """Values, not only that the notebooks ran; checks chosen to hold on the smoke profile's tiny
    data whatever the seed (no effect sizes: a 120-call corpus shows none reliably)."""
    prof = smoke_run
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
    # the paired and matched readings exist exactly for the DOGA agents with model-written turns
    has = {(r["system"], r["kind"]) for r in m04["reply_kinds"] if r["replies"] > 0}
    doga = {s for s in ("base_doga", "best_grpo_doga", "planner_doga") if (s, "llm") in has}
    assert set(m04["paired_heard"]) == doga
    assert set(m04["heard_matched"]) == {s for s in doga if (s, "template") in has}

    m05 = _metrics(prof, "05_judged_evaluation")
    expected = {"base_plain", "base_doga", *prof.training.variants, "best_grpo_doga"}
    assert expected <= set(m05["systems"]) and not m05["skipped_systems"]
    overall = pd.read_csv(paths(prof).tables / "eval_judge_overall.csv")
    assert expected <= set(overall["system"])
    assert overall["mean"].between(1, 10).all()
