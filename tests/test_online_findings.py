"""`online.referee_findings_table`: one row per referee finding in an agent turn; the paired
reading of the planned move in the reply and in its fallback template (issue 24)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from salesman_utils.agent.doga import AgentTurn
from salesman_utils.arena.online import (
    FINDING_COLUMNS,
    PAIRED_COLUMNS,
    _play,
    _template_heard,
    paired_heard_table,
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
    """Hears every text as `intent`, recording each batch it is given."""

    def __init__(self, intent: str = "Opening"):
        self.intent, self.batches = intent, []

    def perceive(self, replies, products, merchants):
        self.batches.append(list(replies))
        return [Heard(self.intent, False, True) for _ in replies]


def test_template_heard_reads_model_written_turns_with_a_template(merchant):
    """One batch: the templates of model-written turns only (not of template turns, not where the
    agent has no template)."""
    outs = [
        SimpleNamespace(guard={"checked": 1}, fallback="T0"),
        SimpleNamespace(guard={"checked": 1, "template": 1}, fallback="T1"),
        SimpleNamespace(guard={}, fallback=""),
        SimpleNamespace(guard={"checked": 2, "regenerated": 1}, fallback="T3"),
    ]
    cases = [(merchant, get_product("coupon_booster"))] * 4
    perception = FakePerception("Needs_Discovery")
    assert _template_heard(perception, outs, cases) == {0: "Needs_Discovery", 3: "Needs_Discovery"}
    assert perception.batches == [["T0", "T3"]]
    assert _template_heard(perception, outs[1:3], cases[1:3]) == {}
    assert len(perception.batches) == 1  # nothing to read: no call


def _turn(reply: str) -> AgentTurn:
    return AgentTurn("Opening", ["greet"], [], reply, guard={"checked": 1}, fallback="Hi Rosa.")


def test_play_keeps_the_template_reading_without_changing_the_call():
    """The template's reading is stored, and the customer's answer is the same without it."""
    product = get_product("coupon_booster")
    merchant = sample_merchant(np.random.default_rng(0), 1)
    heard = Heard("Opening", False, True)
    played = []
    for template_heard in (None, "Needs_Discovery"):
        sim = CustomerSimulator(merchant, product, seed=[5, 11], max_turns=4)
        turns: list[Turn] = []
        _play(sim, turns, _turn("Hello Rosa."), "Opening", heard, merchant, product, template_heard)
        played.append(turns)
    plain, paired = played
    assert "template_referee_intent" not in plain[0].hidden
    assert paired[0].hidden["template_referee_intent"] == "Needs_Discovery"
    assert [(t.text, t.act) for t in plain] == [(t.text, t.act) for t in paired]


def _said(planned: str, heard: str, template: str | None, kind: str = "llm") -> Turn:
    hidden = {"planned_intent": planned, "referee_intent": heard, "reply_kind": kind}
    if template is not None:
        hidden["template_referee_intent"] = template
    return Turn("agent", "x", intent=heard, hidden=hidden)


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
