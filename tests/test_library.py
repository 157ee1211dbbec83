"""Script library: slotting and filling, the build on 700 simulated calls (done-when of issue 5),
versioned save/load, retrieval, fact-check drops, outline methods and the config-hash cache."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from salesman_utils.agent.bayes import fit_turn_quality
from salesman_utils.agent.library import (
    LIBRARY_VERSION,
    LibraryFormatError,
    MissingSlotError,
    ScriptLibrary,
    agent_turns,
    build_library,
    cluster_entries,
    cluster_turns,
    fill,
    load_or_build,
    select_top_turns,
    slot_values,
    source_quality,
    templatize,
)
from salesman_utils.world.corpus import INTENTS, get_product, simulate_corpus, split


def fake_embed(texts):
    """Deterministic stand-in embedder: a unit vector seeded by the text's hash."""
    out = []
    for t in texts:
        seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
        out.append(np.random.default_rng(seed).normal(size=16))
    return np.asarray(out)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Small embedding batches run faster on one thread than on two contended cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def corpus700():
    splits = split(simulate_corpus(700, seed=5), seed=0)
    train = splits["train"]
    return train, fit_turn_quality(train).posterior(train)


@pytest.fixture(scope="module")
def library(corpus700, embedder):
    train, w = corpus700
    return build_library(train, w, embedder, max_k=8, min_support=3, top_fraction=0.5, seed=0)


@pytest.fixture(scope="module")
def small(corpus700):
    train, w = corpus700
    n = sum(1 for d in train[:80] for t in d.turns if t.speaker == "agent")
    return train[:80], w[:n]


# ---------------------------------------------------------------- slots


def test_templatize_inverts_fill_on_bank_templates(corpus700):
    d = corpus700[0][0]
    product = get_product(d.product_id)
    for tpl in [
        "I'm looking at your dashboard: your {gap_label} is {gap_value}, while similar {plural} "
        "nearby are around {gap_peer}.",
        "You're doing {orders} orders a month; comparable {plural} in your area do about "
        "{peer_orders}, so there's room to grow.",
        "Since {pain}, I'd suggest {product}: {summary}. The {plan} plan is {price} a {period}.",
        "Hi {owner}, {agent} from {platform}. I'm calling {store} about {promo}.",
        "Okay, check that the plan says {plan} at {price} per {period}: {promo_terms}.",
    ]:
        text = fill(tpl, product, d.merchant, agent_name=d.agent.name)
        assert "{" not in text
        assert templatize(text, product, d.merchant, d.agent.name) == tpl


def test_fill_known_values_and_missing_slot(corpus700):
    d = corpus700[0][0]
    product = get_product("spotlight_ads")
    v = slot_values(product, d.merchant)
    assert v["price"] == "$39" and v["plan"] == "Starter" and v["period"] == "month"
    assert v["promo"] == "50% off the first month" and v["product"] == "Spotlight Ads"
    assert v["owner"] == d.merchant.owner and v["store"] == d.merchant.name
    assert fill("{product} is {price} a {period}.", "spotlight_ads", d.merchant) == (
        "Spotlight Ads is $39 a month."
    )
    with pytest.raises(MissingSlotError, match=r"\{discount_code\}") as err:
        fill("Use {discount_code} at {price}.", product, d.merchant)
    assert err.value.slot == "discount_code"
    with pytest.raises(MissingSlotError, match=r"\{pain\}"):
        fill("Since {pain}, try it.", product, d.merchant, extra={"pain": ""})


# ---------------------------------------------------------------- the build (done-when)


def test_every_intent_has_templates_with_valid_fields(library, corpus700):
    train = corpus700[0]
    by_id = {d.id: d for d in train}
    assert {e.intent for e in library.entries} == set(INTENTS)
    for e in library.entries:
        assert e.id.startswith(e.intent) and e.support >= 3
        assert 2 <= len(e.outline) <= 4 and e.outline_method == "medoid_sentences"
        assert 0.0 < e.ci[0] < e.posterior_mean < e.ci[1] < 1.0
        assert len(e.source_turns) == e.support
        assert set(e.slots) == {s for s in e.slots if "{" + s + "}" in e.template}
        for did, i in e.source_turns:
            turn = by_id[did].turns[i]
            assert turn.speaker == "agent" and turn.intent == e.intent
    assert len(library) == 6 * 8 and sum(library.dropped.values()) == 0


def test_sources_are_better_than_the_corpus(library, corpus700):
    table = source_quality(library, corpus700[0]).set_index("intent")
    overall = table.loc["overall"]
    print(
        table[["n_sources", "source_good_share", "corpus_good_share", "lift"]].round(3).to_string()
    )
    assert overall.lift >= 0.10
    assert overall.source_good_share == pytest.approx(0.747, abs=0.01)
    assert overall.corpus_good_share == pytest.approx(0.550, abs=0.01)
    assert (table.lift > 0).all()


def test_posteriors_must_match_agent_turns(corpus700):
    train, w = corpus700
    with pytest.raises(ValueError, match="one per agent turn"):
        build_library(train, w[:-1], fake_embed)


def test_build_never_reads_hidden(small):
    dialogues, w = small
    stripped = [
        dataclasses.replace(d, turns=[dataclasses.replace(t, hidden={}) for t in d.turns])
        for d in dialogues
    ]
    a = build_library(dialogues, w, fake_embed, max_k=3, min_support=2)
    b = build_library(stripped, w, fake_embed, max_k=3, min_support=2)
    assert [dataclasses.asdict(e) for e in a.entries] == [dataclasses.asdict(e) for e in b.entries]


def test_unfaithful_templates_are_dropped_and_counted(small):
    dialogues, w = small
    bad = "Honestly, {} costs just $1 a month and it comes with guaranteed order growth."
    broken = [
        dataclasses.replace(
            d,
            turns=[
                dataclasses.replace(t, text=bad.format(get_product(d.product_id).name))
                if t.intent == "Product_Introduction"
                else t
                for t in d.turns
            ],
        )
        for d in dialogues
    ]
    lib = build_library(broken, w, fake_embed, max_k=3, min_support=2)
    assert lib.dropped["fact_check"] >= 1
    assert lib.by_intent("Product_Introduction") == []
    assert lib.by_intent("Opening")


# ---------------------------------------------------------------- retrieval, save/load


def test_retrieve_ranks_by_similarity_times_posterior(library, embedder):
    context = "Customer: that's too expensive for a small shop like mine."
    got = library.retrieve("Objection_Handling", context, k=3)
    cands = library.by_intent("Objection_Handling")
    q = embedder.encode([context], normalize_embeddings=True)[0]
    x = embedder.encode([e.example for e in cands], normalize_embeddings=True)
    order = np.argsort(-(x @ q) * np.array([e.posterior_mean for e in cands]))
    assert [e.id for e in got] == [cands[i].id for i in order[:3]]
    with pytest.raises(ValueError, match="unknown intent"):
        library.retrieve("Small_Talk", context, k=1)


def test_retrieve_with_several_lines_averages_their_unit_embeddings(library, embedder):
    """DOGA searches with the last two turns: the query is the normalised mean of the lines'
    unit vectors; a 1-tuple is the text itself; empty lines fall back to the intent."""
    lines = ("We already run coupons.", "That's too expensive for a small shop like mine.")
    cands = library.by_intent("Objection_Handling")
    x = embedder.encode([e.example for e in cands], normalize_embeddings=True)
    q = embedder.encode(list(lines), normalize_embeddings=True).mean(axis=0)
    q = q / np.linalg.norm(q)
    order = np.argsort(-(x @ q) * np.array([e.posterior_mean for e in cands]))
    got = library.retrieve("Objection_Handling", lines, k=3)
    assert [e.id for e in got] == [cands[i].id for i in order[:3]]
    one = library.retrieve("Objection_Handling", lines[1:], k=3)
    assert [e.id for e in one] == [
        e.id for e in library.retrieve("Objection_Handling", lines[1], 3)
    ]
    empty = library.retrieve("Objection_Handling", ("", ""), k=2)
    assert [e.id for e in empty] == [
        e.id for e in library.retrieve("Objection_Handling", "Objection_Handling", 2)
    ]


def test_save_load_round_trip(library, tmp_path, embedder):
    path = library.save(tmp_path / "lib.json")
    assert json.loads(path.read_text())["version"] == LIBRARY_VERSION
    back = ScriptLibrary.load(path, embedder=embedder)
    assert [dataclasses.asdict(e) for e in back.entries] == [
        dataclasses.asdict(e) for e in library.entries
    ]
    assert back.dropped == library.dropped and back.meta == library.meta
    ctx = "Merchant: we get views but few orders."
    assert [e.id for e in back.retrieve("Business_Analysis", ctx, 2)] == [
        e.id for e in library.retrieve("Business_Analysis", ctx, 2)
    ]


def test_load_errors_name_the_file(library, tmp_path):
    good = json.loads(library.save(tmp_path / "ok.json").read_text())
    cases = {
        "broken.json": "{not json",
        "v2.json": json.dumps({**good, "version": 2}),
        "nofield.json": json.dumps({**good, "entries": [{"id": "x"}]}),
    }
    for name, body in cases.items():
        (tmp_path / name).write_text(body)
        with pytest.raises(LibraryFormatError, match=name):
            ScriptLibrary.load(tmp_path / name)


# ---------------------------------------------------------------- outlines, cache


class FakeBackend:
    name = "fake"

    def __init__(self, reply):
        self.reply, self.calls = reply, 0

    def chat(self, batch, **kwargs):
        self.calls += 1
        return [self.reply for _ in batch]


def test_llm_outlines_and_fallback(small):
    dialogues, w = small
    good = FakeBackend("1. Greet {owner} by name\n2. Say who you are\n3. Ask for two minutes")
    lib = build_library(dialogues, w, fake_embed, max_k=2, min_support=2, outline_backend=good)
    assert good.calls == 1 and all(e.outline_method == "llm" for e in lib.entries)
    assert lib.entries[0].outline == [
        "Greet {owner} by name",
        "Say who you are",
        "Ask for two minutes",
    ]
    lib = build_library(
        dialogues, w, fake_embed, max_k=2, min_support=2, outline_backend=FakeBackend("ok")
    )
    assert all(e.outline_method == "medoid_sentences" for e in lib.entries)


def test_load_or_build_is_cached_by_config(smoke_profile, small, tmp_path):
    from salesman_utils.config import PathsConfig

    prof = dataclasses.replace(
        smoke_profile, paths=PathsConfig(artifacts=str(tmp_path), results=str(tmp_path / "r"))
    )
    dialogues, w = small
    splits = {"train": dialogues}
    first = load_or_build(prof, splits, {"train": w})
    path = tmp_path / "library" / "library.json"
    stamp = path.stat().st_mtime_ns
    again = load_or_build(prof, splits, w)
    assert path.stat().st_mtime_ns == stamp and again.meta == first.meta
    changed = dataclasses.replace(prof, library=dataclasses.replace(prof.library, max_k=2))
    load_or_build(changed, splits, w)
    assert json.loads(path.read_text())["meta"]["max_k"] == 2


def test_named_steps_select_cluster_and_count_drops(corpus700):
    """The build's steps one by one: step 1 keeps the top half by posterior; step 3 turns every
    cluster into an entry or a counted drop (an impossible support drops them all)."""
    train, w = corpus700
    refs = agent_turns(train)
    turns = select_top_turns(refs, np.asarray(w), "Opening", 0.5, {})
    w_open = np.array(
        [float(x) for (d, i), x in zip(refs, w, strict=True) if d.turns[i].intent == "Opening"]
    )
    assert len(w_open) / 2 <= len(turns) < len(w_open)  # the top half (ties kept)
    assert min(t.w for t in turns) >= np.quantile(w_open, 0.5)
    plan = cluster_turns("Opening", turns, fake_embed, max_k=4, seed=0)
    assert plan.vectors.shape[0] == len(plan.texts) == len(plan.labels)
    n_clusters = len(set(plan.labels.tolist()))
    dropped = {"min_support": 0, "fact_check": 0, "duplicate": 0}
    assert cluster_entries(plan, min_support=len(turns) + 1, dropped=dropped) == []
    assert dropped["min_support"] == n_clusters
    dropped = {"min_support": 0, "fact_check": 0, "duplicate": 0}
    entries = cluster_entries(plan, min_support=1, dropped=dropped)
    assert len(entries) + sum(dropped.values()) == n_clusters
    assert [e.posterior_mean for e in entries] == sorted(
        (e.posterior_mean for e in entries), reverse=True
    )
