"""Automatic metrics and intervals: known values, NaN handling, pairing, determinism."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from salesman_utils.referee.metrics import (
    distinct_n,
    embedding_similarity,
    rouge_l,
    violation_counts,
    violations_per_100,
)
from salesman_utils.stats import bootstrap_ci, paired_bootstrap_diff, summarize, wilson_ci


def test_bootstrap_ci_known_mean_and_repeatable():
    point, lo, hi = bootstrap_ci([1, 2, 3, 4, 5], n=500, seed=3)
    assert point == 3.0 and 1.0 <= lo < 3.0 < hi <= 5.0
    assert bootstrap_ci([1, 2, 3, 4, 5], n=500, seed=3) == (point, lo, hi)
    assert bootstrap_ci([1, math.nan, 3])[0] == 2.0  # NaN (e.g. parse failure) left out


def test_bootstrap_ci_small_and_degenerate_samples():
    assert all(math.isnan(x) for x in bootstrap_ci([]))
    p, lo, hi = bootstrap_ci([4.0])
    assert p == 4.0 and math.isnan(lo) and math.isnan(hi)
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert bootstrap_ci([1, 2, 3], stat=np.median)[0] == 2.0


def test_paired_diff_cancels_item_difficulty():
    rng = np.random.default_rng(0)
    difficulty = rng.normal(5, 2, size=40)  # large spread between items
    a = difficulty + 0.5 + rng.normal(0, 0.1, size=40)
    point, lo, hi = paired_bootstrap_diff(a, difficulty, n=500)
    assert point == pytest.approx(0.5, abs=0.05) and 0.4 < lo < point < hi < 0.6
    # unpaired intervals of the two means overlap widely: pairing is what makes it decisive
    assert bootstrap_ci(a)[1] < bootstrap_ci(difficulty)[2]


def test_paired_diff_exact_relative_and_nan_pairs():
    assert paired_bootstrap_diff([2, 3, 4], [1, 2, 3]) == (1.0, 1.0, 1.0)
    rel = paired_bootstrap_diff([2, 4, 6, 9], [1, 2, 3, 4], relative=True, n=200)
    assert rel[0] == pytest.approx(21 / 10 - 1) and rel[1] <= rel[0] <= rel[2]
    assert paired_bootstrap_diff([1, math.nan, 5], [0, 1, 4])[0] == pytest.approx(1.0)
    p, lo, _ = paired_bootstrap_diff([3.0], [1.0])
    assert p == 2.0 and math.isnan(lo)
    with pytest.raises(ValueError, match="a has 2 values, b has 3"):
        paired_bootstrap_diff([1, 2], [1, 2, 3])


def test_wilson_ci_known_values():
    p, lo, hi = wilson_ci(7, 10)
    assert p == 0.7 and lo == pytest.approx(0.3968, abs=1e-4) and hi == pytest.approx(0.8922, 1e-4)
    assert wilson_ci(10, 10)[2] == pytest.approx(1.0)
    assert all(math.isnan(x) for x in wilson_ci(0, 0))
    with pytest.raises(ValueError, match="k=5, n=3"):
        wilson_ci(5, 3)


def test_rouge_l_known_values():
    assert rouge_l("the cat sat", "the cat sat") == pytest.approx(1.0)
    # LCS 3 of 6 predicted and 3 reference tokens: P = 0.5, R = 1, F1 = 2/3
    assert rouge_l("the cat sat on the mat", "the cat sat") == pytest.approx(2 / 3)
    np.testing.assert_allclose(rouge_l(["a b", "x"], ["a b", "y"]), [1.0, 0.0])
    with pytest.raises(ValueError):
        rouge_l(["a"], ["a", "b"])


def test_distinct_n_known_values():
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["Hello, hello!", "world"], 1) == pytest.approx(2 / 3)
    assert math.isnan(distinct_n(["one"], 2))


def test_embedding_similarity_orders_paraphrase_above_unrelated():
    sims = embedding_similarity(
        ["Our ads cost 39 dollars a month.", "Our ads cost 39 dollars a month."],
        ["The advertising plan is $39 per month.", "I like hiking in the mountains."],
    )
    assert sims.shape == (2,) and sims[0] > sims[1] + 0.3 and sims[0] <= 1.0 + 1e-6


def test_violations_per_100_with_the_real_fact_check():
    from salesman_utils.world.knowledge import load_products

    product = load_products()["spotlight_ads"]
    replies = [
        "The Starter plan is $39 a month.",
        "It costs $1 a month and is guaranteed to double your orders.",
        "Shall I walk you through the setup?",
        "Hello!",
    ]
    counts = violation_counts(replies, product)
    assert counts[0] == 0 and counts[1] >= 2 and counts[2:].sum() == 0
    assert violations_per_100(replies, [product] * 4) == pytest.approx(100 * counts.sum() / 4)
    assert math.isnan(violations_per_100([], product))
    with pytest.raises(ValueError, match="4 replies vs 2 products"):
        violation_counts(replies, [product, product])


def test_summarize_groups_means_and_counts():
    df = pd.DataFrame(
        {
            "system": ["a"] * 4 + ["b"] * 3,
            "metric": ["m", "m", "n", "n", "m", "m", "m"],
            "score": [1, 3, 5, math.nan, 7, 8, 9],
        }
    )
    out = summarize(df, by=["system"], value="score", n_boot=200)
    assert list(out.columns) == ["system", "mean", "lo", "hi", "n"]
    assert out["mean"].tolist() == [3.0, 8.0] and out["n"].tolist() == [3, 3]
    two = summarize(df, by=["system", "metric"], n_boot=200)
    row = two[(two.system == "a") & (two.metric == "n")].iloc[0]
    assert row["mean"] == 5.0 and row["n"] == 1 and math.isnan(row["lo"])
    with pytest.raises(KeyError, match="missing columns"):
        summarize(df, by="judge")
