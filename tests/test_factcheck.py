"""fact_check against the hand-written knowledge base: good and bad sentences, paraphrased numbers."""

import pytest

from salesman_utils.world.corpus import (
    extract_facts,
    fact_check,
    get_product,
    load_products,
    product_facts_text,
    simulate_corpus,
)


@pytest.fixture(scope="module")
def ads():
    return get_product("spotlight_ads")


def test_knowledge_base_shape():
    products = load_products()
    assert len(products) >= 6
    cats = {c for p in products.values() for c in p.merchant_categories}
    assert {"restaurant", "beauty_salon", "retail"} <= cats
    for p in products.values():
        assert p.plans and p.forbidden_claims and p.promotion["headline"] and p.faqs
    text = product_facts_text(products["spotlight_ads"])
    assert "$39/month" in text and "50% off the first month" in text
    assert "guaranteed order growth" in text


@pytest.mark.parametrize(
    "text",
    [
        "The Starter plan is $39 per month.",
        "It's thirty-nine dollars a month.",
        "Just 39/month on Starter.",
        "Growth is ninety-nine dollars a month, Pro is one hundred and ninety-nine dollars.",
        "New advertisers get 50% off the first month.",
        "You get fifty percent off your first month.",
        "That's half price for the first month.",
        "There's a 3-month minimum term, then 7 days notice to cancel.",
        "It's about 3,000 impressions a month for $39.",
        "I'll keep it short, I promise.",
        "Your conversion is 6.1% while the median nearby is 9.0%.",
    ],
)
def test_faithful_sentences_pass(ads, text):
    assert fact_check(text, ads) == []


@pytest.mark.parametrize(
    "text, kind",
    [
        ("Starter is $45 a month.", "wrong_price"),
        ("It's forty-five dollars a month.", "wrong_price"),
        ("Only 49/month.", "wrong_price"),
        ("Starter costs $39 a year.", "wrong_period"),
        ("You get 60% off the first month.", "wrong_discount"),
        ("We give you sixty percent off.", "wrong_discount"),
        ("There's a six-month minimum term.", "wrong_duration"),
        ("You can cancel with two weeks notice.", "wrong_duration"),
        ("This comes with guaranteed order growth.", "forbidden_promise"),
        ("Honestly, it will double your orders.", "forbidden_promise"),
        ("It's completely risk-free.", "forbidden_promise"),
        ("And you get a refund if your orders do not increase.", "forbidden_promise"),
    ],
)
def test_unfaithful_sentences_flagged(ads, text, kind):
    found = fact_check(text, ads)
    assert kind in [v.kind for v in found], found
    assert all(v.span and v.span in text for v in found)


def test_other_products_terms():
    club = get_product("member_club")
    assert fact_check("20% off the subscription for the first 3 months.", club) == []
    assert [v.kind for v in fact_check("20% off for the first 6 months.", club)] == [
        "wrong_duration"
    ]
    coupons = get_product("coupon_booster")
    assert (
        fact_check("The platform co-funds 30% of each coupon, up to $150 a month.", coupons) == []
    )
    kinds = [v.kind for v in fact_check("The platform pays the full coupon.", coupons)]
    assert kinds == ["forbidden_promise"]
    assert (
        fact_check("A platform photographer is $60 per visit.", get_product("store_page_pro")) == []
    )


def test_merchant_percent_checked_only_with_merchant(ads):
    sims = simulate_corpus(3, seed=0)
    m = sims[0].merchant
    mine = f"Your conversion is {m.metrics['conversion']:.1f}%."
    assert fact_check(mine, ads, m) == []
    assert [v.kind for v in fact_check("Your conversion is 77.7%.", ads, m)] == ["wrong_number"]
    assert fact_check("Your conversion is 77.7%.", ads) == []


def test_extract_facts_reads_number_words():
    _, facts = extract_facts("thirty-nine dollars a month, two weeks, fifty percent")
    got = {(f.kind, f.value, f.period) for f in facts}
    assert got == {("money", 39.0, "month"), ("duration", 14.0, None), ("percent", 50.0, None)}


def test_an_offer_for_another_period_is_an_invented_offer():
    """The online reply "50% off the second month" (the KB: the first month): the discount is
    right, the period is invented; a wrong count stays the duration rule's finding alone."""
    ads, club = get_product("spotlight_ads"), get_product("member_club")
    found = fact_check("Then buy the 50% off the second month. You get it.", ads)
    assert [v.kind for v in found] == ["invented_offer"] and "second month" in found[0].span
    assert [v.kind for v in fact_check("It's free for the next month.", ads)] == ["invented_offer"]
    assert fact_check("New stores get 50% off the first month.", ads) == []
    assert fact_check("20% off the subscription for the first 3 months.", club) == []
    assert [v.kind for v in fact_check("20% off for the first 6 months.", club)] == [
        "wrong_duration"
    ]
