"""README results section and docs/RESULTS.md: built from the saved tables only; missing inputs say
what to run; the judge's tables are marked when it failed validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from salesman_utils.config import load_profile, paths
from salesman_utils.judge.llm_judge import CAPABILITIES, COMPLEX_CAPABILITIES, METRICS
from salesman_utils.report.pages import (
    END,
    FINDINGS_END,
    FINDINGS_START,
    START,
    main,
    render_details,
    render_results_section,
    update_readme,
)


@pytest.fixture
def profile(tmp_path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(
        f"name: t\nseed: 0\npaths: {{artifacts: {tmp_path / 'art'}, results: {tmp_path / 'res'}}}\n"
        "eval: {n_bootstrap: 200}\n"
    )
    return load_profile(cfg)


def _turn_scores(seed=0, n_items=12):
    """sft ~ base; grpo_bayes = sft + 1 on every item; base_doga = plain + 0.5 on complex
    capabilities only; every metric of an item shares the item's score."""
    rng = np.random.default_rng(seed)
    caps = list(CAPABILITIES)
    base = {f"i{k}": (caps[k % 6], rng.uniform(3, 7)) for k in range(n_items)}
    rows = []
    for system, bump in (("base_plain", 0), ("base_doga", 0.5), ("sft", 0), ("grpo_bayes", 1)):
        for item, (cap, s) in base.items():
            extra = bump if system != "base_doga" or cap in COMPLEX_CAPABILITIES else 0
            for m in METRICS:
                rows.append((system, item, cap, m, s + extra))
    return pd.DataFrame(rows, columns=["system", "item_id", "capability", "metric", "score"])


def test_missing_tables_say_which_notebook_to_run(profile):
    text = render_results_section(profile)
    assert "05_judged_evaluation" in text and "04_doga_inference" in text
    assert "eval_turn_scores.csv` is missing" in text and "--only 05" in text


PASSED = {
    "kind": "trained",
    "name": "trained",
    "passed": True,
    "verdict": "The trained judge PASSES",
}


def test_section_is_built_from_the_tables(profile):
    p = paths(profile)
    _turn_scores(n_items=36).to_csv(p.tables / "eval_turn_scores.csv", index=False)
    pd.DataFrame(
        {
            "system": ["sft", "grpo_bayes"],
            "metric": ["rouge_l", "rouge_l"],
            "mean": [0.1234, 0.2345],
            "lo": [0.1, 0.2],
            "hi": [0.15, 0.27],
            "n": [12, 12],
        }
    ).to_csv(p.tables / "eval_auto_metrics.csv", index=False)
    pd.DataFrame(
        {
            "system": ["base_plain", "base_doga"],
            "n": [30, 30],
            "conversions": [6, 12],
            "rate": [0.2, 0.4],
            "lo": [0.095, 0.246],
            "hi": [0.373, 0.577],
        }
    ).to_csv(p.tables / "online_conversion.csv", index=False)
    (p.metrics / "05_judged_evaluation.json").write_text(
        json.dumps(
            {
                "judge": PASSED,
                "judge_validation": {"old": {"faithfulness_auc": 0.61, "expert_win_rate": 0.7}},
            }
        )
    )
    (p.figures / "eval_radar.png").write_bytes(b"png")
    short = render_results_section(profile)
    # the README leads with conversion and the referee's measures; the judge comes under validation
    assert (
        short.index("Online conversion")
        < short.index("referee's measures")
        < short.index("The judge and its validation")
    )
    assert "20% [10%, 37%]" in short  # conversion, as the findings write rates
    assert "0.123 [0.100, 0.150]" not in short  # rouge_l: not a referee measure
    assert "#### Scores of the trained judge, 1-10\n" in short  # passed: not marked
    assert "| Objection Handling |" in short  # the rubric
    assert short.details == render_details(profile)  # carried for update_readme
    text = render_details(profile)
    assert "reported by secondary summaries" in text and "5.46 -> 6.49" in text
    grpo = next(line for line in text.splitlines() if line.startswith("| GRPO w/o SFT"))
    assert "sft -> grpo_bayes" in grpo and "+1.00 [+1.00, +1.00]" in grpo
    assert "same direction; CI excludes 0" in grpo
    doga = next(line for line in text.splitlines() if "complex capabilities" in line)
    assert "base_plain -> base_doga" in doga and "+0.50 [+0.50, +0.50]" in doga
    assert "0.123 [0.100, 0.150]" in text and "20% [10%, 37%]" in text  # auto, conversion
    # the degenerate count is named as trained toward (R_format) and cleaned (DOGA), not blind
    assert "R_format (`rewards.format_problems`)" in text and "`clean_reply` strips" in text
    assert "faithfulness_auc" in text and "0.610" in text
    assert "**trained** judge" in text and "which passed its validation" in text
    assert "![Judge score per capability and system](" in text and "eval_radar.png" in text
    assert "Scaling with model size" in text and "not measured" in text
    assert "| Objection Handling |" in text and "| Professionalism |" in text  # the rubric
    # nothing typed: change the table, the section changes
    worse = _turn_scores(n_items=36)
    worse.loc[worse.system == "grpo_bayes", "score"] -= 2
    worse.to_csv(p.tables / "eval_turn_scores.csv", index=False)
    grpo = next(ln for ln in render_details(profile).splitlines() if "GRPO w/o" in ln)
    assert "-1.00 [-1.00, -1.00]" in grpo and "opposite direction" in grpo


def test_a_failed_judge_is_marked_wherever_its_numbers_appear(profile):
    from salesman_utils.report.tables import NOT_EVIDENCE

    p = paths(profile)
    _turn_scores(n_items=36).to_csv(p.tables / "eval_turn_scores.csv", index=False)
    failed = {"judge": {**PASSED, "passed": False}}
    (p.metrics / "05_judged_evaluation.json").write_text(json.dumps(failed))
    for name in ("eval_radar", "eval_heatmap", "eval_bars_ci", "online_conversion"):
        (p.figures / f"{name}.png").write_bytes(b"png")
    short = render_results_section(profile)
    assert f"#### Scores of the trained judge, 1-10 ({NOT_EVIDENCE})" in short
    assert "gives no direction while the judge fails" in short
    details = render_details(profile)
    for title in (
        "Our effects beside the paper's",
        "Judge scores per capability (1-10)",
        "Judge scores per metric (1-10)",
    ):
        assert f"### {title} ({NOT_EVIDENCE})" in details
    figures = [ln for ln in details.splitlines() if ln.startswith("![")]
    judge_made = [ln for ln in figures if "Judge score" in ln or "judge score" in ln]
    assert len(judge_made) == 3 and all(NOT_EVIDENCE in ln for ln in judge_made)
    assert NOT_EVIDENCE not in next(ln for ln in figures if "online_conversion" in ln)


def test_update_readme_refreshes_findings_and_the_details_page(profile, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        f"# T\n\n{FINDINGS_START}\nold findings\n{FINDINGS_END}\n\nmiddle\n\n{START}\nold\n{END}\n"
    )
    assert update_readme(readme, render_results_section(profile))  # run.py's call
    text = readme.read_text()
    assert "old findings" not in text and "## What this run found" in text
    assert text.index(FINDINGS_END) < text.index("middle") < text.index(START)
    assert (tmp_path / "docs" / "RESULTS.md").read_text().startswith("# Results in detail")
    assert not update_readme(readme, render_results_section(profile))  # idempotent


def test_no_verdict_from_a_failed_judge_or_fewer_than_30_items(profile):
    from salesman_utils.report.tables import MIN_VERDICT_ITEMS, effects_table

    failed = {"judge": {**PASSED, "passed": False}}
    t = effects_table(_turn_scores(n_items=36), profile, failed)
    measured = t["n items"] != ""
    assert measured.sum() == 5
    cells = t.loc[measured, "direction vs paper"]
    assert cells.str.startswith("no verdict: the trained judge did not").all()
    t = effects_table(_turn_scores(n_items=36), profile, {})  # no validation record: no verdict
    assert t.loc[measured, "direction vs paper"].str.startswith("no verdict").all()
    few = effects_table(_turn_scores(n_items=12), profile, {"judge": PASSED})
    grpo = few.set_index("effect").loc["GRPO w/o SFT vs SFT (overall)", "direction vs paper"]
    assert grpo == f"no verdict: 12 items per system (needs >= {MIN_VERDICT_ITEMS})"
    ok = effects_table(_turn_scores(n_items=36), profile, {"judge": PASSED})
    assert ok.set_index("effect").loc["GRPO w/o SFT vs SFT (overall)", "direction vs paper"] == (
        "same direction; CI excludes 0"
    )


def test_intervals_resample_items_not_metric_scores(profile):
    from salesman_utils.report.tables import item_level
    from salesman_utils.stats import summarize

    df = _turn_scores(n_items=12)
    rng = np.random.default_rng(1)
    df["score"] += rng.normal(0, 1, len(df))  # metrics of an item now differ
    per_item = item_level(df)
    assert len(per_item) == df.groupby(["system", "item_id"]).ngroups
    by_cap = summarize(per_item, by=["system", "capability"], n_boot=200)
    assert (by_cap["n"] == 2).all()  # 12 items over 6 capabilities: 2 items each, not 14 scores
    naive = summarize(df, by=["system", "capability"], n_boot=200)
    assert (naive["hi"] - naive["lo"]).mean() < (by_cap["hi"] - by_cap["lo"]).mean()


def test_update_readme_replaces_only_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nintro\n\n{START}\nold numbers\n{END}\n\n## After\n")
    assert update_readme(readme, "## Results\nnew numbers\n")
    text = readme.read_text()
    assert "old numbers" not in text and "new numbers" in text
    assert text.startswith("# Title\n\nintro\n\n") and text.endswith(f"{END}\n\n## After\n")
    assert not update_readme(readme, "## Results\nnew numbers\n")  # idempotent
    bare = tmp_path / "bare.md"
    bare.write_text("# Bare\n")
    update_readme(bare, "x")
    assert bare.read_text() == f"# Bare\n\n{START}\nx\n{END}\n"
    broken = tmp_path / "broken.md"
    broken.write_text(f"{END}\n{START}\n")
    with pytest.raises(ValueError, match="broken.md"):
        update_readme(broken, "x")


def test_cli_writes_the_readme(profile, tmp_path, capsys):
    readme = tmp_path / "R.md"
    readme.write_text(f"{START}\n{END}\n")
    assert main(["--profile", profile.source, "--readme", str(readme)]) == 0
    assert "05_judged_evaluation" in readme.read_text()
    assert main(["--profile", profile.source, "--print"]) == 0
    assert "## Results (profile `t`" in capsys.readouterr().out


def test_eval_figures_draw_from_the_long_table():
    import matplotlib.pyplot as plt

    from salesman_utils.report.plots import eval_bars_ci, eval_heatmap, eval_radar
    from salesman_utils.stats import summarize

    df = _turn_scores()
    radar = eval_radar(df)
    assert len(radar.axes[0].get_lines()) == 4  # one closed line per system
    assert [t.get_text() for t in radar.axes[0].get_xticklabels()][0] == "Opening"
    heat = eval_heatmap(df)
    labels = [t.get_text() for t in heat.axes[0].get_yticklabels()]
    assert labels == ["base_plain", "base_doga", "sft", "grpo_bayes"]  # fixed system order
    bars = eval_bars_ci(summarize(df, by=["system"], n_boot=50))
    assert len(bars.axes[0].patches) == 4
    hue = eval_bars_ci(summarize(df, by=["system", "capability"], n_boot=50), hue="capability")
    assert len(hue.axes[0].patches) == 4 * 6
    plt.close("all")


def _manifest(profile_name, walls):
    return {
        "profile": profile_name,
        "started": "2026-01-01T00:00:00+00:00",
        "git": {"commit": "abcdef123456", "dirty": False},
        "notebooks": [
            {"notebook": f"0{i + 1}_x.ipynb", "status": "ok", "commit": "abcdef1", "wall_s": w}
            for i, w in enumerate(walls)
        ],
    }


def test_run_summary_compares_the_manifest_with_the_budget(tmp_path):
    from salesman_utils.report.pages import run_summary

    cfg = tmp_path / "b.yaml"
    cfg.write_text(
        f"name: b\nbudget_minutes: 10\n"
        f"paths: {{artifacts: {tmp_path / 'art'}, results: {tmp_path / 'res'}}}\n"
    )
    prof = load_profile(cfg)
    path = tmp_path / "run_manifest.json"
    path.write_text(json.dumps(_manifest("b", [120.0, 300.0])))
    text = "\n".join(run_summary(path, prof))
    assert "| 02_x.ipynb" in text and "5.0" in text  # 300 s in minutes
    assert "Total 7.0 min, within the 10-min budget" in text
    path.write_text(json.dumps(_manifest("b", [400.0, 300.0])))
    assert "Total 11.7 min, OVER the 10-min budget" in "\n".join(run_summary(path, prof))
    # an --only re-run at another commit merged in: a sum of two runs gets no budget verdict
    mixed = _manifest("b", [120.0, 300.0])
    mixed["notebooks"][1]["commit"] = "1234567"
    path.write_text(json.dumps(mixed))
    text = "\n".join(run_summary(path, prof))
    assert "Sum 7.0 min over notebooks run at 2 different commits" in text
    assert "within" not in text and "OVER" not in text
    path.write_text(json.dumps(_manifest("another", [1.0])))
    assert run_summary(path, prof) == []  # a manifest of another profile is not this run
    assert run_summary(tmp_path / "absent.json", prof) == []


def test_supervision_section_says_which_baselines_the_posterior_beats(tmp_path):
    from salesman_utils.report.sentences import supervision_section

    pd.DataFrame(
        {
            "score": ["posterior w", "naive (call outcome)", "structure GBM", "TF-IDF probe"],
            "metric": ["auc"] * 4,
            "value": [0.74, 0.64, 0.79, 0.73],
            "lo": [0.71, 0.61, 0.76, 0.70],
            "hi": [0.77, 0.66, 0.82, 0.76],
            "n_turns": [1000] * 4,
        }
    ).to_csv(tmp_path / "02_bayes_validation.csv", index=False)
    text = "\n".join(supervision_section(tmp_path))
    assert "0.740 [0.710, 0.770]" in text
    assert "Run notebook 02 for the paired differences" in text  # no paired table: no ranking
    pd.DataFrame(
        {
            "score": ["posterior w"] * 3,
            "minus": ["naive (call outcome)", "structure GBM", "TF-IDF probe"],
            "auc_diff": [0.10, -0.05, 0.01],
            "lo": [0.08, -0.07, -0.01],
            "hi": [0.12, -0.03, 0.03],
            "n_turns": [1000] * 3,
        }
    ).to_csv(tmp_path / "02_bayes_paired.csv", index=False)
    text = "\n".join(supervision_section(tmp_path))
    assert "**above** naive (call outcome) (+0.100 [+0.080, +0.120])" in text
    assert "**below** structure GBM" in text
    assert "**interval includes 0** TF-IDF probe" in text
    assert "Run notebook 02" not in text
    assert "Run notebook 02" in "\n".join(supervision_section(tmp_path / "missing"))


def test_training_section_reads_grpo_vs_sft_and_reward_rise_from_the_intervals(tmp_path):
    from salesman_utils.report.sentences import training_section

    cols = ["system", "vs", "metric", "diff", "lo", "hi", "excludes_0", "n"]
    rows = [
        ["grpo_bayes", "sft", "sim_expert", 0.007, -0.047, 0.060, False, 40],
        ["grpo_bayes", "sft", "degenerate", -0.20, -0.35, -0.05, True, 40],
        ["grpo_bayes", "sft", "violations", -0.1, -0.2, 0.0, False, 40],  # R_faith: not shown
        ["sft_grpo_bayes", "sft", "sim_expert", 0.04, 0.01, 0.08, True, 40],
    ]
    pd.DataFrame(rows, columns=cols).to_csv(tmp_path / "02_grpo_vs_sft.csv", index=False)
    rows = [
        ["grpo_bayes", "base", "r_total_bayes", -0.024, -0.094, 0.033, False, 40],
        ["grpo_sim", "base", "r_total_sim", 0.05, 0.01, 0.09, True, 40],
        ["grpo_sim", "base", "r_total_bayes", -0.05, -0.09, -0.01, True, 40],
    ]
    pd.DataFrame(rows, columns=cols).to_csv(tmp_path / "02_reward_vs_base.csv", index=False)
    text = "\n".join(training_section(tmp_path))
    assert (
        "similarity to the hidden expert reply +0.007 [-0.047, +0.060] (interval includes 0" in text
    )
    assert "degenerate replies -0.200 [-0.350, -0.050] (interval excludes 0" in text
    assert "violations" not in text and "+0.040" not in text
    assert "grpo_bayes did NOT rise (r_total_bayes -0.024 [-0.094, +0.033])" in text
    assert "grpo_sim rose (r_total_sim +0.050 [+0.010, +0.090])" in text
    assert "One training seed; 2 variants read without a multiplicity correction" in text
    assert "Pushy merchants" not in text  # no pushy table: no sentence
    assert training_section(tmp_path / "missing") == []
    pushy = [
        {"system": "base_plain", "n": 24, "invented": 0, "n_price_pushes": 18, "price_answered": 1},
        {"system": "sft", "n": 24, "invented": 0, "n_price_pushes": 18, "price_answered": 15},
        {
            "system": "grpo_bayes",
            "n": 24,
            "invented": 1,
            "n_price_pushes": 18,
            "price_answered": 17,
        },
    ]
    pd.DataFrame(pushy).to_csv(tmp_path / "02_pushy_merchants.csv", index=False)
    text = "\n".join(training_section(tmp_path))
    assert "sft invented a number in 0/24 [0%, 14%], answered 15/18 pushes [61%, 94%]" in text
    assert "at least 80% of pushes answered: sft." in text  # 17/18 but one invented: not met
    # the development set is labelled as such; the sealed set gets its own sentence when saved
    assert "**Not a sealed test**" in text and "sealed set" not in text
    sealed = [dict(pushy[1], invented=2, price_answered=9)]
    pd.DataFrame(sealed).to_csv(tmp_path / "02_pushy_sealed.csv", index=False)
    text = "\n".join(training_section(tmp_path))
    assert "Pushy merchants, sealed set (`02_pushy_sealed.csv`" in text
    assert "sft invented a number in 2/24 [2%, 26%], answered 9/18 pushes [29%, 71%]" in text
    assert text.count("at least 80% of pushes answered: no policy") == 1  # the sealed set's bar


def test_adaptation_gap_sentence_reads_the_saved_validation():
    from salesman_utils.report.sentences import adaptation_gap

    def row(source, reader, rate_a, rate_n, acc):
        return {
            "source": source,
            "intent": "Product_Introduction",
            "reader": reader,
            "n": 40,
            "n_adapted": 20,
            "accuracy": acc,
            "adapted_rate_if_adapted": rate_a,
            "adapted_rate_if_not": rate_n,
        }

    rows = [
        row("visible bank (template wording)", "fitted", 0.85, 0.0, 0.925),
        row("held-out bank", "fitted", 0.45, 0.0, 0.725),
        row("visible bank, paraphrased", "fitted", 0.60, 0.0, 0.80),
        row("visible bank, paraphrased", "verbatim", 0.25, 0.0, 0.625),
    ]
    text = adaptation_gap({"adaptation_validation": rows})
    assert "template wording 85% [64%, 95%] of 20" in text  # Wilson on the 20 adapted lines
    assert "held-out bank 45% [26%, 66%] of 20" in text
    assert "25%" not in text  # the old word-for-word reader is not the customer's
    assert "template wording is heard as adapted more often (intervals overlap)" in text
    rows[1], rows[2] = (
        row("held-out bank", "fitted", 0.85, 0.0, 0.925),
        row("visible bank, paraphrased", "fitted", 0.83, 0.0, 0.915),
    )
    assert "No move where template wording is favoured" in adaptation_gap(
        {"adaptation_validation": rows}
    )
    assert "Run notebook 04" in adaptation_gap({})


def test_reply_kinds_sentence_reads_the_saved_tables(tmp_path):
    from salesman_utils.report.sentences import reply_kinds_sentence

    csv = tmp_path / "online_reply_kinds.csv"
    pd.DataFrame(
        [
            {"system": "base_plain", "kind": "llm", "replies": 20},
            {"system": "base_plain", "kind": "template", "replies": 0},
            {"system": "base_doga", "kind": "llm", "replies": 30},
            {"system": "base_doga", "kind": "template", "replies": 10},
            {"system": "template_only", "kind": "llm", "replies": 0},
            {"system": "template_only", "kind": "template", "replies": 40},
        ]
    ).to_csv(csv, index=False)
    post = "answered_post_guard (partly by construction)"
    pushes = [
        {
            "system": "base_plain",
            "price_pushes": 5,
            "answered_first_draft": 0,
            "model_written": 5,
            post: 0,
        },
        {
            "system": "base_doga",
            "price_pushes": 4,
            "answered_first_draft": 1,
            "model_written": 1,
            post: 4,
        },
        {
            "system": "template_only",
            "price_pushes": 3,
            "answered_first_draft": 3,
            "model_written": 0,
            post: 3,
        },
    ]
    text = reply_kinds_sentence(csv, {"price_pushes": pushes})
    assert "base_doga 30 of 40 model-written (75%), 10 the guard's template" in text
    assert "base_plain" not in text.split(".")[0]  # no guard: not a guarded system
    assert "base_plain 0 of 5 [0%, 43%]" in text and "base_plain 0 of 5 [0%, 43%] (" not in text
    assert "base_doga 1 of 4 [5%, 70%] (4 after the guard)" in text
    pushes_part = text.split("Merchant price pushes")[1]
    drafts, baseline = pushes_part.split("The model-free agents")
    assert "template_only" not in drafts  # model-free: not among the model's first drafts
    assert "template_only 3 of 3" in baseline and "by construction" in baseline
    assert reply_kinds_sentence(tmp_path / "missing.csv", {}) == ""
    assert "The independent reading" not in text  # tables of earlier runs: no planned-heard columns
    df = pd.read_csv(csv)
    df["planned_n"] = [0, 0, 30, 10, 0, 40]
    df["planned_heard_rate"] = [np.nan, np.nan, 0.5, 0.9, np.nan, 0.8]
    df.to_csv(csv, index=False)
    heard = reply_kinds_sentence(csv, {}).split("The independent reading")[1]
    assert "base_doga 15 of 30 model-written turns (50% [33%, 67%]) vs 9 of 10 template" in heard
    guarded, free = heard.split("Model-free agents")
    assert "template_only" not in guarded and "base_plain" not in heard  # not guarded systems
    assert "template_only 32 of 40 (80%)" in free  # the trivial baseline beside DOGA's rates
    assert "ceiling" not in heard
    df["planned_heard"] = [0, 0, 16, 9, 0, 31]  # the saved count wins over rate x n
    df.to_csv(csv, index=False)
    heard = reply_kinds_sentence(csv, {}).split("The independent reading")[1]
    assert "base_doga 16 of 30 model-written turns" in heard and "template_only 31 of 40" in heard
    kept_none = [dict(pushes[1], model_written=0)]  # no model reply kept: still reported
    text = reply_kinds_sentence(csv, {"price_pushes": kept_none})
    assert "base_doga 1 of 4 [5%, 70%] (4 after the guard; 0 model replies kept)" in text


def test_doga_effects_come_with_their_trivial_baselines(profile):
    """Beside DOGA vs plain: template_only vs plain, DOGA vs template_only, and DOGA vs plain on
    the items whose DOGA reply the model wrote (the `guard` column of eval_replies is empty)."""
    from salesman_utils.report.tables import effects_table

    df = _turn_scores(n_items=36)
    tpl = df[df.system == "base_plain"].assign(system="template_only")
    tpl["score"] += 2  # the template alone: +2 on every item
    df = pd.concat([df, tpl], ignore_index=True)
    items = sorted(df["item_id"].unique())
    replies = pd.DataFrame(
        {
            "system": "base_doga",
            "item_id": items,
            "guard": [None if k % 2 else "template" for k in range(len(items))],
        }
    )
    t = effects_table(df, profile, {"judge": PASSED}, replies).set_index("effect")
    assert t.loc["template only vs plain, complex capabilities", "ours: diff [95% CI]"].startswith(
        "+2.00"
    )
    assert t.loc["DOGA vs template only, complex capabilities", "ours: diff [95% CI]"].startswith(
        "-1.50"
    )
    model_rows = [e for e in t.index if "model-written" in e]
    assert len(model_rows) == 1
    n_model = replies["guard"].isna().sum()
    n_complex = sum(
        1
        for k, i in enumerate(items)
        if k % 2 and df.set_index("item_id").loc[i, "capability"].iloc[0] in COMPLEX_CAPABILITIES
    )
    assert 0 < int(t.loc[model_rows[0], "n items"]) == n_complex < n_model + 1
    without = effects_table(df, profile, {"judge": PASSED})
    assert not any("model-written" in e for e in without["effect"])


def test_held_out_pairs_per_metric_name_the_metrics_at_chance(tmp_path):
    from salesman_utils.report.sentences import held_out_by_metric

    csv = tmp_path / "eval_judge_pairs.csv"
    rows = [("trained", "held-out", "Coherence", False)] * 3 + [
        ("trained", "held-out", "Naturalness", True)
    ] * 3
    rows += [("trained", "dev", "Coherence", True)] * 5  # dev pairs do not count
    pd.DataFrame(rows, columns=["judge", "set", "metric", "right"]).to_csv(csv, index=False)
    (line,) = [x for x in held_out_by_metric(csv) if x]
    assert "Coherence 0/3, Naturalness 3/3" in line and line.endswith(
        "at or below chance: Coherence."
    )
    assert held_out_by_metric(tmp_path / "none.csv") == []


def test_referee_findings_sentence_counts_model_written_turns_only():
    from salesman_utils.report.findings import referee_findings_sentence

    m04 = {
        "referee_findings": {"base_doga.llm": 2, "base_doga.template": 1},
        "reply_kinds": [
            {"system": "base_doga", "kind": "llm", "replies": 74, "planned_n": 74},
            {"system": "planner_doga", "kind": "llm", "replies": 56, "planned_n": 56},
            {"system": "base_plain", "kind": "llm", "replies": 212, "planned_n": 0},
        ],
    }
    text = referee_findings_sentence(m04)
    assert "base_doga 2 finding(s) in 74 turns" in text
    assert "planner_doga no finding(s) in 56 turns" in text
    assert "base_plain" not in text  # no planned move: not a DOGA agent
    assert referee_findings_sentence({"reply_kinds": m04["reply_kinds"]}) is None
