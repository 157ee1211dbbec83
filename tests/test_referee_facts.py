"""The referee's faithfulness check (`referee.facts`), on hand-written sentences (not from the banks)."""

from __future__ import annotations

import pytest

from salesman_utils.referee.facts import KINDS, check, faithful, mentions
from salesman_utils.world.knowledge import get_product


@pytest.fixture()
def product():
    return get_product("spotlight_ads")  # Starter $39, Growth $99, Pro $199 a month; 50% off


def kinds(text, product, merchant=None):
    return [f.kind for f in check(text, product, merchant)]


@pytest.mark.parametrize(
    "text",
    [
        "The Growth plan is $99 a month and you get about 10,000 sponsored impressions.",
        "New advertisers get 50% off the first month, with a 3-month minimum term.",
        "You can cancel with 7 days notice once the three-month minimum term is over.",
        "You have 812 orders a month, nearby places have 1,100, and your rating is 4.3 stars.",
        "Your conversion is 3.1% while the stores around you convert 4.0%.",
        "Ads reach people within 5 km, and the Starter plan costs thirty-nine dollars per month.",
        "I can't guarantee more orders, but the weekly report shows every visit.",
        "Do you have two minutes? I can call back at three if that's easier.",
        "One thing I noticed: you choose the hours and days the ads run.",
        "First-time advertisers pay half price for the first month.",
    ],
)
def test_true_statements_pass(text, product, merchant):
    assert check(text, product, merchant) == [], check(text, product, merchant)


@pytest.mark.parametrize(
    "text, kind",
    [
        ("The Starter plan is only $29 a month.", "price"),
        ("Growth is 99 dollars a year.", "period"),
        ("You'd get 60% off your first month.", "percentage"),
        ("That puts you about 26% below the shops nearby.", "percentage"),  # a computed gap
        ("The minimum term is just 2 months.", "duration"),
        ("The minimum term is just two months.", "duration"),
        ("Your first order comes within a week.", "duration"),
        ("You'll get around 50,000 impressions.", "number"),
        ("You'll get around fifty thousand impressions.", "number"),
        ("Most shops add twenty-five orders in the first month.", "number"),
        ("I guarantee your orders will go up.", "claim"),
        ("If it doesn't work, you get a full refund.", "claim"),
        ("It will pay off, you have my word.", "claim"),
        ("It basically pays for itself.", "claim"),
        ("Take the Platinum plan, it has everything.", "plan"),
        ("New stores get seventy percent off.", "percentage"),
    ],
)
def test_each_invented_fact_is_caught(text, kind, product, merchant):
    found = kinds(text, product, merchant)
    assert kind in found, (text, found)
    assert set(found) <= set(KINDS)
    assert not faithful(text, product, merchant)


def test_number_words_are_read_as_numbers():
    values = {(m.kind, m.value) for m in mentions("two hundred and fifty orders, forty percent")}
    assert values == {("number", 250.0), ("percentage", 40.0)}
    assert [m.unit for m in mentions("a fourteen-day trial")] == ["day"]


def test_merchant_data_only_counts_with_the_merchant(product, merchant):
    text = "You have 812 orders a month."
    assert kinds(text, product) == ["number"]  # without the dashboard it is an invented number
    assert kinds(text, product, merchant) == []


def test_compare_on_corpus_counts_both_checkers():
    from salesman_utils.referee.facts import compare_on_corpus
    from salesman_utils.world.corpus import simulate_corpus

    res = compare_on_corpus(simulate_corpus(80, seed=1))
    assert res["turns"] > 300 and res["unfaithful"] > 0
    for side in ("referee", "guard"):
        assert 0 <= res[side]["precision"] <= 1 and 0 <= res[side]["recall"] <= 1
    # on 600 calls (seed 0) the referee's recall is 0.91 vs the guard's 0.70
    assert res["referee"]["recall"] >= res["guard"]["recall"]


def test_referee_reads_an_offer_for_another_period():
    ads, club = get_product("spotlight_ads"), get_product("member_club")
    found = check("Then buy the 50% off the second month. You get it.", ads)
    assert [f.kind for f in found] == ["offer"] and "second month" in found[0].span
    assert check("New stores get 50% off the first month.", ads) == []
    assert check("20% off the subscription for the first 3 months.", club) == []
    assert [f.kind for f in check("20% off for the first 6 months.", club)] == ["duration"]
