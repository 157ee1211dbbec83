"""The hand-written judge pairs (data/judge_pairs.yaml), their loader and the validation checks."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

from salesman_utils.banks import DATA_DIR
from salesman_utils.judge import validation as jv
from salesman_utils.judge.rubric import CAPABILITIES, METRICS
from salesman_utils.world.knowledge import load_products

ALL_PAIR_FILES = (*jv.DEV_PAIRS_FILES, jv.HOLDOUT_PAIRS_FILE)


@pytest.fixture(scope="module", params=[f.stem for f in ALL_PAIR_FILES])
def pairs(request):
    return jv.load_pairs(jv.PAIRS_FILE.with_name(request.param + ".yaml"))


def test_holdout_set_uses_products_and_merchants_of_neither_the_corpus_nor_the_dev_sets():
    dev, hold = jv.load_dev_pairs(), jv.load_pairs(jv.HOLDOUT_PAIRS_FILE)
    assert jv.HOLDOUT_PAIRS_FILE not in jv.DEV_PAIRS_FILES
    assert {p["set"] for p in dev["pairs"]} == {f.stem for f in jv.DEV_PAIRS_FILES}
    names = {p.name for p in load_products().values()} | {p.name for p in dev["products"].values()}
    used = {p["product"] for p in hold["pairs"]}
    assert len(used) >= 2 and not {hold["products"][u].name for u in used} & names
    assert not {m["name"] for m in hold["merchants"].values()} & {
        m["name"] for m in dev["merchants"].values()
    }
    assert not {p["id"] for p in hold["pairs"]} & {p["id"] for p in dev["pairs"]}


def test_merging_pair_sets_refuses_a_shared_product():
    one = jv.load_pairs(jv.PAIRS_FILE)
    with pytest.raises(ValueError, match="products .* in more than one set"):
        jv.merge_pair_sets({"a": one, "b": one})


def test_pair_set_covers_every_metric_and_capability_on_unseen_products(pairs):
    assert len(pairs["pairs"]) >= 40
    assert {p["metric"] for p in pairs["pairs"]} == set(METRICS)
    assert {p["capability"] for p in pairs["pairs"]} == set(CAPABILITIES)
    corpus_names = {p.name for p in load_products().values()}
    used = {p["product"] for p in pairs["pairs"]}
    assert len(used) >= 2 and not {pairs["products"][u].name for u in used} & corpus_names
    assert all(str(p["reason"]).strip() for p in pairs["pairs"])
    _, _, table = jv.pair_items(pairs)
    assert 0.3 <= table["better_longer"].mean() <= 0.7  # length alone does not separate them


def test_no_pair_sentence_comes_from_the_line_banks(pairs):
    banks = " ".join((DATA_DIR / f).read_text().lower() for f in DATA_DIR.glob("*templates*.yaml"))
    for p in pairs["pairs"]:
        for side in ("better", "worse"):
            for s in re.split(r"(?<=[.!?])\s+", str(p[side])):
                if len(s.split()) >= 6:
                    assert s.lower().rstrip(".!?") not in banks, (p["id"], s)


def _write(tmp_path, mutate):
    data = yaml.safe_load(jv.PAIRS_FILE.read_text())
    mutate(data["pairs"])
    path = tmp_path / "pairs.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_loader_names_file_pair_and_field(tmp_path):
    path = _write(tmp_path, lambda ps: ps[3].pop("worse"))
    with pytest.raises(ValueError, match=r"pairs\.yaml: pairs\[3\] \(id 'faith-04'\).*'worse'"):
        jv.load_pairs(path)
    path = _write(tmp_path, lambda ps: ps[5].update(metric="Charm"))
    with pytest.raises(ValueError, match=r"pairs\[5\] \(id 'faith-06'\): field 'metric'.*Charm"):
        jv.load_pairs(path)
    path = _write(tmp_path, lambda ps: ps[0].update(capability="Closing"))
    with pytest.raises(ValueError, match=r"pairs\[0\].*field 'capability'"):
        jv.load_pairs(path)


def test_pairs_accuracy_counts_ties_as_wrong_and_gives_a_wilson_interval(pairs):
    def by_length(items, metrics):
        return np.array([[len(it["reply"])] * len(metrics) for it in items], float)

    summary, table = jv.pairs_accuracy(by_length, pairs)
    assert summary["n"] == len(pairs["pairs"]) and summary["right"] == table["right"].sum()
    assert summary["accuracy"] == pytest.approx(table["better_longer"].mean())
    assert summary["lo"] < summary["accuracy"] < summary["hi"]
    flat, _ = jv.pairs_accuracy(lambda items, m: np.ones((len(items), len(m))), pairs)
    assert flat["accuracy"] == 0.0
    small, t = jv.pairs_accuracy(by_length, pairs, limit=7)
    assert small["n"] == 7 and t["metric"].nunique() >= 5


def test_auc_preference_flips_and_verdict():
    auc = jv.auc_ci([9, 8, 7, 2, 3, np.nan], [1, 1, 1, 0, 0, 0], n_boot=200)
    assert auc["auc"] == 1.0 and auc["n"] == 5 and auc["lo"] <= 1.0
    assert np.isnan(jv.auc_ci([1, 2], [1, 1])["auc"])
    pref = jv.preference([5, 6, 7, 4], [4, 6, 5, 5])
    assert pref["decisive"] == 3 and pref["share"] == pytest.approx(2 / 3)
    assert jv.pointwise_pairwise([1, 5, 3], [2, 5, 1])["flip_rate"] == 0.0
    good = {"pairs": 0.9, "faithfulness_auc": 0.9, "expert_preferred": 0.8, "flip_rate": 0.0}
    ok, text = jv.verdict(good, "trained")
    assert ok and "PASSES" in text
    ok, text = jv.verdict({**good, "pairs": 0.8, "flip_rate": np.nan}, "x")
    assert not ok and "pairs 80.0%" in text and "order flips n/a" in text
    ok, text = jv.verdict({**good, "pairs": 44 / 52}, "x")
    assert not ok and "pairs 84.6% (needs >= 85%)" in text
    # a pointwise judge: the flip check cannot fail, so it is shown as n/a and not counted
    ok, text = jv.verdict({**good, "flip_rate": np.nan}, "trained", pointwise=True)
    assert ok and "order flips n/a (pointwise)" in text
    ok, _ = jv.verdict({**good, "flip_rate": np.nan}, "llm")
    assert not ok
    ok, text = jv.verdict({**good, "pairs": 0.5, "flip_rate": np.nan}, "t", pointwise=True)
    assert not ok and "pairs 50.0%" in text and "flips" not in text
    # the same-bank control decides too: passing across banks but not within one fails
    ok, text = jv.verdict({**good, "same_bank_expert_preferred": 0.6}, "t", pointwise=True)
    assert not ok and "same-bank control: expert preferred in 60.0%" in text
    ok, _ = jv.verdict({**good, "same_bank_expert_preferred": 0.8}, "t", pointwise=True)
    assert ok


def test_expert_novice_split_and_same_bank_control():
    from salesman_utils.judge.trained import heldout_half
    from salesman_utils.world.corpus import simulate_corpus

    calls = simulate_corpus(60, seed=2)
    expert, novice, note = jv.expert_novice_split(calls, 30, None, seed=0)
    assert expert and len(expert) == len(novice) and "validation half" in note
    assert {heldout_half(e["reply"]) for e in expert} == {"validation"}
    assert all(e["item_id"] == n["item_id"] for e, n in zip(expert, novice, strict=True))
    same_e, same_n = jv.same_bank_pairs(calls, 30, None, seed=0)
    assert len(same_e) == len(same_n) == 30
    assert all(heldout_half(e["reply"]) is None for e in same_e)  # written from the visible bank
    assert all(e["item_id"] == n["item_id"] for e, n in zip(same_e, same_n, strict=True))


def test_report_shows_flips_as_na_for_a_pointwise_judge_and_the_dev_set_apart():
    from salesman_utils.report.tables import validation_table

    row = {"pairs": 0.9, "pairs_lo": 0.8, "pairs_hi": 0.95, "pairs_n": 40, "flip_rate": np.nan}
    row |= {"dev_pairs": 0.8, "dev_pairs_lo": 0.7, "dev_pairs_hi": 0.9, "dev_pairs_n": 52}
    table = validation_table(
        {"trained": {**row, "pointwise": True}, "llm": {**row, "flip_rate": 0.5}}
    ).set_index("judge")
    assert table.loc["trained", "order flips"] == "n/a (pointwise)"
    assert table.loc["llm", "order flips"] != "n/a (pointwise)"
    assert "n=52" in table.loc["trained", "dev pairs (not a test) [95% CI]"]
