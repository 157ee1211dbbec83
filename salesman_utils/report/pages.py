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
from pathlib import Path
from typing import Any

import pandas as pd

from salesman_utils.config import REPO_ROOT, Profile, load_profile, paths, repo_relative
from salesman_utils.judge.llm_judge import (
    rubric_markdown,
)
from salesman_utils.report.findings import findings_section, notebook_findings, pct_ci  # noqa: F401 (re-exported)
from salesman_utils.report.sentences import (
    _f,
    _md,
    adaptation_gap,
    held_out_by_metric,
    objective_lines,
    reply_kinds_sentence,
    supervision_section,
    training_section,
)
from salesman_utils.report.tables import (
    MIN_VERDICT_ITEMS,
    NOT_EVIDENCE,
    auto_metrics_table,
    conversion_table,
    effects_table,
    load_turn_scores,
    missing_line,
    planner_tables,
    read_csv,
    referee_table,
    scores_tables,
    tables_judge,
    validation_table,
)

START, END = "<!-- results:start -->", "<!-- results:end -->"
FINDINGS_START, FINDINGS_END = "<!-- findings:start -->", "<!-- findings:end -->"
DETAILS = Path("docs") / "RESULTS.md"  # generated, beside the README
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
            _md(effects_table(df, prof, metrics_05, read_csv(p.tables / "eval_replies.csv"))),
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
        out.append(missing_line(turn, prof, "05_judged_evaluation"))
    out.append("### Automatic metrics\n")
    out.append(
        _md(auto_metrics_table(auto)) + "\n"
        if auto.exists()
        else missing_line(auto, prof, "05_judged_evaluation")
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
        else missing_line(conv, prof, "04_doga_inference")
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
        "### Judge rubric (`salesman_utils.judge.rubric`)\n",
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
        out.append(missing_line(conv, prof, "04_doga_inference"))
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
        out.append(missing_line(auto, prof, "05_judged_evaluation"))
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
        out.append(missing_line(turn, prof, "05_judged_evaluation"))
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
