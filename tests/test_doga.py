"""DOGA: intent models, FSM rules, guard actions, batching, whole simulated calls, the chat demo."""

from __future__ import annotations

import io
import sys
from collections import Counter

import numpy as np
import pytest
from sklearn.metrics import f1_score

from salesman_utils.agent.doga import (
    AgentState,
    DOGAAgent,
    PlainAgent,
    clean_reply,
    safe_template,
    uses_merchant_data,
)
from salesman_utils.agent.intents import (
    INTENTS,
    ActTagger,
    IntentClassifier,
    IntentFSM,
    ReplyTagger,
    agent_examples,
    agent_view,
    script_move,
)
from salesman_utils.config import REPO_ROOT, load_profile
from salesman_utils.world.corpus import OUTCOMES, get_product, simulate_corpus, split
from salesman_utils.world.factcheck import fact_check
from salesman_utils.world.knowledge import load_products
from salesman_utils.world.simulator import MerchantProfile, Turn, VisibleMerchant


class FakeBackend:
    """Answers from a list of replies in turn (cycled), counting chat calls and prompts."""

    name = "fake"

    def __init__(self, replies: list[str]):
        self.replies, self.i = replies, 0
        self.calls: list[int] = []

    def chat(
        self, batch, max_new_tokens=64, temperature=0.0, top_p=1.0, seed=0, desc=None, stop=None
    ):
        self.calls.append(len(batch))
        out = []
        for _ in batch:
            out.append(self.replies[self.i % len(self.replies)])
            self.i += 1
        return out


@pytest.fixture(scope="module")
def corpus600():
    return split(simulate_corpus(600, seed=3), seed=0)


@pytest.fixture(scope="module")
def classifier(corpus600):
    return IntentClassifier.fit(corpus600["train"], profile=load_profile("smoke"))


@pytest.fixture(scope="module")
def tagger(corpus600, classifier):
    return ReplyTagger.fit(corpus600["train"], embedder=classifier.embedder, max_examples=500)


@pytest.fixture(scope="module")
def fsm(corpus600):
    return IntentFSM.fit(corpus600["train"])


@pytest.fixture(scope="module")
def act_tagger(corpus600, classifier):
    return ActTagger.fit(corpus600["train"], embedder=classifier.embedder, max_examples=400)


@pytest.fixture(scope="module")
def perception(classifier):
    from salesman_utils.referee.perception import CustomerPerception

    return CustomerPerception.fit(n_merchants=12, embedder=classifier.embedder)


def _product_for(m: MerchantProfile):
    return next(p for p in load_products().values() if m.category in p.merchant_categories)


# ---------------------------------------------------------------- intent models


def test_classifier_macro_f1_on_held_out_calls(classifier, corpus600, fsm):
    """Beats the by-the-book rule over the visible history (`script_move`), measured here on the
    same calls. Against the observed rep moves even the hidden expert move scores only ~0.66
    (reps make mistakes), so no fixed 0.6 bar: on 600 calls the classifier is ~0.51 vs the rule's
    ~0.47 (observed) and ~0.73 vs ~0.66 (expert move)."""
    res = classifier.evaluate(corpus600["test"])
    hists, observed, experts = agent_examples(corpus600["test"])
    rule = [script_move(h) for h in hists]
    rule_obs = f1_score(observed, rule, labels=INTENTS, average="macro", zero_division=0)
    rule_exp = f1_score(experts, rule, labels=INTENTS, average="macro", zero_division=0)
    ceiling = f1_score(observed, experts, labels=INTENTS, average="macro", zero_division=0)
    assert rule_obs < res["macro_f1"] <= ceiling + 0.05, (res["macro_f1"], rule_obs, ceiling)
    assert res["expert_macro_f1"] >= rule_exp + 0.03, (res["expert_macro_f1"], rule_exp)
    assert res["labels"] == list(INTENTS)
    conf = np.array(res["confusion"])
    assert conf.shape == (6, 6) and conf.sum() == res["n"] > 100
    assert res["expert_macro_f1"] > res["macro_f1"]  # the observed intents carry rep mistakes
    with_fsm = classifier.evaluate(corpus600["test"], fsm=fsm)
    assert with_fsm["fsm"] and with_fsm["macro_f1"] > rule_obs


def test_predict_proba_rows_sum_to_one(classifier, corpus600):
    hist = [[], corpus600["test"][0].turns[:2]]
    p = classifier.predict_proba(hist)
    assert p.shape == (2, 6) and np.allclose(p.sum(axis=1), 1.0)
    assert INTENTS[int(p[0].argmax())] == "Opening"


def test_customer_perception_fitted_on_the_held_out_bank(perception, corpus600):
    res = perception.evaluate(corpus600["test"], max_examples=300)
    assert res["intent_accuracy"] >= 0.65, res  # the visible bank, never seen in the fit
    assert perception.tag(["Hi Rosa, this is Alex from Neighborly, got two minutes?"]) == [
        "Opening"
    ]


def test_reply_tagger_held_out(tagger, corpus600):
    res = tagger.evaluate(corpus600["test"], max_examples=200)
    assert res["macro_f1"] >= 0.9, res
    assert tagger.tag(["Hi Rosa, this is Alex from Neighborly, do you have two minutes?"]) == [
        "Opening"
    ]


def test_fsm_rules(fsm):
    assert fsm.allowed([]).tolist() == [i == "Opening" for i in INTENTS]
    after_open = [Turn("agent", "hi", intent="Opening"), Turn("customer", "ok", act="neutral")]
    mask = dict(zip(INTENTS, fsm.allowed(after_open), strict=True))
    assert not mask["Opening"] and not mask["Operational_Guidance"]
    assert not mask["Objection_Handling"]  # nothing to handle yet
    assert mask["Needs_Discovery"]
    objected = [
        *after_open,
        Turn("agent", "pitch", intent="Product_Introduction"),
        Turn("customer", "too pricey", act="objection", objection_type="price"),
    ]
    mask = dict(zip(INTENTS, fsm.allowed(objected), strict=True))
    assert mask["Objection_Handling"] and mask["Operational_Guidance"]
    p = fsm.constrain(np.full(6, 1 / 6), after_open)
    assert np.isclose(p.sum(), 1.0) and p[INTENTS.index("Opening")] == 0
    assert np.allclose(fsm.transition.sum(axis=1), 1.0) and (fsm.transition > 0).all()


# ---------------------------------------------------------------- reply handling


def test_uses_merchant_data(merchant):
    assert uses_merchant_data("You do 812 orders a month.", merchant)
    assert uses_merchant_data("Peers nearby get 1,100 orders.", merchant)
    assert uses_merchant_data("Your conversion is 3.1% against 4.0%.", merchant)
    assert not uses_merchant_data("Our plan is $39 a month for 3 months.", merchant)
    assert not uses_merchant_data("Hello, how is business?", merchant)


def test_clean_reply_strips_plan_labels_and_extra_turns():
    raw = "Plan: Opening - greet\nReply: Alex: Hi Rosa! Do you have a minute?\nCustomer: no"
    assert clean_reply(raw) == "Hi Rosa! Do you have a minute?"
    assert clean_reply("One. Two. Three. Four.") == "One. Two. Three."
    assert clean_reply("- **Hi Rosa**, do you have a minute?") == "Hi Rosa, do you have a minute?"


def test_safe_templates_are_faithful(merchant):
    for product in load_products().values():
        for intent in INTENTS:
            line = safe_template(intent, product, merchant)
            assert line and fact_check(line, product, merchant) == [], (product.id, intent)


# ---------------------------------------------------------------- agents with a fake backend


def test_guard_regenerates_then_falls_back(classifier, fsm, merchant):
    product = _product_for(merchant)
    bad = f"{product.name} is only $1 a month and guaranteed to double your orders."
    backend = FakeBackend([bad])
    prof = load_profile("smoke")
    agent = DOGAAgent(backend, None, classifier, fsm, product, merchant, profile=prof)
    agent.guard_retries = 2
    turn = agent.respond(AgentState())
    assert turn.intent == "Opening"
    assert turn.guard == {"checked": 3, "flagged": 3, "regenerated": 2, "template": 1}
    assert turn.reply == turn.outline[-1].removeprefix("Say something like: ")
    assert fact_check(turn.reply, product, merchant) == []
    assert backend.calls == [1, 1, 1]
    system = turn.prompt[0]["content"]
    assert turn.prompt[0]["role"] == "system" and "Your aim now: greet" in system
    assert "Opening" not in system and "Say something like" not in system  # no name, no example
    assert turn.prompt[-1]["role"] == "user"
    assert set(turn.timings) == {"classify", "retrieve", "generate", "guard"}


def test_guard_passes_faithful_reply_and_plain_has_no_outline(classifier, fsm, merchant):
    product = _product_for(merchant)
    backend = FakeBackend(["Plan: Opening - greet\nReply: Hi Rosa, do you have two minutes?"])
    prof = load_profile("smoke")
    doga = DOGAAgent(backend, None, classifier, fsm, product, merchant, profile=prof)
    turn = doga.respond(AgentState())
    assert turn.reply == "Hi Rosa, do you have two minutes?"
    assert turn.guard == {"checked": 1}
    plain = PlainAgent(backend, product, merchant, profile=prof)
    pturn = plain.respond(AgentState())
    assert pturn.intent is None and pturn.outline == [] and pturn.guard == {}
    assert "Your aim now" not in pturn.prompt[0]["content"]
    assert "812" in pturn.prompt[0]["content"]  # the visible dashboard is in both prompts


def test_price_push_gets_the_kb_price_outline_and_price_fallback(classifier, fsm, merchant):
    product = _product_for(merchant)
    price = f"${product.plans[0]['price']:g}"
    bad = "Sure, 80% off for you, and a year free."
    prof = load_profile("smoke")
    agent = DOGAAgent(FakeBackend([bad]), None, classifier, fsm, product, merchant, profile=prof)
    hist = [
        Turn("agent", f"Hi, this is Alex from {product.platform}.", None),
        Turn("customer", "Give me 80% off and I sign right now.", None, "objection"),
    ]
    turn = agent.respond(AgentState(hist))
    system = turn.prompt[0]["content"]
    assert price in system.split("Your aim now")[1]  # the outline states the real price
    assert product.promotion["headline"] in system.split("Your aim now")[1]
    assert turn.guard.get("template") == 1  # the invented discount is replaced ...
    assert price in turn.reply and product.promotion["headline"] in turn.reply  # ... by the price
    assert fact_check(turn.reply, product, merchant) == []
    calm = [*hist[:1], Turn("customer", "We are busy on weekends.", None, "neutral")]
    other = agent.respond(AgentState(calm)).prompt[0]["content"].split("Your aim now")[1]
    assert price not in other  # not a price question: the move's own outline


def test_off_intent_reply_is_retried_before_the_template(classifier, fsm, tagger, merchant):
    """An off-intent reply goes through the guard's retry loop like a flagged one; the template
    is the last resort."""
    product = _product_for(merchant)
    off = safe_template("Business_Analysis", product, merchant)  # faithful, another move
    on = safe_template("Opening", product, merchant)
    assert tagger.tag([off, on]) == ["Business_Analysis", "Opening"]
    prof = load_profile("smoke")
    kw = {"profile": prof, "tagger": tagger, "intent_min_proba": 0.5}
    backend = FakeBackend([off, on])
    agent = DOGAAgent(backend, None, classifier, fsm, product, merchant, guard_retries=1, **kw)
    turn = agent.respond(AgentState())
    assert turn.intent == "Opening" and turn.reply == on and turn.draft == off
    assert turn.guard == {"checked": 2, "regenerated": 1, "retried_off_intent": 1}
    assert backend.calls == [1, 1]
    never = DOGAAgent(FakeBackend([off]), None, classifier, fsm, product, merchant, **kw)
    never.guard_retries = 2
    turn = never.respond(AgentState())
    assert turn.reply == turn.outline[-1].removeprefix("Say something like: ")
    assert turn.guard["template"] == turn.guard["off_intent"] == 1
    assert turn.guard["regenerated"] == 2
    backend = FakeBackend([off, on])
    once = DOGAAgent(backend, None, classifier, fsm, product, merchant, guard_retries=1, **kw)
    once.retry_off_intent = False  # doga.retry_off_intent: false = swapped at once (no retry cost)
    turn = once.respond(AgentState())
    assert turn.guard["off_intent"] == 1 and "regenerated" not in turn.guard
    assert backend.calls == [1]


class _StubModel:
    classes_ = np.array(["A", "B", "C"])

    def predict_proba(self, x):
        return np.asarray(x, dtype=float)


class _StubTagger:
    """A reply tagger whose probabilities are the reply's own numbers (`TextTagger.proba`)."""

    model = _StubModel()

    def embedder(self, texts):
        return [[float(v) for v in t.split()] for t in texts]

    def proba(self, texts):
        return [str(c) for c in self.model.classes_], self.model.predict_proba(self.embedder(texts))


def test_soft_intent_rule_accepts_a_planned_move_above_the_cut():
    """`_off_intent`: accepted when the planned intent's probability reaches the agent's cut (being
    the top tag is not enough, issue 24); price pushes are left to the price check."""
    from types import SimpleNamespace

    from salesman_utils.agent.doga import _off_intent

    agents = [SimpleNamespace(check_intent=True, tagger=_StubTagger(), intent_min_proba=0.2)] * 4
    replies = ["0.7 0.25 0.05", "0.7 0.25 0.05", "0.85 0.1 0.05", "0.85 0.1 0.05"]
    plans = [{"intent": "A"}, {"intent": "B"}, {"intent": "B"}, {"intent": "B", "price_push": 1}]
    assert _off_intent(agents, plans, replies, [0, 1, 2, 3]) == {2}
    strict = [SimpleNamespace(check_intent=True, tagger=_StubTagger(), intent_min_proba=0.75)] * 4
    assert _off_intent(strict, plans, replies, [0, 1, 2, 3]) == {0, 1, 2}


def test_states_price_reads_plan_prices_and_the_promotion():
    from salesman_utils.agent.doga import states_price

    product = next(iter(load_products().values()))
    price = product.plans[0]["price"]
    assert states_price(f"It's ${price:g} a {product.plans[0]['period']}.", product)
    assert states_price(f"Right now there's {product.promotion['headline']}.", product)
    assert not states_price("Sure, let's talk about what works for you.", product)
    assert not states_price(f"It's ${price + 13:g} a month.", product)


def test_price_push_reply_without_the_price_is_retried(classifier, fsm, tagger, merchant):
    """A price push: a reply that does not state a KB price or the promotion (the agent's own
    reading) is regenerated; a model-written reply that states it is kept, whatever its tag."""
    product = _product_for(merchant)
    price = f"${product.plans[0]['price']:g}"
    vague = "I hear you, let's see what works for your store."
    answer = f"It's {price} a {product.plans[0]['period']}, and that's the real price."
    hist = [
        Turn("agent", f"Hi, this is Alex from {product.platform}.", None),
        Turn("customer", "How much does it cost? Give me a number.", None, "objection"),
    ]
    prof = load_profile("smoke")
    backend = FakeBackend([vague, answer])
    agent = DOGAAgent(
        backend, None, classifier, fsm, product, merchant, profile=prof, tagger=tagger
    )
    agent.guard_retries = 1
    turn = agent.respond(AgentState(hist))
    assert turn.reply == answer and turn.draft == vague
    assert turn.guard.get("retried_no_price") == 1 and not turn.guard.get("template")
    stubborn = DOGAAgent(
        FakeBackend([vague]), None, classifier, fsm, product, merchant, profile=prof, tagger=tagger
    )
    turn = stubborn.respond(AgentState(hist))
    assert turn.guard.get("no_price") == 1 and price in turn.reply  # the price line, last resort


def test_simulate_calls_batches_one_generation_per_round(
    classifier, fsm, tagger, act_tagger, perception, corpus600
):
    from salesman_utils.arena.online import (
        online_cases,
        online_table,
        reply_kinds_table,
        simulate_calls,
    )

    prof = load_profile("smoke")
    backend = FakeBackend(["Hi, this is Alex from Neighborly. How has business been lately?"])
    agent = DOGAAgent(backend, None, classifier, fsm, profile=prof, tagger=tagger)
    cases, seeds = online_cases(corpus600["test"], 3)
    calls = simulate_calls(
        agent,
        cases,
        seeds,
        prof,
        perception=perception,
        act_tagger=act_tagger,
        max_turns=4,
        progress=False,
    )
    assert len(calls) == 3 and max(backend.calls) <= 3
    # one generation per round, plus at most one per guard retry round (an off-intent reply is
    # regenerated before the template)
    rounds = max(sum(t.speaker == "agent" for t in d.turns) for d in calls)
    assert rounds <= len(backend.calls) <= rounds * (1 + prof.doga.guard_retries)
    for d in calls:
        assert d.outcome in OUTCOMES
        assert [t.speaker for t in d.turns] == ["agent", "customer"] * (len(d.turns) // 2)
        assert {"quality", "expert_intent", "planned_intent"} <= set(d.turns[0].hidden)
    table = online_table({"fake_doga": calls})
    assert table.loc[0, "n"] == 3 and table.loc[0, "lo"] <= table.loc[0, "rate"] <= 1
    assert table.loc[0, "tagger_n"] == table.loc[0, "agent_turns"]
    kinds = reply_kinds_table({"fake_doga": calls})
    assert kinds["replies"].sum() == table.loc[0, "agent_turns"]


class SpyAgent(DOGAAgent):
    """Records every state it is given."""

    def plan_many(self, states):
        self.seen = [*getattr(self, "seen", []), *states]
        return super().plan_many(states)


def test_online_agent_hears_no_simulator_label(
    classifier, fsm, tagger, act_tagger, perception, corpus600
):
    """Customer turns carry the agent's own act tagger's reading, never the simulator's act or
    objection type; the agent's past turns carry its own planned intent, not the customer's tag."""
    from salesman_utils.arena.online import online_cases, simulate_calls

    prof = load_profile("smoke")
    replies = [
        "Hi, this is Alex from Neighborly. How has business been lately?",
        "It costs $39 a month for the Starter plan, do you want to try it?",
        "I understand, lots of owners say that.",
    ]
    agent = SpyAgent(FakeBackend(replies), None, classifier, fsm, profile=prof, tagger=tagger)
    cases, seeds = online_cases(corpus600["test"], 6)
    calls = simulate_calls(
        agent,
        cases,
        seeds,
        prof,
        perception=perception,
        act_tagger=act_tagger,
        max_turns=5,
        progress=False,
    )
    assert len({(d.merchant.id, d.product_id) for d in calls}) == len(calls)  # unique keys
    truth = {}  # (merchant, speaker, position) -> simulator act (customer) / hidden (agent)
    for d in calls:
        for i, t in enumerate(d.turns):
            truth[(d.merchant.id, d.product_id, t.speaker, i)] = (
                t.act if t.speaker == "customer" else t.hidden
            )
    differs = planned_differs = 0
    checked = 0
    for state in agent.seen:
        assert isinstance(state.merchant, VisibleMerchant)  # the dashboard, no latent field
        for i, t in enumerate(state.history):
            assert t.hidden == {}
            if t.speaker == "customer":
                assert (t.act, t.objection_type) == act_tagger.tag_full([t.text])[0]
                differs += t.act != truth[(state.merchant.id, state.product.id, "customer", i)]
            else:
                hidden = truth[(state.merchant.id, state.product.id, "agent", i)]
                assert t.intent == hidden["planned_intent"]
                planned_differs += t.intent != hidden["referee_intent"]
            checked += 1
    assert checked > 20
    assert differs >= 1  # the tagger's reading is not the simulator's label
    assert planned_differs >= 1  # the plan is not what the customer heard


def test_chat_turn_with_fake_backend(classifier, fsm, tagger):
    from salesman_utils.agent.chat import ChatSession, chat_turn, demo_merchant, format_turn

    prof = load_profile("smoke")
    product = get_product("spotlight_ads")
    merchant = demo_merchant(product, 0)
    agent = DOGAAgent(FakeBackend(["Hello there!"]), None, classifier, fsm, profile=prof)
    session = ChatSession(agent, product, merchant)
    first = chat_turn(session, None)
    second = chat_turn(session, "How much does it cost?")
    assert first.intent == "Opening" and second.intent != "Opening"
    assert [t.speaker for t in session.history] == ["agent", "customer", "agent"]
    shown = format_turn(second)
    assert f"[{second.intent}]" in shown and "outline 1." in shown


# ---------------------------------------------------------------- embedded model (slow)


@pytest.mark.slow
def test_whole_call_with_embedded_model(
    classifier, fsm, tagger, act_tagger, perception, corpus600, chat_backend
):
    from salesman_utils.arena.online import online_cases, simulate_call

    prof = load_profile("smoke")
    agent = DOGAAgent(
        chat_backend, None, classifier, fsm, profile=prof, tagger=tagger, max_new_tokens=16
    )
    (case,), (seed,) = online_cases(corpus600["test"], 1)
    call = simulate_call(
        agent,
        case[1],
        case[0],
        seed,
        prof,
        max_turns=3,
        progress=False,
        act_tagger=act_tagger,
        perception=perception,
    )
    assert call.outcome in OUTCOMES and 1 <= len(call.turns) // 2 <= 3
    assert all(t.text.strip() for t in call.turns)
    assert call.turns[0].hidden["planned_intent"] == "Opening"
    assert sum(Counter(agent.counters).values()) > 0


@pytest.mark.slow
def test_chat_cli_reads_stdin(monkeypatch, capsys):
    """The CLI's `main`, in this process (a subprocess re-imported torch and the model: 20 s; the
    `python -m` entry itself is run by test_artifact_faults.py's `--help` tests)."""
    from salesman_utils.agent.chat import main

    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hi, who is this?\n/quit\n"))
    main(["--product", "spotlight_ads", "--profile", "smoke", "--max-new-tokens", "8"])
    out = capsys.readouterr().out
    assert "AGENT [Opening]" in out and "YOU: Hi, who is this?" in out
    assert "outline 1." in out and "Call ended after 2 agent turns" in out


# ---------------------------------------------------------------- issue 13: open items


def test_classifier_scored_on_what_it_hears_online(classifier, act_tagger, corpus600, fsm):
    """The classifier is fitted on simulator act labels but hears its own act tagger online: its
    score on `agent_view` histories is computed (and differs from the labelled one)."""
    from salesman_utils.agent.intents import agent_view_histories

    test = corpus600["test"]
    labels = classifier.evaluate(test, fsm=fsm)
    heard = classifier.evaluate(test, fsm=fsm, act_tagger=act_tagger)
    assert heard["history"] == "agent_view" and labels["history"] == "simulator labels"
    assert heard["n"] == labels["n"]
    hists = agent_view_histories(test, act_tagger)
    customer = [t for h in hists for t in h if t.speaker == "customer"]
    assert customer and all(t.hidden == {} for h in hists for t in h)
    said = [t.text for t in customer[:200]]
    assert [t.act for t in customer[:200]] == act_tagger.tag(said)
    assert heard["macro_f1"] != labels["macro_f1"]
    assert heard["macro_f1"] > 0.3  # still far above chance (1/6)


def test_latent_merchant_fields_cannot_change_an_agent(classifier, fsm, tagger, merchant):
    """Poisoning: absurd latent fields leave DOGA's plan, prompt and reply unchanged, and the
    agent's merchant is the dashboard view (reading a latent field raises)."""
    import dataclasses

    product = _product_for(merchant)
    poisoned = dataclasses.replace(
        merchant,
        pain_points=["no_shows", "bad_reviews"],
        decision_style="ABSURD",
        budget_sensitivity="infinite",
        objection_repertoire=["price"] * 9,
        initial_interest=-1e9,
        patience=1e9,
    )
    prof = load_profile("smoke")
    turns = []
    for m in (merchant, poisoned):
        backend = FakeBackend(["Hi Rosa, do you have two minutes?"])
        agent = DOGAAgent(backend, None, classifier, fsm, product, m, profile=prof, tagger=tagger)
        history = [Turn("agent", "Hi Rosa, this is Alex.", intent="Opening")]
        history.append(Turn("customer", "What is this about? We are busy.", act="question"))
        turns.append(agent.respond(AgentState(history, seed=3)))
        assert agent._pm(AgentState())[1] == merchant.visible()
        with pytest.raises(AttributeError):
            _ = agent._pm(AgentState())[1].decision_style
    a, b = turns
    assert (a.intent, a.outline, a.prompt, a.reply) == (b.intent, b.outline, b.prompt, b.reply)


def test_template_agents_need_no_model(classifier, fsm, tagger, act_tagger, perception, corpus600):
    """The two model-free baselines of the online table: no backend, every reply a filled
    template (reply_kind template); the script agent's plans are `script_move` of its own view."""
    from salesman_utils.agent.parts import DogaParts, ScriptRule, make_agent
    from salesman_utils.arena.online import (
        online_cases,
        online_table,
        reply_kinds_table,
        simulate_calls,
    )

    prof = load_profile("smoke")
    parts = DogaParts(classifier, fsm, tagger, act_tagger, library=None)
    cases, seeds = online_cases(corpus600["test"], 4)
    results = {}
    for kind in ("template", "script_template"):
        agent = make_agent(kind, parts, prof, name=kind)
        assert agent.backend is None and not agent.guard
        calls = simulate_calls(
            agent, cases, seeds, prof, perception=perception, max_turns=6, progress=False
        )
        agent_turns = [t for d in calls for t in d.turns if t.speaker == "agent"]
        assert agent_turns and all(t.hidden["reply_kind"] == "template" for t in agent_turns)
        assert agent.counters["no_model"] == len(agent_turns)
        results[kind] = calls
    for d in results["script_template"]:
        own = [t.hidden["planned_intent"] for t in d.turns if t.speaker == "agent"]
        view = agent_view(d.turns, act_tagger, own)
        for i, t in enumerate(view):
            if t.speaker == "agent":
                assert t.intent == script_move(view[:i])
    assert isinstance(ScriptRule().predict_proba([[]]), np.ndarray)
    table = online_table(results)
    assert list(table["system"]) == ["template", "script_template"]
    kinds = reply_kinds_table(results)
    assert set(kinds.loc[kinds["replies"] > 0, "kind"]) == {"template"}
    assert "adapted_rate_data_moves" in kinds
    empty = kinds[kinds["replies"] == 0]  # no model-written replies: rates are unknown, not 0
    assert len(empty) == 2 and empty["expert_move_rate"].isna().all()


def test_price_talk_reads_price_and_discount_pushes_not_guarantees():
    """DOGA's own reading of the merchant's last words: a price question or discount push gets the
    price outline; an agreement or a guarantee demand that names money does not. The lines are
    written for this test (the referee's pushy-merchant set is evaluation data: no agent-side code
    or agent test reads it)."""
    from salesman_utils.agent.doga import asks_about_price

    price = [
        "So what would this set me back each month?",
        "Honestly the budget isn't there right now.",
        "Knock twenty percent off and we can talk.",
        "Is there a free trial or not?",
        "Fifteen dollars is my limit.",
        "How much is the basic plan?",
    ]
    other = [
        "Deal. What do I need to do?",
        "Monday to Thursday we're half empty.",
        "You'll refund me if nothing changes, right?",
        "I'm not paying for promises.",
        "Can you guarantee more walk-ins?",
    ]
    assert [asks_about_price(x) for x in price] == [True] * len(price)
    assert [asks_about_price(x) for x in other] == [False] * len(other)


def test_reply_tagger_probabilities_agree_with_its_tags(tagger, corpus600):
    """`TextTagger.proba` (what the guard's soft intent rule reads): rows sum to one and their
    argmax is the tagger's own tag."""
    texts = [t.text for d in corpus600["test"][:5] for t in d.turns if t.speaker == "agent"]
    classes, proba = tagger.proba(texts)
    assert proba.shape == (len(texts), len(classes)) and np.allclose(proba.sum(1), 1)
    assert [classes[i] for i in proba.argmax(1)] == tagger.tag(texts)
    assert tagger.proba([])[1].shape == (0, len(classes))


def test_planned_heard_rate_is_the_customers_hearing_not_the_agents_own_tag():
    """The online check that a kept model reply carries the planned move reads the customer's
    perception (`referee_intent`), never the guard's tagger (`agent_tag`)."""
    from types import SimpleNamespace

    from salesman_utils.arena.online import reply_kinds_table

    def turn(planned, heard, own, kind):
        hidden = {"planned_intent": planned, "referee_intent": heard, "agent_tag": own}
        return Turn("agent", "x", intent=heard, hidden={**hidden, "reply_kind": kind})

    doga = SimpleNamespace(
        turns=[
            turn("Greeting", "Greeting", "Greeting", "llm"),
            turn("Closing", "Rapport_Building", "Closing", "llm"),  # the tagger agreed, not heard
            turn("Closing", "Closing", "Greeting", "llm"),
            turn("Closing", "Closing", "Closing", "template"),
        ]
    )
    plain = SimpleNamespace(turns=[turn(None, "Greeting", "Greeting", "llm")])
    t = reply_kinds_table({"doga": [doga], "plain": [plain]}).set_index(["system", "kind"])
    assert t.loc[("doga", "llm"), "planned_n"] == 3
    assert t.loc[("doga", "llm"), "planned_heard"] == 2
    assert t.loc[("doga", "llm"), "planned_heard_rate"] == pytest.approx(2 / 3)
    assert t.loc[("doga", "template"), "planned_heard_rate"] == 1.0
    assert t.loc[("plain", "llm"), "planned_n"] == 0  # plans no move: unknown, not 0
    assert np.isnan(t.loc[("plain", "llm"), "planned_heard_rate"])
