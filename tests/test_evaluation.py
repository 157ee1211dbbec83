"""Tests of salesman_utils.arena.evaluation: item sampling, system discovery, metric tables, judge checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from salesman_utils.arena import evaluation as ev
from salesman_utils.judge.llm_judge import CAPABILITIES
from salesman_utils.world.corpus import simulate_corpus


@pytest.fixture(scope="module")
def calls():
    return simulate_corpus(12, seed=3)


@pytest.fixture
def profile(tmp_path):
    from salesman_utils.config import load_profile

    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"name: t\npaths: {{artifacts: {tmp_path / 'a'}, results: {tmp_path / 'r'}}}\n")
    return load_profile(cfg)


def test_eval_items_put_notebook_02_contexts_first_and_are_seeded(calls):
    from salesman_utils.agent.datasets import _contexts

    first = [f"{calls[di].id}:{c.index}" for di, c, _ in _contexts(calls, 5, 0)]
    items = ev.eval_items(calls, 9, seed=0, first_n=5)
    ids = [it.item_id for it in items]
    assert len(ids) == len(set(ids)) == 9
    assert sorted(ids[:5]) == sorted(first)
    assert ids == [it.item_id for it in ev.eval_items(calls, 9, seed=0, first_n=5)]
    for it in items:  # capability = the real rep's intent; expert reply kept for evaluation
        turn = it.dialogue.turns[it.context.index]
        assert it.capability == turn.intent and it.reference == turn.text
        assert it.expert_text == turn.hidden["expert_text"]
        assert all(t.hidden == {} for t in it.context.history)


def test_stratified_takes_round_robin_over_capabilities(calls):
    items = ev.eval_items(calls, 60, seed=1)
    picked = ev.stratified(items, 12)
    counts = pd.Series([it.capability for it in picked]).value_counts()
    assert len(picked) == 12
    assert counts.max() - counts.min() <= 1 or len(counts) < len(CAPABILITIES)
    assert ev.stratified(items, 1000) and len(ev.stratified(items, 1000)) == len(items)


def test_system_specs_skip_missing_adapters_with_a_reason(profile):
    from salesman_utils.config import paths

    specs = {s.name: s for s in ev.system_specs(profile)}
    assert list(specs) == ev.SYSTEMS
    assert specs["base_plain"].available and specs["base_doga"].available
    assert not specs["sft"].available and "notebook 02" in specs["sft"].note
    assert not specs["best_grpo_doga"].available
    folder = paths(profile).models / "grpo_bayes" / "adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    specs = {s.name: s for s in ev.system_specs(profile)}
    assert specs["grpo_bayes"].available and specs["grpo_bayes"].adapter == folder
    assert specs["best_grpo_doga"].available and specs["best_grpo_doga"].adapter == folder
    # best_grpo_doga follows doga.grpo_variant, never another variant's adapter
    profile.doga.grpo_variant = "sft_grpo_bayes"
    specs = {s.name: s for s in ev.system_specs(profile)}
    assert not specs["best_grpo_doga"].available
    assert "doga.grpo_variant" in specs["best_grpo_doga"].note
    other = paths(profile).models / "sft_grpo_bayes" / "adapter"
    other.mkdir(parents=True)
    (other / "adapter_config.json").write_text("{}")
    specs = {s.name: s for s in ev.system_specs(profile)}
    assert specs["best_grpo_doga"].adapter == other


def test_auto_metric_table_has_report_columns_and_intervals():
    per_item = pd.DataFrame(
        {
            "system": ["a"] * 4 + ["b"] * 4,
            "sim_reference": [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5, 0.5],
            "sim_expert": [0.2] * 8,
            "rouge_l": [0.0, 1.0] * 4,
            "violations": [0, 1, 0, 1, 0, 0, 0, 0],
            "referee_violations": [1, 1, 2, 0, 0, 0, 0, 0],
            "degenerate": [0, 0, 0, 1, 1, 1, 0, 0],
            "reply": ["we can help", "we can help you", "a b c", "x y"] * 2,
        }
    )
    t = ev.auto_metric_table(per_item, n_boot=200, seed=0).set_index(["system", "metric"])
    assert t.loc[("a", "degenerate_per_100"), "mean"] == pytest.approx(25.0)
    assert t.loc[("b", "degenerate_per_100"), "mean"] == pytest.approx(50.0)
    assert t.loc[("a", "referee_violations_per_100"), "mean"] == pytest.approx(100.0)
    assert list(t.columns) == ["mean", "lo", "hi", "n"]
    assert set(t.index.get_level_values(1)) == set(ev.AUTO_METRICS)
    assert t.loc[("a", "violations_per_100"), "mean"] == pytest.approx(50.0)
    assert t.loc[("b", "violations_per_100"), ["mean", "lo", "hi"]].tolist() == [0.0, 0.0, 0.0]
    assert t.loc[("a", "sim_reference"), "mean"] == pytest.approx(0.25)
    lo, hi = t.loc[("a", "sim_reference"), ["lo", "hi"]]
    assert 0.1 <= lo < 0.25 < hi <= 0.4
    # distinct-2 over all of a's replies: 8 bigrams, of which "we can" and "can help" repeat
    assert t.loc[("a", "distinct_2"), "mean"] == pytest.approx(6 / 8)


def test_reply_kinds_split_model_replies_from_templates():
    per_item = pd.DataFrame(
        {
            "system": ["base_doga"] * 3 + ["base_plain"] * 2,
            "item_id": ["1", "2", "3", "1", "2"],
            "sim_expert": [0.4, 0.2, 0.6, 0.1, 0.3],
            "violations": [0, 1, 0, 0, 2],
            "referee_violations": [0, 0, 1, 0, 1],
            "guard_referee_disagree": [False, True, True, False, False],
        }
    )
    replies = per_item[["system", "item_id"]].assign(guard=["template", "", "", "", ""])
    t = ev.reply_kinds_table(per_item, replies).set_index(["system", "kind"])
    assert t.loc[("base_doga", "template"), "n"] == 1
    assert t.loc[("base_doga", "model"), ["n", "guard_referee_disagree"]].tolist() == [2, 2]
    assert t.loc[("base_doga", "model"), "sim_expert"] == pytest.approx(0.4)
    assert t.loc[("base_plain", "model"), "violations_per_100"] == pytest.approx(100.0)
    assert t.loc[("base_plain", "model"), "referee_violations_per_100"] == pytest.approx(50.0)


def test_faithfulness_auc_and_verdict():
    r = ev.faithfulness_auc([9, 8, 7, 2, 3, float("nan")], [0, 0, 0, 1, 1, 1])
    assert r["auc"] == 1.0 and r["n"] == 5
    assert r["mean_clean"] == 8.0 and r["mean_violating"] == 2.5
    assert ev.faithfulness_auc([5, 5], [0, 1])["auc"] == 0.5
    assert math.isnan(ev.faithfulness_auc([5, 5], [0, 0])["auc"])


def test_ground_truth_probes_read_hidden_labels_only_as_labels(calls, smoke_profile):
    items, y = ev.faithfulness_probe(calls, 8, smoke_profile, seed=0)
    assert len(items) == len(y) and set(np.unique(y)) <= {0, 1} and y.sum() == len(y) - y.sum()
    hidden = {f"{d.id}:{i}": t.hidden for d in calls for i, t in enumerate(d.turns)}
    # the label is the simulator's decision (hidden "faithful"), not the fact checker's output
    assert [int(not hidden[it["item_id"]]["faithful"]) for it in items] == list(y)
    assert "Plans:" in items[0]["product_facts"] and "FAQ:" in items[0]["product_facts"]
    ref_items, truth = ev.referee_probe(calls, 10, smoke_profile, seed=0)
    assert len(ref_items) == len(truth) == 10
    assert set(truth.columns) == {"item_id", "faithful", "expert_move", "personalized"}
    assert all(set(it) == set(ref_items[0]) for it in ref_items)
    assert {"item_id", "capability", "reply", "product_facts", "merchant_facts"} <= set(items[0])
    expert, rep, note = ev.expert_novice_pairs(calls, 3, smoke_profile, seed=0)
    assert len(expert) == len(rep) and [e["item_id"] for e in expert] == [r["item_id"] for r in rep]
    assert all(e["reply"] != r["reply"] for e, r in zip(expert, rep, strict=True)) and note


def test_distinct_2_interval_contains_its_estimate():
    """Resampling replies with replacement would duplicate bigrams and put the whole interval below
    the estimate; the jackknife interval brackets it."""
    from salesman_utils.arena.evaluation import _distinct_interval

    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(40)]
    texts = [" ".join(rng.choice(vocab, size=8)) for _ in range(60)]
    point, lo, hi = _distinct_interval(texts, n_boot=200)
    assert lo < point < hi
    assert 0.0 <= lo and hi <= 1.0


def test_auto_metric_items_flag_degenerate_replies_with_the_referee(calls, smoke_profile):
    items = [it for it in ev.eval_items(calls, 30, seed=0) if it.context.history][:2]
    last = items[0].context.history[-1].text
    assert ev.referee_context(items[0])[-1]["content"] == last
    price = items[1].product.plans[0]["price"]
    replies = pd.DataFrame(
        {
            "system": ["s", "s"],
            "item_id": [it.item_id for it in items],
            "capability": [it.capability for it in items],
            "reply": [last, f"The {items[1].product.plans[0]['name']} plan is ${price:g}."],
        }
    )
    per_item = ev.auto_metric_items(replies, items, smoke_profile)
    assert per_item["degenerate"].tolist() == [1.0, 0.0]  # the merchant's own words parroted


def test_system_specs_list_only_the_profiles_variants(profile):
    """A variant the profile does not train is not scored, even with a stale adapter on disk."""
    from salesman_utils.config import paths

    folder = paths(profile).models / "grpo_sim" / "adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    assert "grpo_sim" in {s.name for s in ev.system_specs(profile)}
    profile.training.variants = ["sft", "grpo_bayes", "sft_grpo_bayes"]
    names = [s.name for s in ev.system_specs(profile)]
    assert "grpo_sim" not in names
    assert names == [s for s in ev.SYSTEMS if s != "grpo_sim"]
