"""Corpus simulator, banks, realization guard, filter, split, storage and statistics."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from salesman_utils.world.corpus import (
    ACTS,
    INTENTS,
    LATENT_MERCHANT_FIELDS,
    OBJECTION_TYPES,
    CorpusFormatError,
    CustomerSimulator,
    agent_turn_contexts,
    corpus_stats,
    get_product,
    load_corpus,
    mentions_merchant_data,
    quality_filter,
    realize_with_llm,
    save_corpus,
    simulate_corpus,
    split,
    to_hf_dataset,
    visible_merchant_facts,
    without_hidden,
)
from salesman_utils.world.simulator import load_banks


def hash_embed(texts):
    """Deterministic stand-in for an embedder: identical texts -> identical unit vectors."""
    out = []
    for t in texts:
        seed = int(hashlib.md5(t.encode()).hexdigest()[:8], 16)
        out.append(np.random.default_rng(seed).normal(size=32))
    return np.array(out)


@pytest.fixture(scope="module")
def corpus600():
    return simulate_corpus(600, seed=0)


@pytest.fixture(scope="module")
def small():
    return simulate_corpus(40, seed=3)


def test_banks_are_big_enough_and_the_heldout_part_is_disjoint():
    banks = load_banks()
    for intent in INTENTS:
        bank, held = banks["agent_templates"][intent], banks["agent_templates_heldout"][intent]
        visible = {line for v in bank.values() for line in v}
        heldout = {line for v in held.values() for line in v}
        assert len(visible) >= 10 and len(heldout) >= 5 and len(visible) + len(heldout) >= 15, (
            intent
        )
        assert set(held) == set(bank), intent  # same variants, so any move has a reference
        assert not visible & heldout, intent
    assert set(banks["agent_templates"]["Objection_Handling"]) >= set(OBJECTION_TYPES)
    for act in ACTS:
        bank = banks["customer_templates"][act]
        n = sum(len(v) for v in bank.values()) if isinstance(bank, dict) else len(bank)
        assert n >= 10, act
    assert len(OBJECTION_TYPES) >= 5


def test_simulation_is_deterministic(small):
    again = simulate_corpus(40, seed=3)
    assert again == small
    other = simulate_corpus(40, seed=4)
    assert [t.text for t in other[0].turns] != [t.text for t in small[0].turns]


def test_schema_fields(small):
    for d in small:
        assert d.outcome in {"success", "failure", "hangup"}
        assert d.agent.skill in {"novice", "intermediate", "expert"}
        assert get_product(d.product_id).id == d.product_id
        assert d.turns[0].speaker == "agent" and d.turns[0].intent in INTENTS
        for t in d.turns:
            if t.speaker == "agent":
                assert t.intent in INTENTS and t.act is None
                assert {"quality", "expert_intent", "expert_text", "violations"} <= set(t.hidden)
                assert t.hidden["quality"] in (0, 1) and t.hidden["expert_intent"] in INTENTS
            else:
                assert t.act in ACTS and t.intent is None
                assert (t.objection_type is not None) == (t.act == "objection")
        last = d.turns[-1].act
        assert (last == "agreement") == (d.outcome == "success")
        assert (last == "hangup") == (d.outcome == "hangup")


def test_done_when_numbers(corpus600):
    stats = corpus_stats(corpus600)
    conv = {s: v["rate"] for s, v in stats["conversion_by_skill"].items()}
    assert conv["expert"] > conv["intermediate"] > conv["novice"]
    assert stats["good_in_failed"] >= 0.10
    assert stats["bad_in_success"] >= 0.10
    assert all(stats["intents"][i] > 0 for i in INTENTS)
    # bad turns are mostly fluent turns at the wrong moment, not garbled text
    bad = stats["bad_types"]
    assert bad["wrong_moment"] > bad["generic"] > 0 and bad["unfaithful"] > 0


def test_checker_is_a_detector_not_the_label(corpus600):
    """Unfaithful turns in a checkable form (a wrong number, a stock promise) are always flagged;
    subtle ones (data/unfaithful_forms.yaml) mostly slip through; true but suspicious lines trip
    it; plain faithful turns never do. So recall and precision are measured, not 1 by design."""
    found: dict[str | None, list[bool]] = {}
    for d in corpus600:
        for t in d.turns:
            if t.speaker == "agent":
                form = t.hidden["unfaithful_form"]
                assert (form in {None, "suspicious"}) == t.hidden["faithful"], t.text
                found.setdefault(form, []).append(bool(t.hidden["violations"]))
    assert all(found["number"]) and all(found["promise"])
    assert np.mean(found["subtle"]) < 0.4 and np.mean(found["suspicious"]) > 0.6
    assert not any(found[None])
    flagged_unfaithful = sum(sum(found[k]) for k in ("number", "promise", "subtle"))
    n_unfaithful = sum(len(found[k]) for k in ("number", "promise", "subtle"))
    recall = flagged_unfaithful / n_unfaithful
    precision = flagged_unfaithful / (flagged_unfaithful + sum(found["suspicious"]))
    assert n_unfaithful > 50 and 0.6 <= recall <= 0.95 and precision < 0.95


def test_next_act_carries_signal(corpus600):
    """The customer's next act must tell (noisily) good turns from bad ones."""
    pos = {0: [], 1: []}
    for d in corpus600:
        for i, t in enumerate(d.turns):
            if t.speaker == "agent":
                pos[t.hidden["quality"]].append(d.turns[i + 1].act in ("positive", "agreement"))
    assert np.mean(pos[1]) > np.mean(pos[0]) + 0.15
    assert np.mean(pos[0]) > 0.05  # but noisy


def test_customer_simulator_free_text_api(small):
    d = small[0]
    sim = CustomerSimulator(d.merchant, get_product(d.product_id), seed=7)
    assert sim.expert_intent() == "Opening"
    act, text, done, outcome = sim.step("Opening", faithful=True, personalized=True)
    assert act in ACTS and isinstance(text, str) and text
    assert (outcome is None) == (not done)
    assert sim.last_quality == 1
    while not sim.done:
        act, text, done, outcome = sim.step(sim.expert_intent(), True, True)
    assert outcome in {"success", "failure", "hangup"}
    with pytest.raises(RuntimeError):
        sim.step("Opening")
    with pytest.raises(ValueError):
        CustomerSimulator(d.merchant, get_product(d.product_id)).step("Pitch")


def test_visible_views_hide_latent_state(small):
    d = small[0]
    facts = visible_merchant_facts(d.merchant)
    assert not set(LATENT_MERCHANT_FIELDS) & set(facts)
    assert {"name", "category", "metrics", "peer_medians"} <= set(facts)
    contexts = list(agent_turn_contexts(d))
    assert [c.index for c in contexts] == [i for i, t in enumerate(d.turns) if t.speaker == "agent"]
    assert contexts[0].prev_act is None and contexts[0].history == []
    assert contexts[0].product.id == d.product_id
    for c in contexts[1:]:
        assert c.prev_act == d.turns[c.index - 1].act
        assert all(t.hidden == {} for t in c.history)
    assert d.turns[0].hidden  # the originals keep their ground truth


class FakeBackend:
    """Rewrites by rule: keep, change the price, or drop everything after the first comma."""

    def __init__(self, mode):
        self.mode = mode

    def chat(self, batch, **kw):
        out = []
        for messages in batch:
            line = messages[-1]["content"].removeprefix("Line: ")
            if self.mode == "keep":
                out.append("Rewritten line: " + line.replace("Hi", "Hey"))
            elif self.mode == "price":
                out.append(line.replace("$", "$1"))
            else:
                out.append("Sure.")
        return out


def test_realize_with_llm_guard(small):
    new, counts = realize_with_llm(small, FakeBackend("keep"), sample=3, seed=0)
    assert counts["dialogues"] == 3 and counts["accepted"] + counts["rejected"] == counts["turns"]
    assert counts["accepted"] > 0
    changed = [t for d in new for t in d.turns if t.hidden.get("realized")]
    assert all(
        t.hidden["template_text"] != t.text or "Hi" not in t.hidden["template_text"]
        for t in changed
    )
    assert len(new) == len(small) and sum(a != b for a, b in zip(new, small, strict=True)) <= 3
    _, bad = realize_with_llm(small[:5], FakeBackend("price"))
    with_price = sum("$" in t.text for d in small[:5] for t in d.turns if t.speaker == "agent")
    assert bad["rejected_lost_fact"] + bad["rejected_new_violation"] >= with_price > 0
    _, empty = realize_with_llm(small[:2], FakeBackend("short"))
    assert empty["accepted"] == 0 and empty["rejected_empty"] == empty["turns"]


def test_quality_filter_removes_duplicates_and_malformed(small):
    broken = dataclasses.replace(small[1], turns=small[1].turns[1:])  # starts with the customer
    dup = dataclasses.replace(small[0], id="dup")
    kept, report = quality_filter([*small, dup, broken], hash_embed, threshold=0.97)
    assert report["removed_duplicate"] == 1 and report["removed_structure"] == 1
    assert report["n_kept"] == len(kept) == len(small)
    assert "dup" not in {d.id for d in kept}


def test_split_by_merchant(corpus600):
    parts = split(corpus600, seed=0, fractions=(0.8, 0.1, 0.1))
    assert set(parts) == {"train", "validation", "test"}
    assert sum(map(len, parts.values())) == len(corpus600)
    owners = [{d.merchant.id for d in v} for v in parts.values()]
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert abs(len(parts["train"]) / len(corpus600) - 0.8) < 0.02
    assert split(corpus600, seed=0) == parts
    with pytest.raises(ValueError, match="split_fractions"):
        split(corpus600, fractions=(0.5, 0.1))


def test_save_load_roundtrip_and_hidden_apart(small, tmp_path):
    parts = split(small, seed=1)
    save_corpus(parts, tmp_path)
    back = load_corpus(tmp_path)
    assert back == parts
    visible = (tmp_path / "train.jsonl").read_text()
    for word in ("quality", "expert_text", "initial_interest", "patience", "violations"):
        assert word not in visible
    blind = load_corpus(tmp_path, with_hidden=False)
    assert all(t.hidden == {} for d in blind["train"] for t in d.turns)
    assert without_hidden(parts["train"]) == blind["train"]  # the same view, without a file
    assert parts["train"][0].turns[0].hidden  # the caller's copy keeps its hidden fields
    hf = to_hf_dataset(parts)
    assert set(hf) == {"train", "validation", "test"}
    assert "quality" not in json.dumps(hf["train"][0])


def test_malformed_line_names_file_line_field(small, tmp_path):
    save_corpus({"train": small[:3]}, tmp_path)
    path = tmp_path / "train.jsonl"
    lines = path.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["turns"][2]["speaker"] = "robot"
    lines[1] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusFormatError, match=r"train\.jsonl:2: turns\[2\]: field 'speaker'"):
        load_corpus(tmp_path)
    lines[1] = "{not json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusFormatError, match=r"train\.jsonl:2: not valid JSON"):
        load_corpus(tmp_path)


def test_corpus_stats(small):
    stats = corpus_stats(small)
    assert stats["n_calls"] == 40 and sum(stats["outcomes"].values()) == 40
    assert stats["n_agent_turns"] == sum(stats["intents"].values())


def test_mentions_merchant_data(small):
    m = small[0].merchant
    orders = int(m.metrics["monthly_orders"])
    assert mentions_merchant_data(f"You do {orders:,} orders a month.", m)
    assert mentions_merchant_data(f"Your conversion is {m.metrics['conversion']:.1f}%.", m)
    assert not mentions_merchant_data("Many stores are growing with us this year.", m)


def test_doga_parts_are_fitted_on_the_training_split_without_hidden_fields(small, monkeypatch):
    """`build_parts` gets splits loaded WITH hidden fields (the customer and the referee need
    them); the agent's classifier must still see none of them."""
    from salesman_utils.agent import parts as parts_mod
    from salesman_utils.config import load_profile

    class Seen(Exception):
        pass

    def spy(train, *args, **kwargs):
        raise Seen(train)

    monkeypatch.setattr(parts_mod.IntentClassifier, "fit", spy)
    splits = split(small, seed=1)
    assert any(t.hidden for d in splits["train"] for t in d.turns)
    w = np.ones(sum(t.speaker == "agent" for d in splits["train"] for t in d.turns))
    with pytest.raises(Seen) as seen:
        parts_mod.build_parts(load_profile("smoke"), splits, posteriors=w, use_cache=False)
    train = seen.value.args[0]
    assert [d.id for d in train] == [d.id for d in splits["train"]]
    assert all(t.hidden == {} for d in train for t in d.turns)
    blank = without_hidden(splits["train"][:1])[0].merchant  # latent fields at their defaults
    for d in train:
        assert all(getattr(d.merchant, k) == getattr(blank, k) for k in LATENT_MERCHANT_FIELDS)
