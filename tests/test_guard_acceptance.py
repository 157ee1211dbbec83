"""DOGA's guard lets through no nonsense and no invented offer (issue 24): acceptance (intent cut
and outline overlap), invented offers in both fact checks, the price question's plain forms."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import yaml

from salesman_utils.agent.doga import (
    AgentState,
    DOGAAgent,
    _off_intent,
    outline_overlap,
    outline_reference,
    price_line,
    price_outline,
    safe_template,
)
from salesman_utils.agent.intents import INTENTS
from salesman_utils.agent.pricing import asks_about_price, states_price
from salesman_utils.config import REPO_ROOT, load_profile
from salesman_utils.referee.facts import check as referee_check
from salesman_utils.world.factcheck import fact_check
from salesman_utils.world.knowledge import get_product
from salesman_utils.world.simulator import Turn

COUPON_REPLY = (
    'To determine the price of the coupon, you need to use the coupon code "B2B2B" and submit it '
    "to the store. The coupon is 2.2,"
)
NONSENSE = [  # the replies that the guard passed
    "Pls keep it clean, I'll have it ready. Good.",
    "Great job. Stay safe and enjoy some fun while...",
    "I'm just a little frustrated, but...",
]


class FakeBackend:
    """Answers from a list of replies in turn (cycled), counting chat calls."""

    name = "fake"

    def __init__(self, replies: list[str]):
        self.replies, self.i, self.calls = replies, 0, []

    def chat(self, batch, **kw):
        self.calls.append(len(batch))
        out = [self.replies[(self.i + k) % len(self.replies)] for k in range(len(batch))]
        self.i += len(batch)
        return out


class OneMove:
    """A classifier that always plans `intent`."""

    def __init__(self, intent: str):
        self.row = np.eye(len(INTENTS))[INTENTS.index(intent)]

    def predict_proba(self, histories):
        return np.array([self.row for _ in histories])


class SureTagger:
    """A reply tagger that reads every reply as `intent` with probability `p` (the worst case
    for the outline check: the intent check passes everything)."""

    def __init__(self, intent: str, p: float = 0.99):
        self.intent, self.p = intent, p

    def proba(self, texts):
        rest = (1 - self.p) / (len(INTENTS) - 1)
        row = [self.p if c == self.intent else rest for c in INTENTS]
        return list(INTENTS), np.array([row for _ in texts])


def _doga(product, merchant, intent, replies, p=0.99, **kw):
    prof = load_profile("smoke")
    backend = FakeBackend(replies)
    agent = DOGAAgent(
        backend,
        None,
        OneMove(intent),
        None,
        product,
        merchant,
        profile=prof,
        tagger=SureTagger(intent, p),
        use_fsm=False,
        **kw,
    )
    return agent, backend


# ---------------------------------------------------------------- acceptance


@pytest.mark.parametrize("name", ["smoke", "tutorial"])
def test_profiles_carry_the_chosen_cuts(name):
    doga = load_profile(name).doga
    assert 0 < doga.intent_min_proba < 1 and 0 < doga.outline_min_overlap < 1
    assert load_profile("smoke").doga.intent_min_proba == doga.intent_min_proba
    assert load_profile("smoke").doga.outline_min_overlap == doga.outline_min_overlap


@pytest.mark.parametrize("reply", NONSENSE)
def test_nonsense_is_off_the_outline(reply, merchant):
    """Against every move's outline (no library: the safe line), the knowledge base and the
    dashboard, the issue's replies keep less than the profile's cut of their content words."""
    cut = load_profile("tutorial").doga.outline_min_overlap
    product = get_product("coupon_booster")
    for intent in INTENTS:
        line = safe_template(intent, product, merchant)
        plan = {"intent": intent, "outline": [line], "template": line}
        assert outline_overlap(reply, outline_reference(plan, product, merchant)) < cut


def test_on_outline_replies_keep_their_content(merchant):
    cut = load_profile("tutorial").doga.outline_min_overlap
    product = get_product("coupon_booster")
    plan = {"intent": "Product_Introduction", "outline": price_outline(product)}
    plan["template"] = price_line(product)
    ref = outline_reference(plan, product, merchant)
    for reply in [
        "Coupon Booster is $19 a month, and the monthly fee is waived for your first two months.",
        "Your coupons go to nearby customers, and the platform co-funds part of each one.",
        "Rosa, your store gets 812 orders a month while similar stores nearby get 1,100.",
    ]:
        assert outline_overlap(reply, ref) >= cut, reply
    assert outline_overlap("", ref) == 0.0 and outline_overlap("Okay, sure, yes.", ref) == 0.0


@pytest.mark.parametrize("reply", NONSENSE)
def test_guard_rejects_nonsense_even_when_the_tagger_agrees(reply, merchant):
    """The issue's replies, read as the planned move with p = 0.99: the outline check still
    swaps them for the template after the retry."""
    product = get_product("coupon_booster")
    agent, backend = _doga(product, merchant, "Needs_Discovery", [reply], guard_retries=1)
    turn = agent.respond(AgentState())
    assert turn.draft == reply and turn.reply != reply
    assert turn.reply == turn.outline[-1].removeprefix("Say something like: ")
    assert turn.guard["off_intent"] == 1 and turn.guard["template"] == 1
    assert backend.calls == [1, 1]  # regenerated once before the template


def test_guard_accepts_an_on_outline_reply_of_the_planned_move(merchant):
    product = get_product("coupon_booster")
    reply = "What would you most like to improve at Rosa's Noodles, and how are orders lately?"
    agent, backend = _doga(product, merchant, "Needs_Discovery", [reply])
    turn = agent.respond(AgentState())
    assert turn.reply == reply and turn.guard == {"checked": 1}
    # the same words, read as the planned move below the cut, are rejected
    low = load_profile("smoke").doga.intent_min_proba / 2
    agent, _ = _doga(product, merchant, "Needs_Discovery", [reply], p=low, guard_retries=0)
    turn = agent.respond(AgentState())
    assert turn.guard["off_intent"] == 1 and turn.reply != reply


def test_no_top_tag_route():
    """The planned move must reach the cut: being the tagger's top tag is not enough."""
    from types import SimpleNamespace

    tagger = SureTagger("Opening", 0.4)  # top tag, p = 0.4
    agents = [SimpleNamespace(check_intent=True, tagger=tagger, intent_min_proba=0.5)] * 2
    plans = [{"intent": "Opening"}, {"intent": "Opening", "price_push": True}]
    assert _off_intent(agents, plans, ["a", "b"], [0, 1]) == {0}
    agents = [SimpleNamespace(check_intent=True, tagger=tagger, intent_min_proba=0.3)]
    assert _off_intent(agents, plans[:1], ["a"], [0]) == set()


class TemplateTagger:
    """Reads every text as `intent`: with probability `p_template` the turn's fallback template
    (`template`), with `p_reply` anything else."""

    def __init__(self, intent: str, template: str, p_reply: float, p_template: float):
        self.intent, self.template = intent, template
        self.p_reply, self.p_template = p_reply, p_template

    def proba(self, texts):
        rows = []
        for t in texts:
            p = self.p_template if t == self.template else self.p_reply
            rest = (1 - p) / (len(INTENTS) - 1)
            rows.append([p if c == self.intent else rest for c in INTENTS])
        return list(INTENTS), np.array(rows)


ON_OUTLINE = "What would you most like to improve at Rosa's Noodles, and how are orders lately?"


def _vs_fallback(merchant, p_reply, p_template, **kw):
    """A Needs_Discovery turn whose on-outline reply and template the tagger reads as planned."""
    product = get_product("coupon_booster")
    line = safe_template("Needs_Discovery", product, merchant)  # no library: the template
    tagger = TemplateTagger("Needs_Discovery", line, p_reply, p_template)
    agent, backend = _doga(product, merchant, "Needs_Discovery", [ON_OUTLINE], **kw)
    agent.tagger = tagger
    return agent, backend, line


def test_a_reply_read_weaker_than_its_template_is_rejected(merchant):
    """Acceptance no worse than the fallback: p above the cut but below the template's p."""
    cut = load_profile("smoke").doga.intent_min_proba
    agent, backend, line = _vs_fallback(merchant, cut + 0.1, cut + 0.3, guard_retries=0)
    assert agent.accept_vs_fallback  # the profile's default
    turn = agent.respond(AgentState())
    assert turn.draft == ON_OUTLINE and turn.reply == line and turn.fallback == line
    assert turn.guard["off_intent"] == 1 and turn.guard["template"] == 1
    assert backend.calls == [1]


@pytest.mark.parametrize("gap", [0.0, 0.2])
def test_a_reply_read_at_least_as_its_template_is_accepted(gap, merchant):
    cut = load_profile("smoke").doga.intent_min_proba
    agent, _, line = _vs_fallback(merchant, cut + 0.1 + gap, cut + 0.1, guard_retries=0)
    turn = agent.respond(AgentState())
    assert turn.reply == ON_OUTLINE and turn.guard == {"checked": 1} and turn.fallback == line


def test_accept_vs_fallback_off_keeps_the_cut_only(merchant):
    cut = load_profile("smoke").doga.intent_min_proba
    kw = {"guard_retries": 0, "accept_vs_fallback": False}
    agent, _, _ = _vs_fallback(merchant, cut + 0.1, cut + 0.3, **kw)
    assert not agent.accept_vs_fallback
    turn = agent.respond(AgentState())
    assert turn.reply == ON_OUTLINE and turn.guard == {"checked": 1}
    agent, _, line = _vs_fallback(merchant, cut / 2, cut / 4, **kw)  # below the cut: still out
    turn = agent.respond(AgentState())
    assert turn.reply == line and turn.guard["off_intent"] == 1


def test_vs_fallback_reads_replies_and_templates_in_one_batch():
    """One tagger call; no template (or the generic empty fallback) = no comparison."""
    from types import SimpleNamespace

    from salesman_utils.agent.doga import EMPTY_FALLBACK

    calls = []

    class Counting(TemplateTagger):
        def proba(self, texts):
            calls.append(len(texts))
            return super().proba(texts)

    tagger = Counting("Opening", "T", 0.6, 0.8)

    def agent(template: str):
        return SimpleNamespace(
            check_intent=True,
            tagger=tagger,
            intent_min_proba=0.5,
            accept_vs_fallback=True,
            guard=True,
            fallback=lambda plan: template or EMPTY_FALLBACK,
        )

    agents = [agent("T"), agent(""), agent("T")]
    plans = [{"intent": "Opening", "template": "T"}, {"intent": "Opening"}]
    plans.append({"intent": "Opening", "template": "T"})
    assert _off_intent(agents, plans, ["a", "b", "T"], [0, 1, 2]) == {0}
    assert calls == [5]  # three replies and two templates


def test_demo_price_question_gets_the_kb_price(merchant):
    """Notebook 04's demo: "How much does it cost?" answered with an invented code and number is
    flagged, retried, then replaced by the knowledge base's price line."""
    product = get_product("coupon_booster")
    agent, backend = _doga(product, merchant, "Product_Introduction", [COUPON_REPLY])
    hist = [
        Turn("agent", "Hi Rosa, this is Alex from Neighborly.", None),
        Turn("customer", "How much does it cost?", None),
    ]
    turn = agent.respond(AgentState(hist))
    assert turn.draft == COUPON_REPLY and turn.guard["flagged"] >= 1
    assert turn.reply == price_line(product) and "$19" in turn.reply
    assert states_price(turn.reply, product) and not fact_check(turn.reply, product, merchant)


# ---------------------------------------------------------------- invented offers

INVENTED = [  # (product, text, the agent's kind)
    ("coupon_booster", COUPON_REPLY, "invented_code"),
    ("coupon_booster", COUPON_REPLY, "wrong_number"),
    ("spotlight_ads", "Use code SAVE20 at checkout and it's yours.", "invented_code"),
    ("spotlight_ads", "Sign up today for our Summer Saver promotion.", "invented_offer"),
    ("spotlight_ads", 'Ask for the "Grow Fast" package when you join.', "invented_offer"),
    ("spotlight_ads", "Take the Platinum plan, it has everything.", "invented_offer"),
    ("spotlight_ads", "You also get cashback on every ad you run.", "invented_offer"),
    ("spotlight_ads", "And there's a free trial so you can test it.", "invented_offer"),
    ("member_club", "We'll throw in a voucher for your first customers.", "invented_offer"),
    ("spotlight_ads", "So 3 x 39 is what you'd pay for the first quarter.", "invented_arithmetic"),
    ("spotlight_ads", "That's 2 times $99, about what you spend on flyers.", "invented_arithmetic"),
    ("spotlight_ads", "Your page would convert 1.7 times better.", "wrong_number"),
    # a count of offer items the knowledge base does not give (seen online: a 14-DAY trial)
    ("store_page_pro", "It's $29, and you will also receive 14 free trials.", "invented_offer"),
    ("member_club", "We add 3 extra vouchers for your first customers.", "invented_offer"),
]
TRUE = [  # (product, text): knowledge base and dashboard only
    ("spotlight_ads", "The Growth plan is $99 a month, with a 3-month minimum term."),
    ("spotlight_ads", "New advertisers get 50% off the first month, within 5 km of the store."),
    ("spotlight_ads", "Your rating is 4.3 stars, and similar stores nearby have 4.5."),
    ("spotlight_ads", "Your conversion is 3.1% against 4.0% nearby; the rating bar is 3.5 stars."),
    ("store_page_pro", "Store Page Pro has a 14-day free trial, no card needed."),
    ("store_page_pro", "On the Annual plan you get two months free compared with monthly."),
    ("coupon_booster", "That's 2 free months of the monthly fee, if you run a coupon each month."),
    ("store_page_pro", "You get one free trial of 14 days, no card needed."),
    ("store_page_pro", "That's 14 free trial days before the plan starts."),
    (
        "coupon_booster",
        "The Booster plan is $19 a month, with the monthly fee waived for 2 months.",
    ),
    ("spotlight_ads", "Spotlight Ads puts Rosa's Noodles at the top of the home feed."),
    ("spotlight_ads", "I can call you back at 3pm, if that's easier, about the 3-month term."),
]


@pytest.mark.parametrize("pid, text, kind", INVENTED)
def test_agent_fact_check_flags_invented_offers(pid, text, kind, merchant):
    kinds = [v.kind for v in fact_check(text, get_product(pid), merchant)]
    assert kind in kinds, (text, kinds)


@pytest.mark.parametrize("pid, text", TRUE)
def test_agent_fact_check_passes_kb_offers(pid, text, merchant):
    assert fact_check(text, get_product(pid), merchant) == []


@pytest.mark.parametrize("pid, text", sorted({(p, t) for p, t, _ in INVENTED}))
def test_referee_catches_the_same_invented_offers(pid, text, merchant):
    """The referee's own check (separate code) finds every invented offer the agent's check finds."""
    found = referee_check(text, get_product(pid), merchant)
    assert found, text
    assert {f.kind for f in found} & {"code", "offer", "arithmetic", "number", "plan"}


@pytest.mark.parametrize(
    "text, kind",
    [
        (COUPON_REPLY, "code"),
        (COUPON_REPLY, "number"),
        ("Sign up today for our Summer Saver promotion.", "offer"),
        ("You also get cashback on every ad you run.", "offer"),
        ("So 3 x 39 is what you'd pay for the first quarter.", "arithmetic"),
    ],
)
def test_referee_kinds_of_invented_offers(text, kind, merchant):
    product = get_product("coupon_booster" if "coupon" in text else "spotlight_ads")
    assert kind in [f.kind for f in referee_check(text, product, merchant)]


@pytest.mark.parametrize("pid, text", TRUE)
def test_referee_passes_kb_offers(pid, text, merchant):
    assert referee_check(text, get_product(pid), merchant) == []


def test_invented_numbers_do_not_state_the_price():
    """Digits inside a code or a decimal are not the promotion's "2 months"."""
    product = get_product("coupon_booster")
    assert not states_price(COUPON_REPLY, product)
    assert states_price("The monthly fee is waived for the first two months.", product)
    assert states_price("It's 19 dollars a month.", product)


# ---------------------------------------------------------------- price questions


PLAIN = [
    "How much does it cost?",
    "what's the price",
    "how much is it a month",
    "What do you charge for that?",
    "Hmm, pricey.",
    "What do I actually get for the money?",
    "What's the monthly fee?",
    "I already pay the platform commission.",
]
NOT_PRICE = [
    "Who's in charge of the ads here?",
    "My husband handles the money, I can't decide alone.",
    "We're doing fine as we are, to be honest.",
    "Deal. What do I need to do?",
    "Is there a contract, or can I stop when I want?",
    "I'd have to talk to my partner first.",
]


def test_plain_price_questions_are_recognised():
    assert [asks_about_price(x) for x in PLAIN] == [True] * len(PLAIN)
    assert [asks_about_price(x) for x in NOT_PRICE] == [False] * len(NOT_PRICE)


def test_every_price_line_of_the_customer_bank_is_price_talk():
    """The rule's source: the bank the corpus's customer lines come from. Every price objection
    (firm or soft) and every cost question is read as price talk; of its other lines, only those
    that name a price word themselves ("offered me something similar, cheaper") are."""
    bank = yaml.safe_load((REPO_ROOT / "data" / "customer_templates.yaml").read_text())
    price = bank["objection"]["price"] + bank["objection_soft"]["price"]
    price += [q for q in bank["question"]["product"] if "cost" in q or "money" in q]
    price = [x.replace("{price}", "$39") for x in price]
    missed = [x for x in price if not asks_about_price(x)]
    assert not missed, missed
    other = [line for key, lines in bank["objection"].items() if key != "price" for line in lines]
    other += bank["neutral"] + bank["positive"] + bank["refusal"] + bank["question"]["process"]
    read = [x for x in other if asks_about_price(x)]
    assert read == ["Another app offered me something similar, cheaper."], read


# ---------------------------------------------------------------- the referee's online findings

# DOGA's model-written replies that the referee flagged in notebook 04's online calls (tutorial
# run, base_doga and best_grpo_doga) and the guard's check passed; (product, reply, the span both
# checkers must flag)
ONLINE = [
    (
        "spotlight_ads",
        "No, there is no discount for new shops. You can only get the 50% off the first month and "
        "then buy the 50% off the second month. You get 1",
        "1",
    ),
    (
        "member_club",
        "This is a feature of the platform that can be customized: a membership for 4th of July. "
        "That's a great opportunity for you to create a new business. I'll talk to you later",
        "4",
    ),
    (
        "coupon_booster",
        "You're doing 1587 orders a month, and you're already on your way to a new appointment. "
        "You've just set up a new appointment with a different doctor.",
        "1587",
    ),
    (
        "booking_suite",
        "So here's how we go: I'll start with the sales, and you'll get a complimentary upgrade to "
        "the Crystal Brow Bar for 2 nights. I'll just have to add one of my",
        "2",
    ),
    # drafts the guard rejected for other reasons, which its fact check alone let through
    ("store_page_pro", 'Find someone who will sell this plan, call them "Local 50s".', "50"),
    ("store_page_pro", "I give you a month free for the 3 months after that", "3 months"),
    ("store_page_pro", "Our business is a 3D fashion brand in our city.", "3D"),
    ("member_club", "You'll get a 20% deposit bonus for each visit.", "bonus"),
    # variants
    ("coupon_booster", "You're doing fifteen hundred orders a month.", "fifteen hundred"),
    ("spotlight_ads", "Sign up by the 15th and you're in.", "15th"),
    ("booking_suite", "It comes with a complimentary photo shoot.", "complimentary"),
    ("spotlight_ads", "The ads cost nothing for 90 days.", "90 days"),
]


@pytest.fixture
def online_merchant(merchant):
    """The shared merchant with no 4 on its dashboard (its peers' conversion is 4.0%: the 4 of
    "4th of July" would be the store's data)."""
    return replace(merchant, peer_medians={**merchant.peer_medians, "conversion": 4.2})


@pytest.mark.parametrize("pid, text, span", ONLINE)
def test_agent_fact_check_flags_the_online_findings(pid, text, span, online_merchant):
    found = fact_check(text, get_product(pid), online_merchant)
    assert any(span in v.span or v.span in span for v in found), (text, found)


@pytest.mark.parametrize("pid, text, span", ONLINE)
def test_referee_flags_the_online_findings(pid, text, span, online_merchant):
    """The referee's own check (separate code) finds what the agent's extended check finds."""
    found = referee_check(text, get_product(pid), online_merchant)
    assert found, text


@pytest.mark.parametrize(
    "text",
    [
        "Do you have two minutes to talk about Rosa's Noodles?",
        "I can call you back at three, or at 4 pm.",
        "You have 812 orders a month; similar stores nearby get 1,100.",
        "Your page views are 3,120 against 4,100 nearby.",
        "One thing: the Growth plan is $99 a month, about 10,000 impressions.",
        "Targeting covers customers within 5 km, with 7 days notice to cancel.",
        "Sure, it's a team decision. When could the three of us have a quick call together?",
    ],
)
def test_dashboard_and_kb_numbers_pass(text, merchant):
    assert fact_check(text, get_product("spotlight_ads"), merchant) == []
    assert referee_check(text, get_product("spotlight_ads"), merchant) == []


def test_numbers_are_checked_only_with_the_merchant():
    """Without the dashboard the guard cannot tell the store's numbers (like decimals)."""
    assert fact_check("You're doing 1587 orders a month.", get_product("coupon_booster")) == []


def test_the_product_name_before_plan_is_no_invented_plan(merchant):
    """A referee false positive seen online ("your Spotlight Ads plan" names the product)."""
    ads = get_product("spotlight_ads")
    text = "Let's start with your Spotlight Ads plan."
    assert referee_check(text, ads, merchant) == [] and fact_check(text, ads, merchant) == []
    assert [f.kind for f in referee_check("Take the Platinum plan.", ads, merchant)] == ["plan"]


# ---------------------------------------------------------------- the opening names the merchant


def test_guard_names_the_merchant_in_the_first_line(merchant):
    """A model opening greeting the rep ("Hello Alex,") gives way to the turn's filled template,
    which names the merchant (a simulated call goes through `respond_all`, not the chat demo)."""
    product = get_product("coupon_booster")
    reply = "Hello Alex, how is the coupon going for new customers?"
    agent, _ = _doga(product, merchant, "Opening", [reply], p=0.99)
    first = agent.respond(AgentState())
    assert first.draft == reply and first.reply != reply
    assert first.reply == safe_template("Opening", product, merchant)  # no library: the safe line
    assert "Rosa" in first.reply and first.guard["unnamed_opening"] == 1
    assert agent.counters["unnamed_opening"] == 1 and first.violations == []
    # a later turn is left alone, even when it names nobody
    later = agent.respond(AgentState([Turn("agent", first.reply), Turn("customer", "Yes?")]))
    assert "unnamed_opening" not in later.guard and agent.counters["unnamed_opening"] == 1


def test_guard_prefers_the_filled_template_when_it_names_the_merchant(merchant):
    product = get_product("coupon_booster")
    agent, _ = _doga(product, merchant, "Opening", ["Hello Alex,"])
    line = "Hi Rosa, Alex from Neighborly here about Rosa's Noodles. Got two minutes?"
    agent._outline = lambda *a, **k: ("e1", ["greet the owner"], line)
    first = agent.respond(AgentState())
    assert first.reply == line and first.guard["unnamed_opening"] == 1


def test_guard_keeps_an_opening_that_names_the_merchant(merchant):
    product = get_product("coupon_booster")
    for said in ("Good morning Rosa, this is Alex from Neighborly.", "Is this Rosa's Noodles?"):
        agent, _ = _doga(product, merchant, "Opening", [said], p=0.99, outline_min_overlap=0.0)
        first = agent.respond(AgentState())
        assert first.reply == said and "unnamed_opening" not in first.guard


def test_addresses_merchant_reads_whole_names(merchant):
    from salesman_utils.agent.doga import addresses_merchant
    from salesman_utils.world.simulator import visible_merchant

    ito = replace(merchant, owner="Ms. Ito", name="Maple BBQ")
    assert addresses_merchant("Good morning, Ms. Ito!", ito)
    assert addresses_merchant("Hi ito, how are things?", ito)
    assert addresses_merchant("Is this maple bbq?", visible_merchant(ito))
    assert not addresses_merchant("We monitor your orders.", ito)  # no name inside a word
    assert not addresses_merchant("Hello Alex,", ito) and not addresses_merchant("", ito)
