"""Human-evaluation kit: blind shuffled export, and the analysis of a small filled example."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from salesman_utils.judge.humaneval import analyse_sheet, export_pairwise_sheet, read_filled_sheet


def _items(system, word, n=8):
    return [
        {
            "item_id": f"it{i}",
            "system": system,
            "capability": "Objection_Handling",
            "reply": f"{word} reply {i}",
            "product_facts": "Spotlight Ads: $39/month.",
            "merchant_facts": "Noodle shop.",
            "history": "Customer: too expensive.",
        }
        for i in range(n)
    ]


@pytest.fixture
def sheet(tmp_path):
    return export_pairwise_sheet(
        _items("best_grpo_doga", "strong"), _items("base_plain", "weak"), tmp_path / "s.csv", seed=1
    )


def test_export_is_blind_shuffled_and_repeatable(sheet, tmp_path):
    sheet_path, key_path = sheet
    assert key_path.name == "s.key.csv"
    df, key = pd.read_csv(sheet_path, dtype=str), pd.read_csv(key_path)
    assert list(df.columns[:7]) == [
        "row",
        "item_id",
        "capability",
        "context",
        "reply_1",
        "reply_2",
        "preference",
    ]
    assert df["preference"].isna().all()  # empty for the rater
    assert not any("grpo" in c or "plain" in c for c in df.to_csv().split(","))  # blind
    assert df["item_id"].tolist() != [f"it{i}" for i in range(8)]  # shuffled rows
    assert set(key["a_position"]) == {1, 2}  # system A on both sides
    for _, r in df.iterrows():
        k = key[key.row == int(r["row"])].iloc[0]
        strong = r["reply_1"] if k["a_position"] == 1 else r["reply_2"]
        assert strong.startswith("strong") and "Spotlight Ads" in r["context"]
    again = export_pairwise_sheet(
        _items("best_grpo_doga", "strong"), _items("base_plain", "weak"), tmp_path / "t.csv", seed=1
    )
    assert pd.read_csv(again[0]).equals(pd.read_csv(sheet_path))


def _fill(sheet_path, key_path, answers_for_a, out):
    """Rater picks per item id: 'a' (system A's reply), 'b', 'tie' or '' (skipped)."""
    df, key = pd.read_csv(sheet_path, dtype=str), pd.read_csv(key_path)
    prefs = []
    for _, r in df.iterrows():
        want = answers_for_a[r["item_id"]]
        pos_a = int(key[key.row == int(r["row"])]["a_position"].iloc[0])
        prefs.append({"a": str(pos_a), "b": str(3 - pos_a), "tie": "Tie", "": ""}[want])
    df["preference"] = prefs
    df.to_csv(out, index=False)
    return out


def test_analyse_filled_example(sheet, tmp_path):
    sheet_path, key_path = sheet
    human = {f"it{i}": v for i, v in enumerate(["a", "a", "a", "a", "a", "b", "tie", ""])}
    filled = _fill(sheet_path, key_path, human, tmp_path / "filled.csv")
    judge = {f"it{i}": v for i, v in enumerate(["a", "a", "a", "b", "a", "b", "tie", "a"])}
    res = analyse_sheet(filled, key_path, judge_verdicts=judge)
    assert (res["system_a"], res["system_b"]) == ("best_grpo_doga", "base_plain")
    assert (res["n_rows"], res["n_rated"], res["wins_a"], res["wins_b"], res["ties"]) == (
        8,
        7,
        5,
        1,
        1,
    )
    assert res["share_a"] == pytest.approx(5 / 6)
    assert res["share_a_lo"] == pytest.approx(0.4365, abs=1e-3)
    assert res["share_a_hi"] == pytest.approx(0.9699, abs=1e-3)
    # judge agrees on 6 of the 7 rated items; kappa with labels a/b/tie by hand:
    # p_o = 6/7, p_e = (5*4 + 1*2 + 1*1) / 49 = 23/49 -> kappa = (42 - 23) / (49 - 23)
    assert res["n_judge"] == 7 and res["judge_agreement"] == pytest.approx(6 / 7)
    assert res["judge_kappa"] == pytest.approx(19 / 26)


def test_analyse_accepts_judge_dataframe_and_rejects_bad_cells(sheet, tmp_path):
    sheet_path, key_path = sheet
    human = {f"it{i}": "a" for i in range(8)}
    filled = _fill(sheet_path, key_path, human, tmp_path / "f.csv")
    verdicts = pd.DataFrame({"item_id": [f"it{i}" for i in range(8)], "verdict": ["a"] * 8})
    res = analyse_sheet(filled, key_path, judge_verdicts=verdicts)
    assert res["judge_agreement"] == 1.0 and math.isnan(res["judge_kappa"])  # one label only
    assert read_filled_sheet(filled, key_path)["human"].eq("a").all()
    df = pd.read_csv(filled, dtype=str)
    df.loc[2, "preference"] = "maybe"
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad.csv: row 3: preference 'maybe'"):
        analyse_sheet(tmp_path / "bad.csv", key_path)
