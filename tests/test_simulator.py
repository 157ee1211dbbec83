"""The simulator's hidden truth: the expert move depends on latent merchant state that shows only
in the merchant's words; the expert reference comes from the held-out bank."""

from __future__ import annotations

import dataclasses

import pytest

from salesman_utils.world.corpus import get_product, simulate_corpus
from salesman_utils.world.simulator import (
    OPENING_REGISTER,
    STAGE_PLANS,
    CustomerSimulator,
    Realizer,
    load_banks,
)


@pytest.fixture(scope="module")
def calls():
    return simulate_corpus(300, seed=11, disfluency=0.0)  # exact wording, for string checks


def _sim(calls, style: str, seed: int = 0, **latent) -> CustomerSimulator:
    d = calls[0]
    merchant = dataclasses.replace(d.merchant, decision_style=style, **latent)
    return CustomerSimulator(merchant, get_product(d.product_id), seed=seed)


def test_the_same_visible_moment_has_different_expert_moves(calls):
    """Right after the opening (same visible history) the expert move follows the latent style."""
    after_opening = {}
    for style in STAGE_PLANS:
        sim = _sim(calls, style)
        sim.n_agent_turns, sim.last_act = 1, "neutral"
        sim.stages["Opening"] = 1
        after_opening[style] = sim.expert_intent()
    assert after_opening == {
        "analytical": "Needs_Discovery",
        "skeptical": "Business_Analysis",
        "impulsive": "Needs_Discovery",
        "busy": "Product_Introduction",
        "relational": "Needs_Discovery",
    }
    # and the by-the-book script ignores the style
    sim = _sim(calls, "busy")
    sim.n_agent_turns, sim.last_act = 1, "neutral"
    assert sim.script_intent() == "Needs_Discovery" != sim.expert_intent()


@pytest.mark.parametrize(
    ("soft", "introduced", "expected"),
    [
        (False, False, "Objection_Handling"),
        (True, False, "Product_Introduction"),
        (True, True, "Operational_Guidance"),
    ],
)
def test_soft_objections_are_moved_past_firm_ones_answered(calls, soft, introduced, expected):
    sim = _sim(calls, "analytical")
    sim.n_agent_turns, sim.last_act = 3, "objection"
    sim.pending, sim.pending_soft = "trust", soft
    if introduced:
        sim.stages["Product_Introduction"] = 1
    assert sim.expert_intent() == expected
    assert sim.script_intent() == "Objection_Handling"


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("product", "Product_Introduction"),
        ("process", "Operational_Guidance"),
        ("proof", "Business_Analysis"),
    ],
)
def test_a_question_is_answered_by_its_topic(calls, topic, expected):
    sim = _sim(calls, "impulsive")
    sim.n_agent_turns, sim.last_act, sim.topic = 2, "question", topic
    assert sim.expert_intent() == expected


def test_latent_state_shows_in_words_only(calls):
    """Soft and firm objections of one type, and question topics, are worded from different
    banks; style cues come from the merchant's style; none of it is a visible label."""
    bank = load_banks()["customer_templates"]
    soft_lines = {t for v in bank["objection_soft"].values() for t in v}
    cue_lines = {s: set(v) for s, v in bank["style_cues"].items()}
    n_soft = n_cue = 0
    for d in calls:
        for t in d.turns:
            if t.speaker != "customer":
                continue
            assert set(vars(t)) == {"speaker", "text", "intent", "act", "hidden", "objection_type"}
            if t.act == "objection" and t.hidden["soft"]:
                n_soft += 1
                assert any(line in t.text for line in soft_lines), t.text
            style = d.merchant.decision_style
            others = set().union(*(v for s, v in cue_lines.items() if s != style))
            assert not any(c.lower().rstrip(".?!") in t.text.lower() for c in others), t.text
            n_cue += any(c.lower().rstrip(".?!") in t.text.lower() for c in cue_lines[style])
    assert n_soft > 20 and n_cue > 100


def test_expert_reference_comes_from_the_heldout_bank(calls):
    visible = {t.text.lower().rstrip(".") for d in calls for t in d.turns if t.speaker == "agent"}
    refs = [t.hidden["expert_text"] for d in calls for t in d.turns if t.speaker == "agent"]
    assert len(refs) > 1000
    assert not [r for r in refs if r.lower().rstrip(".") in visible]


def test_opening_register_is_latent(calls):
    """An Opening is good only in the register that fits the merchant's style."""
    openings = 0
    for d in calls:
        first = d.turns[0]
        if first.intent != "Opening" or not first.hidden["faithful"]:
            continue
        base = Realizer(d.merchant, get_product(d.product_id), agent_name=d.agent.name).base
        right = load_banks()["agent_templates"]["Opening"][
            OPENING_REGISTER[d.merchant.decision_style]
        ]
        fits = any(first.text.startswith(line.format_map(base)) for line in right)
        assert fits == bool(first.hidden["quality"]), first.text
        openings += 1
    assert openings > 150


def test_structure_does_not_determine_quality(calls):
    """Many visible (intent, previous act, previous intent) cells hold both good and bad turns
    that were both the expert's and the script's move: the label needs latent state."""
    mixed = 0
    cells: dict[tuple, set] = {}
    for d in calls:
        prev_act, prev_intent = "start", None
        for t in d.turns:
            if t.speaker == "agent":
                cells.setdefault((t.intent, prev_act, prev_intent), set()).add(
                    t.intent == t.hidden["expert_intent"]
                )
                prev_intent = t.intent
            else:
                prev_act = t.act
    mixed = sum(len(v) == 2 for v in cells.values())
    assert mixed >= 0.4 * len(cells)


def test_visible_merchant_mirrors_the_profile_without_its_latent_fields():
    """`VisibleMerchant` and `MerchantProfile` share the dashboard fields (`_Dashboard`); the view is
    a read-only sibling, never a parent of the full profile."""
    import dataclasses

    from salesman_utils.world.simulator import (
        LATENT_MERCHANT_FIELDS,
        MerchantProfile,
        VisibleMerchant,
    )

    profile = [f.name for f in dataclasses.fields(MerchantProfile)]
    view = [f.name for f in dataclasses.fields(VisibleMerchant)]
    assert view == [n for n in profile if n not in LATENT_MERCHANT_FIELDS]
    assert set(LATENT_MERCHANT_FIELDS) <= set(profile)
    m = MerchantProfile("m1", "Shop", "Ann", "cafe", "Town", {"rating": 4.1}, {"rating": 4.5})
    v = m.visible()
    assert not isinstance(m, VisibleMerchant) and v.metrics == m.metrics and v.visible() is v
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.name = "other"
    with pytest.raises(AttributeError):
        _ = v.pain_points
