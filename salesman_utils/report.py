"""Generate the README's findings and results blocks and the detailed results page from the saved
tables and metrics, never typed numbers.

    python -m salesman_utils.report --profile tutorial [--readme README.md] [--print]

Reads `<results>/tables/*.csv` and `<results>/metrics/*.json`. The README gets two generated blocks:
"What this run found" (`findings.findings_section`, between the findings markers) and a short
results section (key tables, between the results markers); everything else, with every caveat,
goes to the generated `docs/RESULTS.md`. A missing input becomes a line saying which notebook to
run. `update_readme(path, render_results_section(profile))` refreshes all three.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import CONFIG_DIR, REPO_ROOT, Profile, load_profile, paths, repo_relative
from .findings import findings_section, notebook_findings, pct_ci  # noqa: F401 (re-exported)
from .judge import CAPABILITIES, COMPLEX_CAPABILITIES, METRICS, rubric_markdown
from .metrics import bootstrap_ci, paired_bootstrap_diff
from .report_sentences import (  # noqa: F401 (re-exported: tests and notebooks import them here)
    ADAPT_SOURCES,
    _ci,
    _f,
    _md,
    adaptation_gap,
    held_out_by_metric,
    objective_lines,
    pushy_lines,
    reply_kinds_sentence,
    sft_label,
    supervision_section,
    training_section,
)

START, END = "<!-- results:start -->", "<!-- results:end -->"
FINDINGS_START, FINDINGS_END = "<!-- findings:start -->", "<!-- findings:end -->"
DETAILS = Path("docs") / "RESULTS.md"  # generated, beside the README
NOT_EVIDENCE = "judge failed validation: not evidence"
SYSTEMS = [
    "base_plain",
    "base_doga",
    "sft",
    "grpo_sim",
    "grpo_bayes",
    "sft_grpo_bayes",
    "best_grpo_doga",
]
TURN_COLUMNS = ["system", "item_id", "capability", "metric", "score"]
SOURCE = "reported by secondary summaries"
# Quoted from paper-notes.md ("Reported by secondary summaries", not verified against the paper).
PAPER = {
    "grpo_vs_sft": "5.46 -> 6.49 overall (+18.9%)",
    "doga_complex": "up to +14.7% on complex capabilities",
    "scaling": "32B model best trade-off, 7.17 overall",
    "human": "88.5% prefer AI-Salesman over the baseline",
}
JUDGE_FIGURES = ("eval_radar", "eval_heatmap", "eval_bars_ci")  # drawn from the judge's scores
FIGURES = [
    ("online_conversion", "Conversion against the simulated customer (notebook 04)"),
    ("02_planner_curves", "The strategy planner's learning curves (notebook 02)"),
    ("eval_radar", "Judge score per capability and system"),
    ("eval_heatmap", "Judge score per metric and system"),
    ("eval_bars_ci", "Overall judge score with 95% bootstrap intervals"),
    ("eval_auto_metrics", "Automatic metrics with 95% bootstrap intervals"),
    ("eval_judge_validation", "The judge against the simulator's ground truth"),
]
RUN = "python -m salesman_utils.run --profile {profile} --only {nb}"
MIN_VERDICT_ITEMS = 30  # fewer paired items per system than this: no direction verdict


def _missing(path: Path, profile: Profile, nb: str) -> str:
    src = Path(profile.source) if profile.source else None
    arg = profile.name if src is None or src.parent.resolve() == CONFIG_DIR else str(src)
    return (
        f"_Not generated yet: `{repo_relative(path)}` is missing. Run notebook `{nb}` "
        f"(`{RUN.format(profile=arg, nb=nb[:2])}`)._\n"
    )


def load_turn_scores(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"item_id": str})
    missing = [c for c in TURN_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (expected {TURN_COLUMNS})")
    return df


def _system_order(names: Any) -> list[str]:
    present = list(dict.fromkeys(names))
    return [s for s in SYSTEMS if s in present] + sorted(s for s in present if s not in SYSTEMS)


def item_means(df: pd.DataFrame, system: str, capabilities: Any = None) -> pd.Series:
    """Mean judge score per item over the metrics (NaN scores = parse failures left out)."""
    sel = df[df["system"] == system]
    if capabilities is not None:
        sel = sel[sel["capability"].isin(list(capabilities))]
    return sel.groupby("item_id")["score"].mean()


def effect(
    df: pd.DataFrame,
    new: str,
    old: str,
    capabilities: Any = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Paired effect of system `new` over `old` on shared items: means, diff, relative, with CIs."""
    a, b = item_means(df, new, capabilities), item_means(df, old, capabilities)
    shared = a.index.intersection(b.index)
    av, bv = a[shared].to_numpy(), b[shared].to_numpy()
    d = paired_bootstrap_diff(av, bv, n=n_boot, seed=seed)
    r = paired_bootstrap_diff(av, bv, n=n_boot, seed=seed, relative=True)
    return {
        "n": len(shared),
        "old": float(np.nanmean(bv)) if len(bv) else math.nan,
        "new": float(np.nanmean(av)) if len(av) else math.nan,
        "diff": d[0],
        "diff_lo": d[1],
        "diff_hi": d[2],
        "rel": r[0],
        "rel_lo": r[1],
        "rel_hi": r[2],
    }


def tables_judge(metrics_05: dict[str, Any]) -> dict[str, Any]:
    """Which judge produced the score tables and whether it passed its validation (notebook 05's
    ``judge`` record; an old record without ``passed`` counts as not validated)."""
    j = metrics_05.get("judge") if isinstance(metrics_05.get("judge"), dict) else {}
    return {
        "kind": str(j.get("kind", "unknown")),
        "name": str(j.get("name") or j.get("kind") or "unknown"),
        "passed": j.get("passed") is True,
        "verdict": str(j.get("verdict") or ""),
    }


def verdict_cell(e: dict[str, float], judge: dict[str, Any]) -> str:
    """The "direction vs paper" cell: a direction only from a judge that passed its validation
    and with at least `MIN_VERDICT_ITEMS` items per system; otherwise why not."""
    if not judge.get("passed"):
        return f"no verdict: the {judge.get('name', 'unknown')} judge did not pass its validation"
    if e["n"] < MIN_VERDICT_ITEMS:
        return f"no verdict: {e['n']} items per system (needs >= {MIN_VERDICT_ITEMS})"
    return _direction(e)


def item_level(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (system, item): the mean of its metric scores. An item's seven scores are not
    independent samples, so every interval over items resamples these rows."""
    return df.groupby(["system", "item_id", "capability"], as_index=False, sort=False)[
        "score"
    ].mean()


def _direction(e: dict[str, float]) -> str:
    if not math.isfinite(e["diff"]):
        return "not measurable"
    same = e["diff"] > 0  # every reported effect is an improvement
    sure = math.isfinite(e["diff_lo"]) and (e["diff_lo"] > 0 or e["diff_hi"] < 0)
    return (
        ("same" if same else "opposite")
        + " direction"
        + ("; CI excludes 0" if sure else "; CI includes 0 (inconclusive)")
    )


def _read_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


def effects_table(
    df: pd.DataFrame,
    profile: Profile,
    metrics_05: dict[str, Any],
    replies: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Our effects beside the paper's, and beside each DOGA effect its trivial baselines: the
    model-free `template_only` against plain, DOGA against `template_only` (what the model inside
    DOGA adds), and, from `replies` (`eval_replies.csv`, whose `guard` column marks the guard's
    template), DOGA vs plain on the items where DOGA's reply is model-written. Rows whose systems
    are absent are skipped."""
    nb, seed = profile.eval.n_bootstrap, profile.seed
    specs: list[tuple[str, str, str, str, Any]] = [
        ("GRPO w/o SFT vs SFT (overall)", PAPER["grpo_vs_sft"], "grpo_bayes", "sft", None),
        (
            "DOGA vs plain, complex capabilities",
            PAPER["doga_complex"],
            "base_doga",
            "base_plain",
            COMPLEX_CAPABILITIES,
        ),
    ]
    specs += [
        (
            f"DOGA vs plain, {c.replace('_', ' ')}",
            PAPER["doga_complex"],
            "base_doga",
            "base_plain",
            [c],
        )
        for c in COMPLEX_CAPABILITIES
    ]
    best = metrics_05.get("best_grpo")
    if isinstance(best, str):
        specs.append(
            (
                "best GRPO + DOGA vs best GRPO, complex capabilities",
                PAPER["doga_complex"],
                "best_grpo_doga",
                best,
                COMPLEX_CAPABILITIES,
            )
        )
    baseline = "(ours only: trivial baseline)"
    specs += [
        (
            "template only vs plain, complex capabilities",
            baseline,
            "template_only",
            "base_plain",
            COMPLEX_CAPABILITIES,
        ),
        (
            "DOGA vs template only, complex capabilities",
            baseline,
            "base_doga",
            "template_only",
            COMPLEX_CAPABILITIES,
        ),
    ]
    model_items: set[str] = set()
    if replies is not None and {"system", "item_id", "guard"} <= set(replies.columns):
        doga = replies[replies["system"] == "base_doga"]
        model_items = set(doga.loc[doga["guard"].isna(), "item_id"].astype(str))
        specs.append(
            (
                "DOGA vs plain, complex capabilities, items where DOGA's reply is model-written",
                PAPER["doga_complex"],
                "base_doga",
                "base_plain",
                COMPLEX_CAPABILITIES,
            )
        )
    systems = set(df["system"])
    judge = tables_judge(metrics_05)
    rows = []
    for label, paper, new, old, caps in specs:
        if new not in systems or old not in systems:
            continue
        sel = df[df["item_id"].astype(str).isin(model_items)] if "model-written" in label else df
        e = effect(sel, new, old, caps, n_boot=nb, seed=seed)
        rows.append(
            {
                "effect": label,
                f"paper ({SOURCE})": paper,
                "ours: systems": f"{old} -> {new}",
                "ours: means": f"{_f(e['old'])} -> {_f(e['new'])}",
                "ours: diff [95% CI]": _ci(e["diff"], e["diff_lo"], e["diff_hi"], signed=True),
                "ours: relative [95% CI]": _ci(e["rel"], e["rel_lo"], e["rel_hi"], pct=True),
                "n items": str(e["n"]),
                "direction vs paper": verdict_cell(e, judge),
            }
        )
    for label, paper, why in (
        ("Scaling with model size", PAPER["scaling"], "not measured: one model size per profile"),
        (
            "Human preference",
            PAPER["human"],
            "not measured: the human-evaluation kit is provided, no ratings collected",
        ),
    ):
        rows.append({"effect": label, f"paper ({SOURCE})": paper, "ours: systems": why})
    return pd.DataFrame(rows).fillna("")


def scores_tables(df: pd.DataFrame, n_boot: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(system x [overall, six capabilities], system x seven metrics); overall has a CI over
    items (metrics averaged per item first, so an item counts once)."""
    by_cap, by_metric = [], []
    for s in _system_order(df["system"]):
        sel = df[df["system"] == s]
        point, lo, hi = bootstrap_ci(item_means(df, s).to_numpy(), n=n_boot, seed=seed)
        cap = sel.groupby("capability")["score"].mean()
        met = sel.groupby("metric")["score"].mean()
        by_cap.append(
            {
                "system": s,
                "overall [95% CI]": _ci(point, lo, hi),
                "n items": sel["item_id"].nunique(),
                **{c.replace("_", " "): _f(cap.get(c, math.nan)) for c in CAPABILITIES},
            }
        )
        by_metric.append(
            {"system": s, **{m.replace("_", " "): _f(met.get(m, math.nan)) for m in METRICS}}
        )
    return pd.DataFrame(by_cap), pd.DataFrame(by_metric)


def auto_metrics_table(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    need = ["system", "metric", "mean", "lo", "hi"]
    if [c for c in need if c not in df.columns]:
        raise ValueError(f"{path}: expected columns {need}, got {list(df.columns)}")
    df["cell"] = [
        _ci(m, lo, hi, nd=3) for m, lo, hi in zip(df["mean"], df["lo"], df["hi"], strict=True)
    ]
    wide = df.pivot(index="system", columns="metric", values="cell")
    return wide.reindex(_system_order(wide.index)).reset_index().rename_axis(None, axis=1)


def conversion_table(path: Path, percent: bool = True) -> pd.DataFrame:
    """Calls, conversions and the rate with its Wilson interval per system (`percent`: as the
    findings write rates, '50% [35%, 65%]')."""
    df = pd.read_csv(path)
    need = ["system", "n", "conversions", "rate", "lo", "hi"]
    if [c for c in need if c not in df.columns]:
        raise ValueError(f"{path}: expected columns {need}, got {list(df.columns)}")
    return pd.DataFrame(
        {
            "system": df["system"],
            "calls": df["n"],
            "conversions": df["conversions"],
            "rate [95% Wilson CI]": [
                pct_ci(r, lo, hi) if percent else _ci(r, lo, hi)
                for r, lo, hi in zip(df["rate"], df["lo"], df["hi"], strict=True)
            ],
        }
    )


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[f"{prefix}{k}"] = v
    return out


def _cell(v: dict[str, Any], k: str) -> str:
    vals = (v.get(k), v.get(f"{k}_lo"), v.get(f"{k}_hi"))
    return _ci(*(float(x) if isinstance(x, (int, float)) else math.nan for x in vals))


def validation_table(validation: dict[str, Any]) -> pd.DataFrame:
    """One row per judge: each check with its interval and n, and whether it passed."""
    rows = []
    for name, v in validation.items():
        if not isinstance(v, dict):
            continue
        if "pairs" not in v:  # an older record: print its keys as they are
            rows += [{"judge": name, "check": k, "value": _f(x, 3)} for k, x in _flat(v).items()]
            continue

        rows.append(
            {
                "judge": name,
                "hand-written pairs right [95% CI]": f"{_cell(v, 'pairs')} (n={v.get('pairs_n')})",
                "dev pairs (not a test) [95% CI]": (
                    f"{_cell(v, 'dev_pairs')} (n={v.get('dev_pairs_n')})"
                    if v.get("dev_pairs_n")
                    else "-"
                ),
                "Faithfulness AUC [95% CI]": f"{_cell(v, 'faithfulness_auc')} "
                f"(n={v.get('faithfulness_n')})",
                "expert preferred [95% CI]": f"{_cell(v, 'expert_preferred')} "
                f"(decisive={v.get('expert_decisive_pairs')})",
                "same-bank control: expert preferred [95% CI]": (
                    f"{_cell(v, 'same_bank_expert_preferred')} "
                    f"(decisive={v.get('same_bank_decisive_pairs')})"
                    if v.get("same_bank_decisive_pairs")
                    else "not run"
                ),
                "order flips": "n/a (pointwise)" if v.get("pointwise") else _f(v.get("flip_rate")),
                "passed": "yes" if v.get("passed") else "no",
            }
        )
    return pd.DataFrame(rows)


def run_summary(manifest_path: Path, profile: Profile) -> list[str]:
    """Markdown lines: wall time per notebook from the run manifest, the total against the
    profile's `budget_minutes`; nothing when the manifest is absent or from another profile."""
    if not manifest_path.exists():
        return []
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("profile") != profile.name or not manifest.get("notebooks"):
        return []
    rows = pd.DataFrame(
        [
            {
                "notebook": e["notebook"],
                "status": e.get("status", ""),
                "commit": str(e.get("commit") or "")[:7],
                "minutes": _f(float(e.get("wall_s") or 0) / 60, 1),
            }
            for e in manifest["notebooks"]
        ]
    )
    total = sum(float(e.get("wall_s") or 0) for e in manifest["notebooks"]) / 60
    commits = {str(e.get("commit") or "") for e in manifest["notebooks"]}
    line = f"Total {total:.1f} min"
    if len(commits) > 1:  # an --only re-run merged into an earlier run's manifest
        line = (
            f"Sum {total:.1f} min over notebooks run at {len(commits)} different commits (some "
            "re-run alone with `--only`, warm): not one run's time, so no budget verdict"
        )
    elif profile.budget_minutes:
        verdict = "within" if total <= profile.budget_minutes else "OVER"
        line += f", {verdict} the {profile.budget_minutes:g}-min budget of this profile"
    dirty = (
        " (uncommitted changes)"
        if manifest.get("git", {}).get("dirty")
        or any((e.get("git") or {}).get("dirty") or e.get("dirty") for e in manifest["notebooks"])
        else ""
    )
    return [
        "### This run\n",
        _md(rows),
        "",
        f"{line}; started {manifest.get('started', '?')}{dirty}, "
        f"`{repo_relative(manifest_path)}` has the package versions and seeds.\n",
    ]


def render_details(profile: Profile | str) -> str:
    """`docs/RESULTS.md`: every results table and sentence with its caveats (Markdown) for
    `profile`; the judge's tables and figures are marked when that judge failed validation."""
    prof = load_profile(profile) if isinstance(profile, str) else profile
    p = paths(prof, create=False)
    turn, auto = p.tables / "eval_turn_scores.csv", p.tables / "eval_auto_metrics.csv"
    conv, m05 = p.tables / "online_conversion.csv", p.metrics / "05_judged_evaluation.json"
    metrics_05 = json.loads(m05.read_text()) if m05.exists() else {}
    out = [
        f"# Results in detail (profile `{prof.name}`, seed {prof.seed})\n",
        f"_Generated by `python -m salesman_utils.report --profile {prof.name}` from "
        f"`{repo_relative(p.tables)}/*.csv` and `{repo_relative(p.metrics)}/*.json`; do not edit by hand. "
        "Intervals are 95% bootstrap (judge scores, automatic metrics) or Wilson (rates). The "
        "README has the short version; [VALIDATION.md](VALIDATION.md) says what each instrument "
        "can and cannot show._\n",
        *supervision_section(p.tables),
        *training_section(p.tables),
        *planner_tables(_metrics(p, "02_bayesian_grpo_training")),
    ]
    judge = tables_judge(metrics_05)
    mark = "" if judge["passed"] else f" ({NOT_EVIDENCE})"
    out.append(f"### Our effects beside the paper's{mark}\n")
    status = "passed" if judge["passed"] else "did NOT pass"
    if turn.exists():
        df = load_turn_scores(turn)
        out += [
            f"_Every judge score below comes from the **{judge['name']}** judge "
            f"(`eval.judge_kind: {judge['kind']}`), which {status} its validation "
            '(section "Judge validation" below)._\n',
            _md(effects_table(df, prof, metrics_05, _read_csv(p.tables / "eval_replies.csv"))),
            "",
            "Differences are paired by held-out item (mean of the seven metrics per item; "
            "intervals resample items). A direction is given only when the judge passed its "
            f"validation and every system has >= {MIN_VERDICT_ITEMS} items. The paper's numbers "
            "come from GPT-4 judging 7B-32B models, ours from the judge named above, so compare "
            "directions, not sizes. Read each DOGA row beside the trivial-baseline rows: "
            "`template_only` vs plain is what the filled template alone adds, DOGA vs "
            "`template_only` what the model inside DOGA adds on top of its own templates, and the "
            "model-written row restricts DOGA vs plain to the items where the guard kept the "
            "model's reply (the other items' DOGA reply IS the template). "
            "Read effects from measures that do not depend on the "
            "system being scored: a judge that passed validation (the trained judge learns from "
            "the same training split as the systems, and its move reader is the same kind of model "
            "as DOGA's guard tagger, so its Strategic_Fit is not independent for DOGA), the online conversion against the simulated customer, and the "
            "referee's checks; `violations_per_100` uses the fact checker DOGA's guard also "
            "uses, so it is not independent for the DOGA systems. `template_only`'s text is the "
            "medoid of training-split rep turns, in the trained judge's own training distribution, "
            "so its judge scores are partly in-distribution.\n",
        ]
        by_cap, by_metric = scores_tables(df, prof.eval.n_bootstrap, prof.seed)
        out += [
            f"### Judge scores per capability (1-10){mark}\n",
            _md(by_cap),
            "",
            f"### Judge scores per metric (1-10){mark}\n",
            _md(by_metric),
            "",
        ]
    else:
        out.append(_missing(turn, prof, "05_judged_evaluation"))
    out.append("### Automatic metrics\n")
    out.append(
        _md(auto_metrics_table(auto)) + "\n"
        if auto.exists()
        else _missing(auto, prof, "05_judged_evaluation")
    )
    if auto.exists():
        out.append(
            "_Which instrument measured what: `sim_expert` compares with the hidden expert reply, "
            "written from the held-out rep bank that no system copies from; `referee_violations_per_100` "
            "and `degenerate_per_100` are the referee's own checkers, which no system calls. But "
            "`template_only`'s and the DOGA template turns' near-zero referee violations hold largely by "
            "construction (the library keeps only templates that pass a fact check), "
            "and `violations_per_100` is the guard's own checker (0 for DOGA by construction). "
            "`degenerate_per_100` is separate code, but not blind to training: the GRPO variants "
            "were rewarded by R_format (`rewards.format_problems`) for avoiding many of the forms it "
            "counts (labels, markup, meta text, echoes, merchant lines), and DOGA's `clean_reply` strips "
            "markup, speaker labels and merchant lines before the reply is scored; `base_plain` is "
            "the untreated baseline._\n"
        )
    out.append("### Online conversion against the simulated customer\n")
    out.append(
        _md(conversion_table(conv)) + "\n"
        if conv.exists()
        else _missing(conv, prof, "04_doga_inference")
    )
    if conv.exists():
        m04 = p.metrics / "04_doga_inference.json"
        metrics_04 = json.loads(m04.read_text()) if m04.exists() else {}
        gap = adaptation_gap(metrics_04)
        if metrics_04.get("detectable_difference"):
            out.append(
                f"{metrics_04['detectable_difference']} Read each pair of rows against that size "
                "(e.g. the model-free `template_only` against the DOGA rows). The template rows' "
                "zero referee violations hold by construction (the library drops templates the fact "
                "check flags), and DOGA's `guard_flagged_per_100` in the csv is read after the guard's "
                "replacement, so it is 0 by construction too.\n"
            )
        out.append(
            "_The simulated customer reads whether a reply is adapted to the merchant "
            "(`referee.perception`) with a reader fitted on the referee's own paraphrases of the "
            "metric labels and pain phrases, not on the words DOGA's templates fill in. "
            f"{gap} A Product_Introduction that quotes any figure of the merchant's dashboard is "
            "heard as adapted (the simulator's rule, which DOGA's own `uses_merchant_data` mirrors), so "
            "a template with a dashboard slot is adapted by construction on that move. "
            f"{reply_kinds_sentence(p.tables / 'online_reply_kinds.csv', metrics_04)} Read "
            "DOGA beside the model-free `template_only` and `script_template` rows._\n"
        )
    validation = metrics_05.get("judge_validation")
    if isinstance(validation, dict) and validation:
        out += [
            "### Judge validation\n",
            "Every judge gets the same checks (notebook 05): the hand-written pairs of "
            "`data/judge_pairs_holdout2.yaml` (written sealed from the judge's developer and read only "
            "after the trained judge was frozen; products the corpus never uses; no judge trains on "
            "them; beside them the development pairs `data/judge_pairs.yaml` and "
            "`data/judge_pairs_holdout.yaml`, which the trained judge was revised with in view, so "
            "they are no test), "
            "the Faithfulness AUC against planted violations, expert vs novice preference (expert "
            "replies from the held-out bank's half the trained judge never learns from; beside it "
            "a same-bank control, which must clear the same threshold) and order flips (n/a for a pointwise judge: two "
            "fixed scores cannot flip, so the pass rule does not count it).\n",
            _md(validation_table(validation)),
            "",
        ]
        verdicts = metrics_05.get("judge_verdicts")
        if isinstance(verdicts, dict):
            out += [f"- {v}" for v in verdicts.values() if isinstance(v, str)] + [""]
        out += held_out_by_metric(p.tables / "eval_judge_pairs.csv")
    out += run_summary(p.results / "run_manifest.json", prof)
    figs = [(n, t) for n, t in FIGURES if (p.figures / f"{n}.png").exists()]
    if figs:
        out.append("### Figures\n")
        out += [
            f"![{t}{mark if n in JUDGE_FIGURES else ''}]({_from_docs(p.figures / f'{n}.png')})\n"
            for n, t in figs
        ]
    out += rubric_details()
    return "\n".join(out).rstrip() + "\n"


def rubric_details() -> list[str]:
    """The judge's rubric as a folded block (README and docs/RESULTS.md)."""
    return [
        "### Judge rubric (`salesman_utils.judge`)\n",
        "<details><summary>Six capabilities and seven metrics, each scored 1-10 with anchors"
        "</summary>\n",
        rubric_markdown(),
        "</details>",
    ]


def _from_docs(path: Path) -> str:
    rel = repo_relative(path)
    return rel if Path(rel).is_absolute() else f"../{rel}"


def _metrics(p: Any, name: str) -> dict[str, Any]:
    path = p.metrics / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


REFEREE_COLUMNS = ["sim_expert", "referee_violations_per_100", "degenerate_per_100"]


def referee_table(path: Path) -> pd.DataFrame:
    """The referee's measures only (similarity to the hidden expert reply, the referee's own fact
    check and degenerate-reply count), one column each, with their bootstrap intervals."""
    df = pd.read_csv(path)
    df = df[df["metric"].isin(REFEREE_COLUMNS)].copy()
    df["cell"] = [
        _ci(r.mean, r.lo, r.hi, nd=1 if r.metric.endswith("_per_100") else 3)
        for r in df.itertuples()
    ]
    wide = df.pivot(index="system", columns="metric", values="cell")
    wide = wide.reindex(_system_order(wide.index)).reset_index().rename_axis(None, axis=1)
    return wide[["system", *[c for c in REFEREE_COLUMNS if c in wide.columns]]]


def planner_tables(m02: dict[str, Any]) -> list[str]:
    """Notebook 02's strategy planner: references and each reward arm x start on the test calls."""
    pl = m02.get("planner")
    if not isinstance(pl, dict) or not pl.get("finals"):
        return []
    rows = [
        {
            "policy": f"reference: {r['policy']}",
            "seeds": "-",
            "calls": r["n"],
            "conversion [95% CI]": pct_ci(r["conversion"], r["lo"], r["hi"]),
            "expert-move agreement": _f(r.get("expert_agreement")),
        }
        for r in pl.get("references") or []
        if r.get("split") == "test"
    ]
    rows += [
        {
            "policy": f"GRPO, {r['arm']} reward, from {r['start']}"
            + (" (upper reference)" if r["arm"] == "oracle" else ""),
            "seeds": r["seeds"],
            "calls": r["n"],
            "conversion [95% CI]": pct_ci(r["test_conversion"], r["lo"], r["hi"]),
            "expert-move agreement": _f(r.get("test_agreement")),
        }
        for r in pl["finals"]
    ]
    paired = [
        f"{r['comparison']} ({r['start']}) {100 * r['difference']:+.1f} points "
        f"[{100 * r['lo']:+.1f}, {100 * r['hi']:+.1f}]"
        for r in pl.get("paired") or []
    ]
    return [
        "### The strategy planner on held-out simulated calls (notebook 02)\n",
        _md(pd.DataFrame(rows)),
        "",
        "References: one policy on the test calls, Wilson 95%. GRPO rows: every seed plays the "
        "same test calls; conversion averaged over the seeds, crossed bootstrap 95% over seeds and "
        "calls.\n",
        (
            "Paired differences on the same test calls (crossed bootstrap 95%): "
            + "; ".join(paired)
            + ".\n"
        )
        if paired
        else "",
    ]


def render_results_section(profile: Profile | str) -> str:
    """The README's short results section (Markdown, without the markers) for `profile`: online
    conversion and the referee's measures first, the planner, the posterior and GRPO, then the
    judge under its validation. The returned string carries the findings block and the details
    page (`.findings`, `.details`) for `update_readme`."""
    prof = load_profile(profile) if isinstance(profile, str) else profile
    p = paths(prof, create=False)
    turn, auto = p.tables / "eval_turn_scores.csv", p.tables / "eval_auto_metrics.csv"
    conv = p.tables / "online_conversion.csv"
    m02, m04, m05 = (
        _metrics(p, n)
        for n in ("02_bayesian_grpo_training", "04_doga_inference", "05_judged_evaluation")
    )
    judge = tables_judge(m05)
    out = [
        f"## Results (profile `{prof.name}`, seed {prof.seed})\n",
        f"_Generated by `python -m salesman_utils.report --profile {prof.name}` from "
        f"`{repo_relative(p.results)}/`; do not edit by hand. Intervals are Wilson (rates) or "
        "bootstrap 95%. Every table with its caveats: [docs/RESULTS.md](docs/RESULTS.md); what "
        "each instrument can and cannot show: [docs/VALIDATION.md](docs/VALIDATION.md)._\n",
        "### Online conversion against the simulated customer (notebook 04)\n",
    ]
    if conv.exists():
        out.append(_md(conversion_table(conv)) + "\n")
        if m04.get("detectable_difference"):
            out.append(str(m04["detectable_difference"]) + "\n")
    else:
        out.append(_missing(conv, prof, "04_doga_inference"))
    out.append("### The referee's measures on held-out contexts (notebook 05)\n")
    if auto.exists():
        out += [
            _md(referee_table(auto)),
            "",
            "`sim_expert` is the similarity to the hidden expert reply, written from a held-out "
            "bank that no system copies; the two counts per 100 replies are the referee's own "
            "checkers, which no system calls (the template rows' zero violations hold by "
            "construction).\n",
        ]
    else:
        out.append(_missing(auto, prof, "05_judged_evaluation"))
    out += planner_tables(m02)
    sup = [x for x in supervision_section(p.tables, audit_table=False) if not x.startswith("###")]
    if sup:
        out += ["### Bayesian supervision (notebook 02)\n", *sup]
    grpo = objective_lines(p.tables / "02_reward_vs_base.csv")
    if grpo:
        out += ["### Token-level GRPO (notebook 02)\n", *grpo]
    out.append("### The judge and its validation (notebook 05)\n")
    validation = m05.get("judge_validation")
    if isinstance(validation, dict) and validation:
        out += [_md(validation_table(validation)), ""]
        verdicts = m05.get("judge_verdicts")
        if isinstance(verdicts, dict):
            out += [f"- {v}" for v in verdicts.values() if isinstance(v, str)] + [""]
    if turn.exists():
        mark = "" if judge["passed"] else f" ({NOT_EVIDENCE})"
        by_cap, _ = scores_tables(load_turn_scores(turn), prof.eval.n_bootstrap, prof.seed)
        out += [f"#### Scores of the {judge['name']} judge, 1-10{mark}\n", _md(by_cap), ""]
        if judge["passed"]:
            out.append(
                "Our effects beside the paper's, with a direction where the evidence allows: "
                "[docs/RESULTS.md](docs/RESULTS.md).\n"
            )
        else:
            out.append(
                "These scores are shown so that the failure can be seen, not read as results; the "
                "table of our effects beside the paper's (docs/RESULTS.md) gives no direction "
                "while the judge fails.\n"
            )
    else:
        out.append(_missing(turn, prof, "05_judged_evaluation"))
    total = [
        line
        for line in run_summary(p.results / "run_manifest.json", prof)
        if line.startswith("Total")
    ]
    if total:
        out += ["### This run\n", total[0].replace(", `", ". `", 1)]
    out += rubric_details()
    section = Rendered("\n".join(out).rstrip() + "\n")
    section.findings = findings_section(prof)
    section.details = render_details(prof)
    return section


class Rendered(str):
    """A README results block that carries the findings block and the details page with it."""

    findings: str | None = None
    details: str | None = None


def _replace_block(text: str, start: str, end: str, body: str, path: Path) -> str | None:
    """`text` with the block between `start` and `end` replaced (None when the markers are
    absent); a lone or misordered marker is an error."""
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text and text.index(start) < text.index(end):
        return text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    if start in text or end in text:
        raise ValueError(f"{path}: has only one of {start} / {end}, or them in the wrong order")
    return None


def update_readme(
    readme_path: str | Path,
    section: str,
    findings: str | None = None,
    details: str | None = None,
) -> bool:
    """Replace the results block (appended with its markers if absent) and, when given or carried
    by `section`, the findings block (only where its markers are) and the details page
    (`docs/RESULTS.md` beside the README). Returns whether any file changed."""
    path = Path(readme_path)
    findings = findings if findings is not None else getattr(section, "findings", None)
    details = details if details is not None else getattr(section, "details", None)
    text = path.read_text() if path.exists() else ""
    new = _replace_block(text, START, END, str(section), path)
    if new is None:
        new = (
            text.rstrip()
            + ("\n\n" if text.strip() else "")
            + f"{START}\n{str(section).rstrip()}\n{END}\n"
        )
    if findings is not None:
        new = _replace_block(new, FINDINGS_START, FINDINGS_END, findings, path) or new
    changed = new != text
    if changed:
        path.write_text(new)
    if details is not None:
        doc = path.parent / DETAILS
        if not doc.exists() or doc.read_text() != details:
            doc.parent.mkdir(parents=True, exist_ok=True)
            doc.write_text(details)
            changed = True
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tutorial")
    parser.add_argument("--readme", default=str(REPO_ROOT / "README.md"))
    parser.add_argument("--print", action="store_true", help="print the blocks, write nothing")
    args = parser.parse_args(argv)
    section = render_results_section(args.profile)
    if args.print:
        print(section.findings)
        print(section)
        return 0
    changed = update_readme(args.readme, section)
    print(f"{args.readme}: findings, results and {DETAILS} {'updated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
