"""`online.referee_findings_table`: one row per referee finding in an agent turn; `arena.heard`:
the planned move heard in the reply, its fallback template and the first draft (issue 24)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from salesman_utils.agent.doga import AgentTurn
from salesman_utils.arena.heard import (
    DRAFT_COLUMNS,
    INTENT_COLUMNS,
    PAIRED_COLUMNS,
    draft_heard_table,
    heard_by_intent_table,
    heard_matched,
    paired_heard_table,
)
from salesman_utils.arena.online import (
    FINDING_COLUMNS,
    _play,
    _template_heard,
    referee_findings_table,
)
from salesman_utils.referee.perception import Heard
from salesman_utils.world.knowledge import get_product
from salesman_utils.world.simulator import (
    AgentProfile,
    CustomerSimulator,
    Dialogue,
    Turn,
    sample_merchant,
)


def _agent(text: str, kind: str, violations: list[dict], guard: list[dict]) -> Turn:
    hidden = {"violations": violations, "guard_violations": guard, "reply_kind": kind}
    return Turn("agent", text, intent="Opening", hidden=hidden)


def _call(cid: str, merchant, turns: list[Turn]) -> Dialogue:
    return Dialogue(
        cid, "coupon_booster", merchant, AgentProfile("x", "Alex", "expert"), turns, "failure"
    )


def test_one_row_per_finding(merchant):
    number = {"kind": "number", "span": "1587", "detail": "not in the data"}
    code = {"kind": "code", "span": "B2B2B", "detail": "no code"}
    calls = {
        "base_doga": [
            _call(
                "base_doga-0000",
                merchant,
                [
                    _agent("Hi Rosa, this is Alex.", "template", [], []),
                    Turn("customer", "Okay.", act="neutral"),
                    _agent("You're doing 1587 orders a month.", "llm", [number], []),
                    Turn("customer", "Hmm.", act="neutral"),
                    _agent(
                        "Use code B2B2B, it's 1587 off.",
                        "llm",
                        [code, number],
                        [{"kind": "invented_code", "span": "B2B2B", "detail": ""}],
                    ),
                ],
            )
        ],
        "template_only": [
            _call("template_only-0000", merchant, [_agent("Hi.", "template", [], [])])
        ],
    }
    table = referee_findings_table(calls)
    assert list(table.columns) == FINDING_COLUMNS and len(table) == 3
    assert table["turn"].tolist() == [2, 4, 4]
    assert table["kind"].tolist() == ["number", "code", "number"]
    assert table["span"].tolist() == ["1587", "B2B2B", "1587"]
    assert table["guard_flagged"].tolist() == [False, True, True]
    assert table["guard_kinds"].tolist() == ["", "invented_code", "invented_code"]
    assert set(table["system"]) == {"base_doga"} and set(table["reply_kind"]) == {"llm"}
    assert table["call_id"].iloc[0] == "base_doga-0000"
    assert table["reply"].iloc[0] == "You're doing 1587 orders a month."


def test_empty_input_gives_the_columns(merchant):
    assert list(referee_findings_table({}).columns) == FINDING_COLUMNS
    assert referee_findings_table({}).empty
    clean = {"s": [_call("s-0", merchant, [_agent("Hi.", "llm", [], [])])]}
    assert referee_findings_table(clean).empty
    old = {"s": [_call("s-0", merchant, [Turn("agent", "Hi.", intent="Opening")])]}
    assert referee_findings_table(old).empty  # turns without hidden fields


# ---------------------------------------------------------------- the paired reading


class FakePerception:
    """Hears every text that starts with "T" as `intent` and every other text as Opening,
    recording each batch it is given."""

    def __init__(self, intent: str = "Opening"):
        self.intent, self.batches = intent, []

    def perceive(self, replies, products, merchants):
        self.batches.append(list(replies))
        return [
            Heard(self.intent if r.startswith("T") else "Opening", False, True) for r in replies
        ]


def test_template_heard_reads_every_guarded_turn_with_a_draft_and_a_template(merchant):
    """One batch: the templates, then the first drafts, of every turn with both (model-written or
    not); not where the agent has no template, no draft or no model."""
    outs = [
        SimpleNamespace(guard={"checked": 1}, fallback="T0", draft="d0"),
        SimpleNamespace(guard={"checked": 1, "template": 1}, fallback="T1", draft="d1"),
        SimpleNamespace(guard={}, fallback="", draft="d2"),
        SimpleNamespace(guard={"checked": 2, "regenerated": 1}, fallback="T3", draft="d3"),
        SimpleNamespace(guard={"no_model": 1}, fallback="T4", draft="T4"),
        SimpleNamespace(guard={"checked": 1}, fallback="T5", draft=""),
    ]
    cases = [(merchant, get_product("coupon_booster"))] * len(outs)
    perception = FakePerception("Needs_Discovery")
    pair = ("Needs_Discovery", "Opening")
    assert _template_heard(perception, outs, cases) == {0: pair, 1: pair, 3: pair}
    assert perception.batches == [["T0", "T1", "T3", "d0", "d1", "d3"]]
    assert _template_heard(perception, outs[4:], cases[4:]) == {}
    assert len(perception.batches) == 1  # nothing to read: no call


def _turn(reply: str) -> AgentTurn:
    return AgentTurn("Opening", ["greet"], [], reply, guard={"checked": 1}, fallback="Hi Rosa.")


def test_play_keeps_the_template_reading_without_changing_the_call():
    """The template's reading is stored, and the customer's answer is the same without it."""
    product = get_product("coupon_booster")
    merchant = sample_merchant(np.random.default_rng(0), 1)
    heard = Heard("Opening", False, True)
    played = []
    for template_heard in (None, ("Needs_Discovery", "Closing")):
        sim = CustomerSimulator(merchant, product, seed=[5, 11], max_turns=4)
        turns: list[Turn] = []
        _play(sim, turns, _turn("Hello Rosa."), "Opening", heard, merchant, product, template_heard)
        played.append(turns)
    plain, paired = played
    assert "template_referee_intent" not in plain[0].hidden
    assert paired[0].hidden["template_referee_intent"] == "Needs_Discovery"
    assert paired[0].hidden["draft_referee_intent"] == "Closing"
    assert [(t.text, t.act) for t in plain] == [(t.text, t.act) for t in paired]


def _said(
    planned: str, heard: str, template: str | None, kind: str = "llm", draft: str | None = None
) -> Turn:
    hidden = {"planned_intent": planned, "referee_intent": heard, "reply_kind": kind}
    if template is not None:
        hidden["template_referee_intent"] = template
    if draft is not None:
        hidden["draft_referee_intent"] = draft
    return Turn("agent", "x", intent=heard, hidden=hidden)


def test_draft_heard_table_reads_every_turn_whatever_the_guard_did(merchant):
    a, b = "Opening", "Closing"
    turns = [
        _said(a, a, a, draft=b),  # kept, but its first draft missed
        _said(a, a, b, kind="template", draft=b),  # replaced: neither heard
        _said(a, a, a, kind="template", draft=a),  # replaced: both heard
        _said(a, a, a, kind="template", draft=b),  # replaced: template only
        _said(a, a, a),  # no draft reading: left out
    ]
    table = draft_heard_table({"d": [_call("d-0", merchant, turns)], "p": []})
    assert list(table.columns) == DRAFT_COLUMNS and list(table["system"]) == ["d"]
    row = table.iloc[0]
    assert (row["n"], row["draft_heard"], row["template_heard"]) == (4, 1, 3)
    assert (row["only_draft"], row["only_template"]) == (0, 2)
    assert row["draft_heard_rate"] == pytest.approx(0.25) and row["diff"] == pytest.approx(-0.5)


def test_paired_heard_table_compares_the_same_turns(merchant):
    a, b = "Opening", "Needs_Discovery"
    turns = [
        _said(a, a, a),  # both heard
        _said(a, b, a),  # template only
        _said(a, b, a),  # template only
        _said(a, a, b),  # reply only
        _said(a, b, b),  # neither
        _said(a, a, None),  # no template reading: left out
        _said(a, b, a, kind="template"),  # a template turn: left out
        Turn("customer", "Okay.", act="neutral"),
    ]
    calls = {
        "base_doga": [_call("d-0", merchant, turns)],
        "base_plain": [_call("p-0", merchant, [])],
    }
    table = paired_heard_table(calls)
    assert list(table.columns) == PAIRED_COLUMNS and list(table["system"]) == ["base_doga"]
    row = table.iloc[0]
    assert (row["n"], row["reply_heard"], row["template_heard"]) == (5, 2, 3)
    assert (row["only_reply"], row["only_template"]) == (1, 2)
    assert row["reply_heard_rate"] == pytest.approx(0.4)
    assert row["template_heard_rate"] == pytest.approx(0.6)
    assert row["diff"] == pytest.approx(-0.2)
    assert row["reply_heard_lo"] < 0.4 < row["reply_heard_hi"]
    assert row["diff_lo"] <= -0.2 <= row["diff_hi"] and row["diff_hi"] <= 0.4


def test_paired_heard_table_without_paired_turns(merchant):
    assert list(paired_heard_table({}).columns) == PAIRED_COLUMNS
    calls = {"s": [_call("s-0", merchant, [_said("Opening", "Opening", None)])]}
    assert paired_heard_table(calls).empty
    one = paired_heard_table({"s": [_call("s-0", merchant, [_said("Opening", "Opening", "x")])]})
    assert one.loc[0, "diff"] == 1.0 and math.isnan(one.loc[0, "diff_lo"])  # n = 1: no interval
    # no discordant pair: every resample gives the same difference, so no interval (not [0, 0])
    same = [_said("Opening", h, t) for h, t in [("Opening",) * 2, ("Closing",) * 2] * 4]
    row = paired_heard_table({"s": [_call("s-0", merchant, same)]}).iloc[0]
    assert row["n"] == 8 and row["diff"] == 0.0
    assert math.isnan(row["diff_lo"]) and math.isnan(row["diff_hi"])


def test_heard_by_intent_matches_the_template_turns_to_the_model_turns_moves(merchant):
    """Model-written turns all plan Closing (heard 1 of 2); template turns plan Opening (heard 3 of
    3) and Closing (heard 1 of 2): unmatched the templates look better (4/5 against 1/2); matched
    to the model-written turns' moves they are heard exactly as often (1/2)."""
    o, c = "Opening", "Closing"
    turns = [
        _said(c, c, None),
        _said(c, o, None),
        *[_said(o, o, None, kind="template") for _ in range(3)],
        _said(c, c, None, kind="template"),
        _said(c, o, None, kind="template"),
    ]
    calls = {"d": [_call("d-0", merchant, turns)], "t": [_call("t-0", merchant, turns[2:])]}
    table = heard_by_intent_table(calls).set_index("intent")
    assert list(heard_by_intent_table(calls).columns) == INTENT_COLUMNS
    assert set(table["system"]) == {"d"}  # "t" has no model-written turn
    assert table.loc[
        "Closing", ["llm_n", "llm_heard", "template_n", "template_heard"]
    ].tolist() == [
        2,
        1,
        2,
        1,
    ]
    assert math.isnan(table.loc["Opening", "llm_heard_rate"])
    assert table.loc["all", "llm_heard_rate"] == pytest.approx(0.5)
    assert table.loc["all", "template_heard_rate"] == pytest.approx(0.8)
    assert table.loc["all, template matched", "template_heard_rate"] == pytest.approx(0.5)
    assert pd.isna(table.loc["all, template matched", "template_n"])  # a weighted mean, no k/n
    summary = heard_matched(heard_by_intent_table(calls))
    assert summary["d"] == pytest.approx(
        {"llm_n": 2, "llm_rate": 0.5, "template_rate": 0.8, "template_matched_rate": 0.5}
    )


def test_paired_sentence_cites_the_saved_numbers_and_its_caveat():
    from salesman_utils.report.findings import heard_sentence, paired_heard_sentence

    row = {
        "n": 12,
        "reply_heard_rate": 0.75,
        "reply_heard_lo": 0.47,
        "reply_heard_hi": 0.91,
        "template_heard_rate": 0.5,
        "template_heard_lo": 0.25,
        "template_heard_hi": 0.75,
        "diff": 0.25,
        "diff_lo": -0.05,
        "diff_hi": 0.5,
    }
    text = paired_heard_sentence({"paired_heard": {"base_doga": row}})
    assert text.startswith("On the same 12 model-written turns")
    assert "75%" in text and "50%" in text and "+25.0 points" in text
    assert "Partly by construction" in text and "independent" in text
    assert paired_heard_sentence({"paired_heard": {"base_doga": {**row, "n": 0}}}) is None
    assert paired_heard_sentence({}) is None
    kinds = [
        {"system": "base_doga", "kind": "llm", "planned_n": 12, "planned_heard": 9, "replies": 12},
        {"system": "base_doga", "kind": "template", "planned_n": 40, "planned_heard": 20},
    ]
    both = heard_sentence({"reply_kinds": kinds, "paired_heard": {"base_doga": row}})
    assert both.endswith(text)  # the paired reading follows the unpaired one


def test_online_sentence_says_how_much_of_doga_is_template():
    from salesman_utils.report.findings import online_sentence

    row = {"n": 40, "conversions": 18, "rate": 0.45, "lo": 0.31, "hi": 0.6}
    m04 = {"online": {"template_only": row, "base_doga": row}}
    assert "guard's fallback" not in online_sentence(m04)
    m04["reply_kinds"] = [{"system": "base_doga", "kind": "template", "share": 0.966}]
    assert "97% of DOGA's turns were its guard's fallback" in online_sentence(m04)


def test_matched_sentence_cites_the_matched_rate():
    from salesman_utils.report.findings import heard_sentence, matched_heard_sentence

    r = {"llm_n": 8, "llm_rate": 0.375, "template_rate": 0.75, "template_matched_rate": 0.4}
    text = matched_heard_sentence({"heard_matched": {"base_doga": r}})
    assert "40%" in text and "38%" in text and "point reading" in text
    assert matched_heard_sentence({"heard_matched": {"base_doga": {**r, "llm_n": 0}}}) is None
    nan = {**r, "template_matched_rate": float("nan")}
    assert matched_heard_sentence({"heard_matched": {"base_doga": nan}}) is None
    kinds = [
        {"system": "base_doga", "kind": "llm", "planned_n": 8, "planned_heard": 3, "replies": 8},
        {"system": "base_doga", "kind": "template", "planned_n": 40, "planned_heard": 30},
    ]
    assert text in heard_sentence({"reply_kinds": kinds, "heard_matched": {"base_doga": r}})


def test_draft_sentence_cites_the_unselected_reading():
    from salesman_utils.report.findings import draft_heard_sentence

    row = {
        "n": 200,
        "draft_heard_rate": 0.3,
        "draft_heard_lo": 0.24,
        "draft_heard_hi": 0.37,
        "template_heard_rate": 0.75,
        "template_heard_lo": 0.69,
        "template_heard_hi": 0.8,
        "diff": -0.45,
        "diff_lo": -0.53,
        "diff_hi": -0.37,
    }
    text = draft_heard_sentence({"draft_heard": {"base_doga": row}})
    assert text.startswith("Does the small model's own wording carry the move base_doga planned?")
    assert "On all 200 of its guarded turns, before any guard choice" in text
    assert "30%" in text and "75%" in text and "-45.0 points" in text
    assert draft_heard_sentence({"draft_heard": {"base_doga": {**row, "n": 0}}}) is None
