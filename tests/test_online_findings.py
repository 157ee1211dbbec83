"""`online.referee_findings_table`: one row per referee finding in an agent turn (issue 24)."""

from __future__ import annotations

from salesman_utils.arena.online import FINDING_COLUMNS, referee_findings_table
from salesman_utils.world.simulator import AgentProfile, Dialogue, Turn


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
