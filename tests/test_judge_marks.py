"""A judge that failed its validation is marked where its numbers appear: the title of every
figure made from its scores carries `judge_validation.NOT_EVIDENCE`; a judge that passed gives
unmarked titles. Notebook 05 passes its verdict to these figures and prints the marked titles
above its score tables (checked here on the notebook's source)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from salesman_utils.config import REPO_ROOT  # noqa: E402
from salesman_utils.judge.llm_judge import CAPABILITIES, METRICS  # noqa: E402
from salesman_utils.judge.validation import NOT_EVIDENCE, judge_title, verdict  # noqa: E402
from salesman_utils.report import plots  # noqa: E402
from salesman_utils.stats import summarize  # noqa: E402


def _scores() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"system": s, "item_id": f"{c}-{i}", "capability": c, "metric": m}
        for s in ("base_plain", "base_doga")
        for c in CAPABILITIES
        for i in range(2)
        for m in METRICS
    ]
    df = pd.DataFrame(rows)
    df["score"] = rng.uniform(1, 10, len(df))
    return df


def _figures(passed):
    df = _scores()
    overall = summarize(df, by=["system"], n_boot=20)
    return {
        "radar": plots.eval_radar(df, judge_passed=passed),
        "heatmap": plots.eval_heatmap(df, judge_passed=passed),
        "bars": plots.eval_bars_ci(overall, judge_passed=passed),
    }


def _title(fig) -> str:
    return " ".join(ax.get_title() for ax in fig.axes if ax.get_title())


CHECKS = {"pairs": 0.9, "faithfulness_auc": 0.9, "expert_preferred": 0.8, "flip_rate": 0.0}


@pytest.mark.parametrize("pairs", [0.59, 0.9])
def test_figure_titles_carry_the_verdict(pairs):
    passed, _ = verdict({**CHECKS, "pairs": pairs}, "trained", pointwise=True)
    assert passed is (pairs >= 0.85)
    for name, fig in _figures(passed).items():
        title = _title(fig)
        assert title, name
        assert (NOT_EVIDENCE in title) is (not passed), (name, title)
    plt.close("all")


def test_judge_title():
    assert judge_title("Scores", False) == f"Scores\n({NOT_EVIDENCE})"
    assert judge_title("Scores", False, sep=" ") == f"Scores ({NOT_EVIDENCE})"
    assert judge_title("Scores", True) == "Scores"


def test_notebook_05_passes_the_verdict_to_every_judge_figure_and_table():
    nb = nbformat.read(str(REPO_ROOT / "notebooks" / "05_judged_evaluation.ipynb"), as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for call in ("eval_radar(", "eval_heatmap(", "eval_bars_ci("):
        at = code.index(f"plots.{call}")
        assert "judge_passed=" in code[at : code.index("\n", at)], call
    assert code.count("jv.judge_title(") >= 3  # the capability, metric and pairwise tables
