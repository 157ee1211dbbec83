"""Reward functions and GRPO datasets: parsing, known reward values, hidden-field isolation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from salesman_utils.agent import datasets as D
from salesman_utils.agent import prompts as P
from salesman_utils.agent import rewards as R


def msg(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


GOOD = "Plan: Needs_Discovery - ask about busy hours\nReply: How are your weekday evenings going?"


@pytest.mark.parametrize(
    ("text", "intent", "plan", "reply"),
    [
        (
            GOOD,
            "Needs_Discovery",
            "Needs_Discovery - ask about busy hours",
            "How are your weekday evenings going?",
        ),
        (
            "plan: business analysis - compare. Reply: You get 248 orders.",
            "Business_Analysis",
            "business analysis - compare.",
            "You get 248 orders.",
        ),
        (
            "**Plan:** Objection Handling - answer\n**Reply:** Fair point.",
            "Objection_Handling",
            "Objection Handling - answer",
            "Fair point.",
        ),
        ("Hello there, this is Sam.", None, None, "Hello there, this is Sam."),
        ("Plan: Opening - greet\nHi!\nPlan: Opening - again", "Opening", "Opening - greet", "Hi!"),
        ("Plan: something else\nReply: ok", None, "something else", "ok"),
        ("", None, None, ""),
        ("Plan:\nReply: hi", None, "", "hi"),  # an empty plan is a plan line without a plan
    ],
)
def test_parse_completion(text, intent, plan, reply):
    assert R.parse_completion(text) == (intent, plan, reply)


PROMPT = [
    {
        "role": "system",
        "content": "You are Sam, a sales rep for Neighborly, on a phone call with the owner of a "
        "local store.\nProduct: Spotlight Ads.\n" + "\n".join(P.RULES),
    },
    {"role": "user", "content": "Hello?"},
    {"role": "assistant", "content": "Hi, this is Sam from Neighborly, do you have a minute?"},
    {"role": "user", "content": "I am busy, what is this about and how much does it cost me?"},
]


@pytest.mark.parametrize(
    ("reply", "problems"),
    [
        ("Starter is $39 a month, and first-time advertisers get 50% off the first month.", []),
        ("Sure, it takes two minutes.", []),
        ("", ["empty"]),
        ("   \n ", ["empty"]),
        ("Okay.", ["length"]),
        ("word " * 70, ["length"]),
        ("Rep: Starter is $39 a month.", ["label"]),
        ("Plan: Needs_Discovery - ask\nReply: How busy are you?", ["label"]),
        ("Let me do some Business Analysis of your store.", ["label"]),
        ("Starter is $39 a month.\nMerchant: that is too much.", ["other_speaker"]),
        ("- Starter: $39 a month\n- Growth: $99 a month", ["markup"]),
        ("It is **only** $39 a month for Starter.", ["markup"]),
        ("Here is a reply: how are your weekday evenings?", ["meta"]),
        ("As an AI I cannot sell you anything today, sorry.", ["meta"]),
        ("(smiles) Starter is $39 a month.", ["meta"]),
        ("Never invent prices, discounts, terms or promises, okay?", ["echo"]),
        ("I am busy, what is this about and how much does it cost me?", ["echo"]),
        ("Hi, this is Sam from Neighborly, do you have a minute?", ["echo"]),
    ],
)
def test_format_problems_on_hand_written_replies(reply, problems):
    assert R.format_problems(reply, PROMPT) == problems


def test_format_reward_known_values():
    texts = [
        "How are your weekday evenings going?",  # one speakable turn: 1.0
        "Plan: Opening - greet",  # label (plan line + intent name): 0.75
        "Reply: **hi** there",  # label and markup: 0.5
        "Rep: (note) hi\nMerchant: no",  # label, other speaker, meta: 0.25
        "Here is: - **Plan:** Business_Analysis\n Merchant: x (y)" + " w" * 70,  # 5+: 0.0
        "",  # empty: 0.0
    ]
    got = R.format_reward([None] * 6, [msg(t) for t in texts])
    assert got == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert R.format_reward([None], ["How are you?"]) == [1.0]  # plain strings work too
    assert R.format_reward([PROMPT], [P.RULES[-1]]) == [0.75]  # an echo of the rules
    assert R.format_reward(None, [None]) == [0.0]  # odd input reads as empty, never raises


def test_similarity_and_bayes_rewards():
    ref = "How are your weekday evenings going?"
    proto = "Our coupons are co-funded by the platform."
    comps = [msg(GOOD), msg("Plan: Opening - x\nReply: "), msg("Reply: " + proto)]
    sim = R.similarity_reward([None] * 3, comps, reference=[ref] * 3)
    assert sim[0] == pytest.approx(1.0, abs=1e-5)  # the reply part equals the reference
    assert sim[1] == 0.0  # empty reply: no credit
    assert sim[2] < 0.5
    # w = 1 -> similarity to the reference; w = 0 -> similarity to the prototype
    b1 = R.bayes_reward(
        [None] * 3, comps, reference=[ref] * 3, prototype=[proto] * 3, weight=[1.0] * 3
    )
    b0 = R.bayes_reward(
        [None] * 3, comps, reference=[ref] * 3, prototype=[proto] * 3, weight=[0.0] * 3
    )
    assert b1 == pytest.approx(sim, abs=1e-6)
    assert b0[2] == pytest.approx(1.0, abs=1e-5)
    half = R.bayes_reward([None], comps[:1], reference=[ref], prototype=[proto], weight=[0.5])
    assert half[0] == pytest.approx(0.5 * sim[0] + 0.5 * b0[0], abs=1e-6)


def test_embedding_cache_reuses_vectors(monkeypatch):
    R.embed_cached(["a cached sentence"])
    import salesman_utils.models as models

    monkeypatch.setattr(models, "embed", lambda *a, **k: pytest.fail("recomputed a cached text"))
    assert R.embed_cached(["a cached sentence"]).shape[0] == 1


def test_faithfulness_reward():
    comps = [
        "Plan: Product_Introduction - plans\nReply: Starter is $39 a month.",  # in the KB
        "Plan: Product_Introduction - plans\nReply: Starter is $45 a month.",  # wrong price
        "Plan: Objection_Handling - reassure\nReply: It is guaranteed to double your orders.",
        "Plan: Opening - greet\nReply: Hi, this is Sam from Neighborly.",
    ]
    out = R.faithfulness_reward(
        [None] * 4, [msg(c) for c in comps], product_id=["spotlight_ads"] * 4
    )
    assert out == [0.0, -1.0, -1.0, 0.0]


def test_make_reward_funcs_weights(smoke_profile):
    from trl.trainer.utils import get_callable_name

    rw = smoke_profile.training.reward_weights
    names = ["format_reward", "similarity_reward", "bayes_reward", "faithfulness_reward"]
    for variant, expected in {
        "grpo_sim": [rw.format, rw.bayes, 0.0, rw.faith],
        "grpo_bayes": [rw.format, 0.0, rw.bayes, rw.faith],
        "sft_grpo_bayes": [rw.format, 0.0, rw.bayes, rw.faith],
    }.items():
        funcs, weights = R.make_reward_funcs(smoke_profile, variant)
        assert [get_callable_name(f) for f in funcs] == names  # the names TRL logs
        assert weights == expected
    with pytest.raises(ValueError, match="unknown GRPO variant"):
        R.make_reward_funcs(smoke_profile, "sft")


@pytest.fixture(scope="module")
def small_corpus():
    from salesman_utils.world.corpus import simulate_corpus, split

    return split(simulate_corpus(40, seed=3), seed=0)


def _strip_hidden(dialogues):
    return [
        dataclasses.replace(d, turns=[dataclasses.replace(t, hidden={}) for t in d.turns])
        for d in dialogues
    ]


def test_build_grpo_dataset(small_corpus, smoke_profile):
    from salesman_utils.world.corpus import fact_check, get_product

    train = small_corpus["train"]
    n_turns = sum(t.speaker == "agent" for d in train for t in d.turns)
    w = np.linspace(0, 1, n_turns)
    ds = D.build_grpo_dataset(train, w, smoke_profile, n=12)
    assert len(ds) == 12
    assert set(ds.column_names) == {
        "prompt",
        "reference",
        "prototype",
        "weight",
        "intent",
        "product_id",
        "merchant",
        "dialogue_id",
        "turn_index",
    }
    row = ds[0]
    roles = [m["role"] for m in row["prompt"]]
    assert roles[0] == "system" and roles[1] == "user" and roles[-1] == "user"
    assert all(a != b for a, b in zip(roles[1:], roles[2:], strict=False))  # alternating turns
    system = row["prompt"][0]["content"]
    assert "Plan:" not in system and "Reply:" not in system and "Example" not in system
    assert not any(i in m["content"] for m in row["prompt"] for i in R.INTENTS if "_" in i)
    assert all(rule in system for rule in P.RULES)
    assert 0.0 <= min(ds["weight"]) and max(ds["weight"]) <= 1.0
    for r in ds:
        assert r["intent"] in R.INTENTS and r["prototype"]
        assert not fact_check(r["prototype"], get_product(r["product_id"]))
        assert "initial_interest" not in r["merchant"] and "patience" not in r["merchant"]
    # nothing from `hidden` is read: the same dataset comes out of dialogues without it
    assert (
        D.build_grpo_dataset(_strip_hidden(train), w, smoke_profile, n=12).to_list() == ds.to_list()
    )


def test_prototypes_are_best_posterior(small_corpus):
    train = small_corpus["train"]
    turns = [(d, t) for d in train for t in d.turns if t.speaker == "agent"]
    w = np.zeros(len(turns))
    best = next(i for i, (d, t) in enumerate(turns) if t.intent == "Needs_Discovery")
    w[best] = 0.99
    protos = D.select_prototypes(train, w)
    assert protos[("Needs_Discovery", None)] == turns[best][1].text
    assert protos[("Needs_Discovery", turns[best][0].product_id)] == turns[best][1].text


def test_first_turn_prompt_is_the_merchant_picking_up(small_corpus, smoke_profile):
    from salesman_utils.world.corpus import agent_turn_contexts

    d = small_corpus["train"][0]
    ctx = next(agent_turn_contexts(d))
    prompt = P.build_prompt(ctx, d, smoke_profile)
    assert prompt[1:] == [{"role": "user", "content": P.PICK_UP}]
    # the role line is short (a long one was copied as the rep's own words), and the real prices
    # and offer stand in the system message with the rule to answer a price question with them
    system = prompt[0]["content"]
    assert system.splitlines()[0] == f"You are {d.agent.name} from {ctx.product.platform}."
    assert all(f"${p['price']:g}" in system for p in ctx.product.plans)
    assert ctx.product.promotion["headline"] in system
    assert any("asks the price" in rule for rule in P.RULES)


def test_eval_dataset_and_sft_targets(small_corpus, smoke_profile):
    ev = D.build_eval_dataset(small_corpus["test"], smoke_profile, n=6)
    assert {"expert_text", "expert_intent", "quality"} <= set(ev.column_names)
    assert "weight" not in ev.column_names  # reward columns only when posteriors are given
    train = small_corpus["train"]
    w = np.full(sum(t.speaker == "agent" for d in train for t in d.turns), 0.5)
    grpo = D.build_grpo_dataset(train, w, smoke_profile, n=4)
    sft = D.to_sft_dataset(grpo)
    assert sft.column_names == ["prompt", "completion"]
    for row, src in zip(sft, grpo, strict=True):
        target = row["completion"][0]["content"]
        assert target == src["reference"].strip()  # the reference turn's words, no plan line
        assert R.parse_completion(target) == (None, None, target)


def test_price_answer_rows_are_reps_answering_a_price_push_from_the_knowledge_base(
    small_corpus, smoke_profile
):
    from salesman_utils.agent.pricing import asks_about_price, states_price
    from salesman_utils.world.corpus import get_product

    train = small_corpus["train"]
    rows = D.price_answer_rows(train, smoke_profile)
    assert rows  # the simulated reps do answer some price pushes with a plan price
    assert rows == D.price_answer_rows(_strip_hidden(train), smoke_profile)  # reads no hidden field
    for row in rows:
        product = get_product(row["product_id"])
        assert states_price(row["reference"], product)
        assert R.fact_check(row["reference"], product, json.loads(row["merchant"])) == []
        merchant = [m["content"] for m in row["prompt"] if m["role"] == "user"][-1]
        assert asks_about_price(merchant)
        assert "weight" not in row and "prototype" not in row  # no reward columns


def test_sft_rows_mix_in_a_share_of_price_answers(small_corpus, smoke_profile):
    train = small_corpus["train"]
    w = np.full(sum(t.speaker == "agent" for d in train for t in d.turns), 0.5)
    grpo = D.build_grpo_dataset(train, w, smoke_profile, n=20)
    prices = D.price_answer_rows(train, smoke_profile)
    assert len(prices) >= 3
    mixed = D.sft_rows(grpo, prices, 0.15, seed=0)  # round(0.15 * 20) = 3 price rows
    key = [(r["dialogue_id"], r["turn_index"]) for r in mixed]
    price_keys = {(r["dialogue_id"], r["turn_index"]) for r in prices}
    assert len(mixed) == 20 and sum(k in price_keys for k in key) >= 3
    assert mixed == D.sft_rows(grpo, prices, 0.15, seed=0)  # seeded
    none = D.sft_rows(grpo, prices, 0.0, seed=0)
    assert sorted(map(str, none)) == sorted(map(str, grpo.to_list()))  # share 0: the GRPO rows
    few = D.sft_rows(grpo, prices[:2], 0.5, seed=0)  # fewer price rows than asked: all of them
    assert sum((r["dialogue_id"], r["turn_index"]) in price_keys for r in few) >= 2
    sft = D.to_sft_dataset(mixed)
    assert sft.column_names == ["prompt", "completion"] and len(sft) == 20
    with pytest.raises(ValueError, match="training.sft.price_share"):
        D.sft_rows(grpo, prices, 1.0, seed=0)


def test_reward_components_on_heldout(small_corpus, smoke_profile):
    test = small_corpus["test"]
    n_turns = sum(t.speaker == "agent" for d in test for t in d.turns)
    protos = D.select_prototypes(small_corpus["train"], np.full(_n_agent(small_corpus), 0.5))
    ev = D.build_eval_dataset(
        test, smoke_profile, n=3, posteriors=np.full(n_turns, 1.0), prototypes=protos
    )
    assert {"weight", "prototype"} <= set(ev.column_names)
    df = R.reward_components(list(ev["reference"]), ev, smoke_profile)
    assert df["similarity"].tolist() == pytest.approx([1.0] * 3, abs=1e-5)
    assert df["bayes"].tolist() == pytest.approx([1.0] * 3, abs=1e-5)  # w = 1: the reference
    rw = smoke_profile.training.reward_weights
    expect = rw.format * df["format"] + rw.bayes * df["bayes"] + rw.faith * df["faith"]
    assert df["total_bayes"].tolist() == pytest.approx(expect.tolist())


def _n_agent(splits):
    return sum(t.speaker == "agent" for d in splits["train"] for t in d.turns)


def test_score_replies_known_values(small_corpus, smoke_profile):
    ev = D.build_eval_dataset(small_corpus["test"], smoke_profile, n=3)
    replies = [
        ev[0]["expert_text"],
        "Reply: it is guaranteed, risk-free",
        f"Plan: {ev[2]['expert_intent']} - x\nReply: {ev[2]['expert_text']}",  # earlier format
    ]
    df = R.score_replies(replies, ev)
    assert df.sim_expert[0] == pytest.approx(1.0, abs=1e-5)
    assert df.sim_expert[2] == pytest.approx(1.0, abs=1e-5)  # scored on its reply part
    assert df.format_ok.tolist() == [1.0, 0.0, 0.0]
    assert "intent_match" not in df.columns
    assert df.violations[0] == 0 and df.violations[1] >= 1
    assert json.loads(ev[0]["merchant"])["name"]
