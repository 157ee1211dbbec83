"""Referee-side audit instruments: probes of the hidden quality, the checker as a detector, the
verbatim share of the expert reference (the import boundary is tests/test_boundary.py)."""

import copy
import hashlib
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from salesman_utils.agent.bayes import hidden_quality, naive_labels
from salesman_utils.referee import audit
from salesman_utils.world.corpus import Turn, fact_check, get_product, simulate_corpus, split


def hash_embed(texts):
    """Deterministic stand-in for an embedder: identical texts -> identical vectors."""
    return np.array(
        [
            np.random.default_rng(int(hashlib.md5(t.encode()).hexdigest()[:8], 16)).normal(size=32)
            for t in texts
        ]
    )


@pytest.fixture(scope="module")
def calls():
    return simulate_corpus(150, seed=5)


@pytest.fixture(scope="module")
def parts(calls):
    sp = split(calls, seed=0)
    return sp["train"], sp["test"]


def agent_turns(dialogues):
    return [t for d in dialogues for t in d.turns if t.speaker == "agent"]


def relabel(dialogues, rule):
    """A deep copy whose agent turns get hidden quality := rule(turn, visible structure row)."""
    out = copy.deepcopy(dialogues)
    rows = audit.visible_structure(out).to_dict("records")
    for t, row in zip(agent_turns(out), rows, strict=True):
        t.hidden["quality"] = int(rule(t, row))
    return out


# ---------------------------------------------------------------- score vectors


def test_scores_align_with_hidden_quality(parts):
    train, test = parts
    n = hidden_quality(test).size
    scores = audit.baseline_scores(train, test, hash_embed, max_embed_turns=300)
    assert list(scores) == [
        audit.OUTCOME,
        audit.INTENT_PRIOR,
        audit.STRUCTURE,
        audit.TFIDF,
        audit.EMBEDDING,
    ]
    for name, s in scores.items():
        assert s.shape == (n,), name
        assert np.all((s >= 0) & (s <= 1)), name
    np.testing.assert_array_equal(scores[audit.OUTCOME], naive_labels(test))
    # one call scored alone gets the values of its own turns in the full vector
    k = hidden_quality(test[:1]).size
    np.testing.assert_allclose(audit.structure_scores(train, test[:1]), scores[audit.STRUCTURE][:k])
    np.testing.assert_allclose(
        audit.text_probe_scores(train, test[:1], "tfidf"), scores[audit.TFIDF][:k]
    )


def test_intent_prior_is_laplace_smoothed_rate(parts):
    train, test = parts
    y = hidden_quality(train)
    intents = np.array([t.intent for t in agent_turns(train)])
    opening = (y[intents == "Opening"].sum() + 1) / ((intents == "Opening").sum() + 2)
    s = audit.intent_prior_scores(train, test)
    test_intents = np.array([t.intent for t in agent_turns(test)])
    assert np.allclose(s[test_intents == "Opening"], opening)
    assert len(np.unique(s)) <= len(set(test_intents))


def test_text_probes_detect_a_planted_word(parts):
    """Quality made a deterministic function of one word: both probes must find it."""
    train, test = (copy.deepcopy(p) for p in parts)
    for t in agent_turns(train) + agent_turns(test):
        t.hidden["quality"] = int(hashlib.md5(t.text.encode()).digest()[0] % 2)
        if t.hidden["quality"]:
            t.text += " kiwi"
    y = hidden_quality(test)
    tfidf = audit.text_probe_scores(train, test, "tfidf")
    assert roc_auc_score(y, tfidf) > 0.95

    def marked_embed(texts):
        return np.c_[hash_embed(texts), [20.0 * ("kiwi" in t) for t in texts]]

    emb = audit.text_probe_scores(train, test, "embedding", marked_embed, max_train_turns=200)
    assert roc_auc_score(y, emb) > 0.95


def test_embedding_probe_needs_an_embedder(parts):
    with pytest.raises(ValueError, match="embedder"):
        audit.text_probe_scores(*parts, kind="embedding")


@pytest.mark.parametrize(
    "rule",
    [
        lambda t, row: t.intent == "Opening",
        lambda t, row: row["last_act"] == "objection" and t.intent == "Objection_Handling",
    ],
    ids=["intent_is_opening", "objection_handled_after_objection"],
)
def test_structure_gbm_reads_planted_structure(parts, rule):
    train, test = (relabel(p, rule) for p in parts)
    assert roc_auc_score(hidden_quality(test), audit.structure_scores(train, test)) > 0.95


def test_visible_structure_of_a_hand_made_call(calls):
    d = copy.deepcopy(calls[0])
    d.turns = [
        Turn("agent", "Hi.", intent="Opening", hidden={"quality": 1}),
        Turn("customer", "No time.", act="objection", objection_type="no_time"),
        Turn("agent", "Two minutes.", intent="Objection_Handling", hidden={"quality": 1}),
        Turn("customer", "What is it?", act="question"),
        Turn("agent", "Your orders...", intent="Business_Analysis", hidden={"quality": 0}),
        Turn("customer", "Ok.", act="neutral"),
        Turn("agent", "Hi again.", intent="Opening", hidden={"quality": 0}),
    ]
    f = audit.visible_structure([d])
    assert list(f.intent) == ["Opening", "Objection_Handling", "Business_Analysis", "Opening"]
    assert list(f.prev_intent) == ["none", "Opening", "Objection_Handling", "Business_Analysis"]
    assert list(f.prev2_intent) == ["none", "none", "Opening", "Objection_Handling"]
    assert list(f.last_act) == ["start", "objection", "question", "neutral"]
    assert list(f.last_objection) == ["none", "no_time", "none", "none"]
    assert list(f.agent_turn) == [0, 1, 2, 3] and list(f.turn_index) == [0, 2, 4, 6]
    assert list(f.done_Opening) == [0, 1, 1, 1]
    assert list(f.done_Objection_Handling) == [0, 0, 1, 1]
    assert list(f.done_Business_Analysis) == [0, 0, 0, 1]
    assert f.done_Needs_Discovery.sum() == 0


def test_structure_gbm_sees_no_text_and_no_outcome(parts):
    train, test = parts
    before = audit.structure_scores(train, test)
    changed = copy.deepcopy(test)
    for d in changed:
        d.outcome = "success" if d.outcome != "success" else "failure"
        for t in d.turns:
            t.text = "something else entirely"
    np.testing.assert_array_equal(audit.structure_scores(train, changed), before)


def test_quality_baselines_table_with_posterior(parts):
    train, test = parts
    y = hidden_quality(test)
    val = audit.quality_baselines(train, test, posterior=y.astype(float), n_boot=50)
    auc = val[val.metric == "auc"].set_index("score")
    assert list(auc.index) == [
        audit.POSTERIOR,
        audit.OUTCOME,
        audit.INTENT_PRIOR,
        audit.STRUCTURE,
        audit.TFIDF,
    ]
    assert auc.loc[audit.POSTERIOR, "value"] == 1.0
    assert (auc.n_turns == y.size).all()
    assert ((auc.lo <= auc.value + 1e-12) & (auc.value <= auc.hi + 1e-12)).all()
    assert auc.loc[audit.OUTCOME, "value"] == pytest.approx(roc_auc_score(y, naive_labels(test)))


def test_text_only_auc_within_one_corpus(calls):
    res = audit.text_only_auc(calls[:60], hash_embed, seed=0, max_turns=200)
    assert 0.0 <= res["auc"] <= 1.0
    assert 200 >= res["n_train"] > 0 and res["n_test"] > 0


# ---------------------------------------------------------------- checker and verbatim share


def test_checker_detection_counts_and_rates(calls):
    res = audit.checker_detection(calls)
    assert res["tp"] + res["fp"] + res["fn"] + res["tn"] == res["n"] == len(agent_turns(calls))
    assert res["recall"] == pytest.approx(res["tp"] / (res["tp"] + res["fn"]))
    assert res["precision"] == pytest.approx(res["tp"] / (res["tp"] + res["fp"]))
    assert res["recall_lo"] <= res["recall"] <= res["recall_hi"]


def test_checker_recomputes_flags_and_reads_the_hidden_label(calls):
    base = audit.checker_detection(calls)
    planted = copy.deepcopy(calls)
    for t in agent_turns(planted):
        t.hidden["violations"] = [{"kind": "price", "span": "x"}]  # stale findings: ignored
    assert audit.checker_detection(planted) == base
    # a clean, faithful turn relabelled unfaithful is a miss the checker cannot see
    d, t = next(
        (d, t)
        for d in planted
        for t in d.turns
        if t.speaker == "agent"
        and t.hidden["faithful"]
        and not fact_check(t.text, get_product(d.product_id), d.merchant)
    )
    t.hidden["faithful"] = False
    res = audit.checker_detection(planted)
    assert (res["fn"], res["tn"], res["tp"]) == (base["fn"] + 1, base["tn"] - 1, base["tp"])


def test_expert_text_verbatim_share(calls):
    few = copy.deepcopy(calls[:3])
    turns = agent_turns(few)
    for i, t in enumerate(turns):
        t.hidden["expert_text"] = f"sentinel reference number {i}"
    res = audit.expert_text_verbatim_share(few)
    assert (res["share"], res["k"], res["n"]) == (0.0, 0, len(turns))
    # a visible line, re-cased, re-spaced and re-punctuated, counts as verbatim
    turns[0].hidden["expert_text"] = "  " + turns[-1].text.upper().replace(" ", "  ") + "!"
    turns[1].hidden["expert_text"] = ""  # no reference: not counted
    res = audit.expert_text_verbatim_share(few)
    assert (res["k"], res["n"]) == (1, len(turns) - 1)
    assert res["share"] == pytest.approx(1 / (len(turns) - 1))


def test_expert_text_verbatim_share_by_hand(calls):
    few = copy.deepcopy(calls[:2])
    turns = agent_turns(few)
    for t in turns:
        t.text, t.hidden["expert_text"] = "We can start today.", "Something never said."
    turns[0].hidden["expert_text"] = "we can START   today"
    turns[1].hidden["expert_text"] = "we can start today, really"
    res = audit.expert_text_verbatim_share(few)
    assert (res["k"], res["n"]) == (1, len(turns))


def test_hidden_truth_audit_rows_and_metrics(parts, calls):
    train, test = parts
    table = audit.hidden_truth_audit(train, test, calls, hash_embed, max_embed_turns=200, n_boot=50)
    flat = audit.audit_metrics(table)
    for key in (
        "text_probe_auc_tfidf",
        "text_probe_auc_embedding",
        "structure_gbm_auc",
        "intent_prior_auc",
        "checker_recall",
        "checker_precision",
        "expert_text_verbatim_share",
    ):
        assert {key, f"{key}_lo", f"{key}_hi", f"{key}_n"} <= set(flat), key
        assert 0.0 <= flat[key] <= 1.0
    check = audit.checker_detection(calls)
    assert flat["checker_recall"] == check["recall"]
    assert flat["checker_recall_n"] == check["tp"] + check["fn"]
    assert flat["structure_gbm_auc_n"] == hidden_quality(test).size
    assert not math.isnan(flat["expert_text_verbatim_share_lo"])
