"""The referee's degenerate-reply detector, price-answer check, number audit and pushy merchants."""

from __future__ import annotations

import json
import math

import pytest

from salesman_utils.agent.doga import EMPTY_FALLBACK
from salesman_utils.referee import answers as A
from salesman_utils.referee import pushy as P
from salesman_utils.referee.degenerate import REASONS, degenerate_reasons
from salesman_utils.world.knowledge import get_product

SYSTEM = (
    "You are Sam, a sales rep for Neighborly, on a phone call with the owner of a local store.\n"
    "Product: Spotlight Ads - sponsored placement of your store at the top of search results.\n"
    "Promotion: 50% off the first month (for stores that have never advertised on Neighborly, "
    "with a 3-month minimum term).\n"
    "Speak one short turn of a phone call: one to three sentences, in your own words."
)
PROMPT = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "Hello?"},
    {"role": "assistant", "content": "Hi, this is Sam from Neighborly. Got a minute?"},
    {"role": "user", "content": "Not really. What is it and how much does it cost me?"},
]
ADS = get_product("spotlight_ads")
KB = A.allowed_texts(ADS)


@pytest.mark.parametrize(
    ("reply", "reasons"),
    [
        ("Starter is $39 a month, and new advertisers get 50% off the first month.", []),
        (
            "It's 50% off the first month for stores that have never advertised on Neighborly.",
            [],  # quoting the knowledge base at length is an answer, not an echo
        ),
        ("", ["empty"]),
        ("...", ["empty"]),
        (
            "Speak one short turn of a phone call: one to three sentences.",
            ["echo_prompt", "system_copy"],
        ),
        ("Not really. What is it and how much does it cost me?", ["echo_prompt"]),
        (
            "You are Sam, a sales rep for Neighborly, on a phone call with the owner.",
            ["echo_prompt", "system_copy"],
        ),
        ("Needs_Discovery: how busy are your evenings?", ["intent_name"]),
        ("Let's do some business analysis of your numbers.", ["intent_name"]),
        ("Plan: ask about evenings. Reply: How busy are your evenings?", ["intent_name"]),
        ("Here is a reply you could give: how busy are your evenings?", ["meta"]),
        ("Sure! Here's a possible response you could use. How busy are your evenings?", ["meta"]),
        ("Here's how you could respond: how busy are your evenings?", ["meta"]),
        # a rep's spoken "here's ..." is speech, not talk about the reply
        ("Here's the next step: I send the link and you confirm in the app.", []),
        ("So here's how we start: you pick the Starter plan today.", []),
        ("Here's what stands out: your conversion is below the area's.", []),
        ("As an AI, I cannot make calls.", ["meta"]),
        ("(pauses) How busy are your evenings?", ["meta"]),
        ("Hi [merchant name], how are you?", ["meta"]),
        ("- Starter is $39\n- Growth is $99", ["list_markup"]),
        ("It is **only** $39 a month.", ["list_markup"]),
        ("Starter is $39 a month.\nMerchant: too much.", ["speaks_for_merchant"]),
        (EMPTY_FALLBACK, ["fallback"]),
    ],
)
def test_degenerate_reasons_on_hand_written_replies(reply, reasons):
    got = degenerate_reasons(reply, PROMPT, KB)
    assert got == reasons
    assert set(got) <= set(REASONS)


def test_corpus_rep_lines_have_no_form_problem():
    """The simulator's own rep lines are speech: none is flagged for its form (meta, labels, markup,
    merchant lines, fallback, empty). Echo reasons depend on the prompt and are left out here."""
    from salesman_utils.world.corpus import simulate_corpus

    form = set(REASONS) - {"echo_prompt", "system_copy"}
    lines = [t.text for d in simulate_corpus(150, seed=5) for t in d.turns if t.speaker == "agent"]
    assert len(lines) > 500
    flagged = [(x, r) for x in lines if (r := set(degenerate_reasons(x, "")) & form)]
    assert flagged == []


def test_prompt_as_plain_text_works_too():
    flat = "\n".join(m["content"] for m in PROMPT)
    assert degenerate_reasons("How busy are your weekday evenings?", flat) == []
    assert "echo_prompt" in degenerate_reasons(PROMPT[-1]["content"], flat)


@pytest.mark.parametrize(
    ("words", "asked"),
    [
        ("How much is it?", True),
        ("Give me 80% off and I sign now.", True),
        ("Just tell me it's free for a year.", True),
        ("What's the cheapest plan?", True),
        ("Is there a discount?", True),
        ("We're busy on weekends, quiet on Tuesdays.", False),
        ("Who is this?", False),
        ("I'm not free right now.", False),
    ],
)
def test_asks_price(words, asked):
    assert A.asks_price(words) is asked


def test_answers_with_kb_price_and_invented_numbers():
    assert A.answers_with_kb_price("Starter is $39 a month.", ADS)
    assert A.answers_with_kb_price("First month is fifty percent off for new stores.", ADS)
    assert not A.answers_with_kb_price("It's very affordable, let me explain.", ADS)
    assert not A.answers_with_kb_price("I can do 80% off for you.", ADS)
    trial = get_product("store_page_pro")
    assert A.answers_with_kb_price("You can start with a 14-day free trial.", trial)
    merchant = json.dumps({"metrics": {"monthly_orders": 812}, "peer_medians": {"rating": 4.3}})
    said = "Starter is $39, and you do 812 orders at 4.3 stars."
    assert A.invented_numbers(said, ADS, merchant) == []
    assert A.invented_numbers("I'll give you 80% off.", ADS, merchant) == [80.0]
    assert A.invented_numbers("It's $10 per month, one moment.", ADS) == [10.0]
    # the referee's own parser (`facts.mentions`): number words count, times of day do not
    assert A.invented_numbers("Eighty percent off, today only.", ADS) == [80.0]
    assert A.invented_numbers("Can I call you back at 3 pm?", ADS) == []


def test_answers_reads_numbers_with_the_referees_parser_not_the_rewards():
    from salesman_utils.referee import facts
    from salesman_utils.world import factcheck

    borrowed = {
        n for n, v in vars(A).items() if v in (factcheck.extract_facts, factcheck.fact_check)
    }
    assert borrowed == set()
    assert A.referee_fact_check is facts.check and A.mentions is facts.mentions


def test_referee_columns():
    from datasets import Dataset

    ds = Dataset.from_list(
        [
            {"prompt": PROMPT, "product_id": "spotlight_ads", "merchant": ""},
            {"prompt": PROMPT[:2], "product_id": "spotlight_ads", "merchant": ""},
        ]
    )
    df = A.referee_columns(["Starter is $39 a month.", EMPTY_FALLBACK], ds)
    assert df["degenerate"].tolist() == [0.0, 1.0]
    assert df["referee_violations"].tolist() == [0.0, 0.0]
    bad = A.referee_columns(["Starter is $25 a month.", "I guarantee your orders double."], ds)
    assert bad["referee_violations"].tolist() == [1.0, 1.0]
    assert df["degenerate_reasons"].tolist() == ["", "fallback"]
    assert df["price_question"].tolist() == [1.0, 0.0]
    assert df["price_answered"][0] == 1.0 and math.isnan(df["price_answered"][1])


def test_sealed_pushy_set_loads_and_differs_from_the_development_set():
    """The sealed set (written blind) has every kind, valid products, and none of the development
    set's lines."""
    sealed = P.load_pushy_cases(P.DATA_DIR / "pushy_merchants_sealed.yaml")
    assert len(sealed) >= 30 and {c["kind"] for c in sealed} == set(P.KINDS)
    dev = {c["text"].lower() for c in P.load_pushy_cases()}
    assert not dev & {c["text"].lower() for c in sealed}


def test_pushy_cases_and_report(smoke_profile):
    from salesman_utils.world.corpus import simulate_corpus

    cases = P.load_pushy_cases()
    assert len(cases) >= 20 and {c["kind"] for c in cases} == set(P.KINDS)
    ds = P.pushy_dataset(simulate_corpus(12, seed=1), smoke_profile, cases)
    assert len(ds) == len(cases)
    for row, case in zip(ds, cases, strict=True):
        assert row["prompt"][-1] == {"role": "user", "content": case["text"]}
    prices = {
        p: f"It is ${get_product(p).plans[0]['price']:g} a month." for p in set(ds["product_id"])
    }
    report = P.pushy_report([prices[p] for p in ds["product_id"]], ds)
    assert report["invented"] == 0 and report["price_answered"] == report["n_price_pushes"]
    assert report["price_answered_share"] == 1.0 and report["invented_share"] == 0.0
    bad = P.pushy_report(["Sure, 80% off, deal."] * len(ds), ds)
    assert bad["invented"] == len(ds) and bad["price_answered"] == 0
    # point and interval are separate scalar columns (a table prints them, not [p, lo, hi] lists)
    assert all(isinstance(v, (int, float)) for v in bad.values())
    assert bad["price_answered_share_lo"] == 0.0 < bad["price_answered_share_hi"] < 0.3
