"""What a run found, in plain sentences generated from its saved metrics and tables, never typed.

`readme_findings(profile)` gives the README's "What this run found" (one sentence per finding,
each with its number, its interval and the instrument that measured it); `notebook_findings(profile,
"04_doga_inference")` gives the "What this run shows" paragraph that ends each notebook, read from
that notebook's own `results/metrics/NN_name.json`. A missing input drops its sentence, never
invents one.

One module although long: one short function per generated sentence, all reading the same saved
metrics with the same number formats, so a finding and its notebook sentence cannot drift apart.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from salesman_utils.config import Profile, load_profile, paths, repo_relative

NOTEBOOKS = (
    "01_corpus_construction",
    "02_bayesian_grpo_training",
    "03_script_library",
    "04_doga_inference",
    "05_judged_evaluation",
)
RUN = "python -m salesman_utils.run --profile {profile} --only {nb}"
HEADLINE_FIGURES = (
    (
        "02_planner_curves",
        "The strategy planner's learning curves (notebook 02): held-out "
        "conversion per reward arm beside the random, script, imitation and expert references",
    ),
    ("online_conversion", "Conversion against the simulated customer (notebook 04)"),
)
# each GRPO variant's own training objective (training.OBJECTIVE_COLUMN)
OBJECTIVE = {
    "grpo_sim": "r_total_sim",
    "grpo_bayes": "r_total_bayes",
    "sft_grpo_bayes": "r_total_bayes",
}
ARM_NAMES = {
    "bayes": "the Bayesian turn reward",
    "outcome": "the call-outcome reward",
    "oracle": "the hidden turn quality (an upper reference)",
}


# --- formatting: one rounding per kind of number, shared by every sentence --------------------


def _ok(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def pct_ci(x: float, lo: Any, hi: Any) -> str:
    """'50% [35%, 65%]' (the interval left out when it is missing)."""
    return pct(x) + (f" [{pct(lo)}, {pct(hi)}]" if _ok(lo) and _ok(hi) else "")


def num_ci(x: float, lo: Any, hi: Any, nd: int = 3, signed: bool = False) -> str:
    fmt = f"{{:{'+' if signed else ''}.{nd}f}}"
    body = fmt.format(x)
    return body + (f" [{fmt.format(lo)}, {fmt.format(hi)}]" if _ok(lo) and _ok(hi) else "")


def points_ci(d: float, lo: Any, hi: Any) -> str:
    """A difference of two rates in percentage points: '+3.3 points [-1.0, +7.7]'."""
    body = f"{100 * d:+.1f} points"
    return body + (f" [{100 * lo:+.1f}, {100 * hi:+.1f}]" if _ok(lo) and _ok(hi) else "")


def reading(lo: Any, hi: Any) -> str:
    if _ok(lo) and lo > 0:
        return "higher"
    if _ok(hi) and hi < 0:
        return "lower"
    return "no difference shown"


def _wilson(k: int, n: int) -> tuple[float, float, float]:
    from salesman_utils.stats import wilson_ci

    return wilson_ci(int(k), int(n))


# --- inputs --------------------------------------------------------------------------------


def _profile(profile: Profile | str) -> Profile:
    return load_profile(profile) if isinstance(profile, str) else profile


def notebook_name(notebook: str) -> str:
    """'04' or '04_doga_inference' -> '04_doga_inference'."""
    for nb in NOTEBOOKS:
        if notebook in (nb, nb[:2]):
            return nb
    raise ValueError(f"unknown notebook {notebook!r}; one of {', '.join(NOTEBOOKS)}")


def load_metrics(profile: Profile | str, notebook: str) -> dict[str, Any]:
    """A notebook's saved metrics (`{}` when it has not run)."""
    path = paths(_profile(profile), create=False).metrics / f"{notebook_name(notebook)}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _run_cmd(prof: Profile, nb: str) -> str:
    from salesman_utils.config import CONFIG_DIR

    src = Path(prof.source) if prof.source else None
    arg = prof.name if src is None or src.parent.resolve() == CONFIG_DIR else str(src)
    return RUN.format(profile=arg, nb=nb[:2])


# --- one sentence per finding ---------------------------------------------------------------


def planner_sentences(m02: dict[str, Any]) -> list[str]:
    """The strategy planner (notebook 02's `planner` record): the Bayesian turn reward against the
    call-outcome reward from each start (paired on the same test calls; the deployed start first),
    then the run picked on validation against the references, the bar, and what GRPO adds to its
    untrained start."""
    pl = m02.get("planner")
    if not isinstance(pl, dict):
        return []
    settings, target = pl.get("settings") or {}, pl.get("target") or {}
    finals = {(r.get("arm"), r.get("start")): r for r in pl.get("finals") or []}
    refs = {r.get("policy"): r for r in pl.get("references") or [] if r.get("split") == "test"}
    paired = {(r.get("comparison"), r.get("start")): r for r in pl.get("paired") or []}
    first = settings.get("deploy_start") or target.get("best_start")
    starts = [first] + sorted({st for _, st in finals} - {first})
    out, parts = [], []
    for start in starts:
        b, o = finals.get(("bayes", start)), finals.get(("outcome", start))
        if not (b and o):
            continue
        part = (
            f"from the {start} start {pct_ci(b['test_conversion'], b['lo'], b['hi'])} with the "
            f"Bayesian turn reward against {pct_ci(o['test_conversion'], o['lo'], o['hi'])} with "
            "the call-outcome reward"
        )
        if pair := paired.get(("bayes - outcome", start)):
            part += (
                f" (paired difference {points_ci(pair['difference'], pair['lo'], pair['hi'])}, "
                f"{reading(pair['lo'], pair['hi'])})"
            )
        parts.append(part)
    if parts:
        b = finals[("bayes", first)] if ("bayes", first) in finals else next(iter(finals.values()))
        out.append(
            f"The strategy planner (GRPO over the six moves, {b['seeds']} seeds, each run on the "
            f"same {b['n']} held-out simulated calls) converted "
            + "; ".join(parts)
            + " (crossed bootstrap 95% over seeds and calls)."
        )
    script, expert = refs.get("script"), refs.get("expert (ceiling)")
    imit = refs.get("imitation planner")

    def ref_ci(name: str) -> str:
        r = refs.get(name)
        return pct_ci(r["conversion"], r["lo"], r["hi"]) if r else "(not saved)"

    # the run `planner_experiment.target_line` picked: the best non-oracle run on the VALIDATION
    # calls (its last learning-curve point), read on the test calls
    best = finals.get((target.get("best_arm"), target.get("best_start")))
    if target and script and expert and best and _ok(target.get("bar")):
        bar = target["bar"]
        if best["lo"] >= bar:
            met = "clears the bar"
        elif best["test_conversion"] >= bar:
            met = "reaches the bar, though its interval includes it"
        else:
            met = "falls short of the bar"
        s = (
            f"On the same {script['n']} test calls, the planner run with the best validation "
            f"conversion ({best['arm']} reward from {best['start']}) converted "
            f"{pct_ci(best['test_conversion'], best['lo'], best['hi'])} (crossed bootstrap 95%); "
            f"random moves {ref_ci('random')}, the by-the-book script {ref_ci('script')}, DOGA's "
            f"imitation classifier (the planner's untrained imitation start) "
            f"{ref_ci('imitation planner')} and the expert policy that sees the hidden state "
            f"{ref_ci('expert (ceiling)')} (Wilson 95%): the planner {met} of "
            f"{pct(bar)} (the script plus a third of the gap to the expert)"
        )
        gain = paired.get((f"{best['arm']} - its start", best["start"]))
        if imit and imit["conversion"] >= bar:
            s += ", but so does the untrained imitation start"
            if gain:
                s += (
                    f", and GRPO's gain over that start is "
                    f"{points_ci(gain['difference'], gain['lo'], gain['hi'])} "
                    f"({reading(gain['lo'], gain['hi'])})"
                )
        out.append(s + ".")
    return out


def _detectable(m04: dict[str, Any]) -> str | None:
    """The smallest readable difference, quoted from notebook 04's own sentence."""
    found = re.search(r"difference of ([\d.]+%)", str(m04.get("detectable_difference") or ""))
    return found.group(1) if found else None


def online_sentence(m04: dict[str, Any]) -> str | None:
    """Conversion of the model-free template agent, DOGA and the plain model (and the planner's
    agents when present), from notebook 04's `online` record."""
    on = m04.get("online")
    if not isinstance(on, dict):
        return None
    names = {
        "template_only": "the model-free template agent",
        "base_doga": "DOGA",
        "base_plain": "the plain prompted model",
        "planner_doga": "DOGA with the planner",
        "planner_template": "the planner's template agent",
        "script_template": "the by-the-book script's template agent",
    }
    shown = [
        (s, label) for s, label in names.items() if isinstance(on.get(s), dict) and on[s].get("n")
    ]
    if len(shown) < 2:
        return None
    cells = [
        f"{label} {'converted ' if k == 0 else ''}{on[s]['conversions']} of {on[s]['n']} "
        f"{'calls ' if k == 0 else ''}({pct_ci(on[s]['rate'], on[s]['lo'], on[s]['hi'])})"
        for k, (s, label) in enumerate(shown)
    ]
    dd = _detectable(m04)
    tail = f"; at this many calls only differences of about {dd} or more are readable" if dd else ""
    if "base_plain" not in on:
        tail += "; the plain prompted model was not played online (`doga.plain_online`)"
    kinds = {
        r.get("kind"): r for r in m04.get("reply_kinds") or [] if r.get("system") == "base_doga"
    }
    share = (kinds.get("template") or {}).get("share")
    if "base_doga" in dict(shown) and _ok(share):
        tail += (
            f"; {pct(share)} of DOGA's turns were its guard's fallback, the library's filled "
            "templates that the template agent says too, so DOGA's row measures mostly those"
        )
    return (
        "In whole calls against the simulated customer, "
        + ", ".join(cells[:-1])
        + f" and {cells[-1]} (Wilson 95%{tail})."
    )


def heard_sentence(m04: dict[str, Any], system: str = "base_doga") -> str | None:
    """How often the customer's perception heard the move DOGA planned: model-written vs template
    turns (`reply_kinds`, counts saved by notebook 04)."""
    rows = {r.get("kind"): r for r in m04.get("reply_kinds") or [] if r.get("system") == system}
    cells, ci = [], {}
    for kind in ("llm", "template"):
        r = rows.get(kind) or {}
        n, k = r.get("planned_n") or 0, r.get("planned_heard")
        if not n or k is None:
            return None
        _, lo, hi = _wilson(k, n)
        ci[kind] = (lo, hi)
        cells.append(f"{k} of {n} ({pct_ci(k / n, lo, hi)})")
    if ci["llm"][1] < ci["template"][0]:
        verdict = "fewer in the kept replies"
    elif ci["llm"][0] > ci["template"][1]:
        verdict = "more in the kept replies"
    else:
        verdict = "overlapping: no difference shown"
    paired = paired_heard_sentence(m04, system)
    matched = matched_heard_sentence(m04, system)
    kept, swapped = ((rows.get(k) or {}).get("replies") or 0 for k in ("llm", "template"))
    drafts = draft_heard_sentence(m04, system)
    return (
        (f"{drafts} " if drafts else "")
        + f"Online, {system}'s guard kept the model's reply in {kept} turns and said its template in "
        f"{swapped}; the customer heard the plan in {cells[0]} kept replies against {cells[1]} "
        f"templates (Wilson 95%; {verdict}), on turns the guard chose."
        + (f" {matched}" if matched else "")
        + (f" {paired}" if paired else "")
    )


def _paired_cells(r: dict[str, Any], first: str) -> tuple[str, str, str]:
    """The two rates and their paired difference of an `arena.heard` row, as the sentences say
    them: `<first>_heard_rate` and `template_heard_rate` with their intervals, `diff` in points."""
    cells = [
        pct_ci(r[f"{k}_heard_rate"], r.get(f"{k}_heard_lo"), r.get(f"{k}_heard_hi"))
        for k in (first, "template")
    ]
    return cells[0], cells[1], points_ci(r["diff"], r.get("diff_lo"), r.get("diff_hi"))


def draft_heard_sentence(m04: dict[str, Any], system: str = "base_doga") -> str | None:
    """The unselected reading (`draft_heard`, notebook 04's `arena.heard.draft_heard_table`): on every
    guarded turn, the planned move heard in the model's first draft vs in the turn's template."""
    r = (m04.get("draft_heard") or {}).get(system) or {}
    if not r.get("n"):
        return None
    draft, template, diff = _paired_cells(r, "draft")
    return (
        f"Does the small model's own wording carry the move {system} planned? On all {r['n']} of "
        "its guarded turns, before any guard choice, the simulated customer heard the planned "
        f"move in the model's first draft in {draft} and in the turn's filled template in "
        f"{template}: a paired difference of {diff} (bootstrap 95% over turns, treated as "
        f"independent; {reading(r.get('diff_lo'), r.get('diff_hi'))}). Partly by construction: the "
        "customer's ear was fitted on held-out bank lines written like the templates."
    )


def matched_heard_sentence(m04: dict[str, Any], system: str = "base_doga") -> str | None:
    """The template turns' heard rate weighted by the model-written turns' planned moves
    (`heard_matched`, notebook 04's `arena.heard.heard_by_intent_table`): like moves against like."""
    r = (m04.get("heard_matched") or {}).get(system) or {}
    if not r.get("llm_n") or r.get("template_matched_rate") != r.get("template_matched_rate"):
        return None
    return (
        f"Templates of the same moves: {r['template_matched_rate']:.0%} (kept replies "
        f"{r['llm_rate']:.0%}; a point reading)."
    )


def paired_heard_sentence(m04: dict[str, Any], system: str = "base_doga") -> str | None:
    """The paired reading on the same turns (`paired_heard`, notebook 04's
    `arena.heard.paired_heard_table`): the planned move heard in the model-written reply vs in the
    turn's fallback template, read by the same perception in the same call."""
    r = (m04.get("paired_heard") or {}).get(system) or {}
    if not r.get("n"):
        return None
    reply, template, diff = _paired_cells(r, "reply")
    if _ok(r.get("diff_lo")) and _ok(r.get("diff_hi")):
        said = (
            f"were heard in {template} against {reply} for the replies: a paired difference of "
            f"{diff} (bootstrap 95% over turns, treated as independent; "
            f"{reading(r.get('diff_lo'), r.get('diff_hi'))})"
        )
    else:  # no discordant pair: no interval (`arena.heard._paired_row`)
        said = f"were heard exactly as often as the replies, {template}"
    return (
        f"On the same {r['n']} model-written turns, the templates {said}. Partly by construction: "
        "the guard keeps a reply only when the agent's own tagger, a classifier like the "
        "customer's, reads the plan in it at least as surely as in the template, a rule written "
        "after these calls' readings."
    )


def referee_sentence(tables: Path) -> str | None:
    """The referee's own fact check on held-out contexts (`eval_auto_metrics.csv`)."""
    import pandas as pd

    path = tables / "eval_auto_metrics.csv"
    if not path.exists():
        return None
    df = pd.read_csv(path)
    sel = df[df["metric"] == "referee_violations_per_100"].set_index("system")
    names = {
        "base_plain": "the plain model",
        "grpo_bayes": "grpo_bayes",
        "base_doga": "DOGA",
        "template_only": "the template agent",
    }

    def cell(s: str, label: str) -> str:
        mean, lo, hi = sel.loc[s, "mean"], sel.loc[s, "lo"], sel.loc[s, "hi"]
        if mean == 0 and hi == 0:  # none found: a bootstrap of zeros has no width
            return f"{label} none"
        return f"{label} {num_ci(mean, lo, hi, nd=1)}"

    cells = [cell(s, label) for s, label in names.items() if s in sel.index]
    if len(cells) < 2:
        return None
    n = int(sel["n"].max()) if "n" in sel else None
    return (
        "The referee's own fact check found ungrounded facts per 100 replies on "
        + (f"{n} " if n else "")
        + "held-out contexts: "
        + ", ".join(cells)
        + " (bootstrap 95%, which gives no interval to a count of zero; DOGA's replies include "
        "its template fallbacks, and the template agent's zero holds by construction: the "
        "library keeps only templates that pass a fact check; DOGA's guard checks with rules "
        "modelled on the referee's findings, so its zero is partly by construction too)."
    )


def bayes_sentence(m02: dict[str, Any]) -> str | None:
    post, naive, gain = m02.get("auc_posterior"), m02.get("auc_naive"), m02.get("auc_gain")
    if not (post and naive and gain):
        return None
    s = (
        f"The Bayesian turn posterior ranked {m02.get('n_test_turns')} held-out rep turns by their "
        f"hidden quality with ROC-AUC {num_ci(*post)} against {num_ci(*naive)} for the naive "
        f"call-outcome label (paired gain {num_ci(*gain, signed=True)}, bootstrap 95%)"
    )
    gbm = (m02.get("auc_baselines") or {}).get("structure GBM")
    if gbm:
        s += (
            f"; a gradient-boosted model trained on the hidden labels, an upper reference, reached "
            f"{num_ci(*gbm)}"
        )
    # the same checker on both sides: say so beside the number (docs/VALIDATION.md)
    return s + (
        "; partly by construction: the posterior's evidence includes the agent's fact check, and "
        "the simulator plants its unfaithful turns so that this check flags them."
    )


def grpo_sentence(m02: dict[str, Any]) -> str | None:
    """Each token-level GRPO variant's own objective against the base model (held-out contexts)."""
    rows = [
        r
        for r in m02.get("reward_vs_base") or []
        if OBJECTIVE.get(r.get("system")) == r.get("metric")
    ]
    if not rows:
        return None
    cells = [
        f"{r['system']} {num_ci(r['diff'], r['lo'], r['hi'], signed=True)} "
        f"({'rose' if _ok(r['lo']) and r['lo'] > 0 else 'no rise shown'})"
        for r in rows
    ]
    steps = (m02.get("grpo") or {}).get("max_steps")
    return (
        f"Token-level GRPO of the small policy ({steps} steps, one seed) moved its own training "
        f"reward over the base model's on {rows[0]['n']} held-out contexts by "
        + "; ".join(cells)
        + " (paired bootstrap 95%, no multiplicity correction)."
    )


def pairs_bar(m05: dict[str, Any], name: str) -> str:
    """' (the bar is 85%)', quoted from the judge's saved verdict (empty when it has none)."""
    verdicts = m05.get("judge_verdicts") if isinstance(m05.get("judge_verdicts"), dict) else {}
    judge = m05.get("judge") if isinstance(m05.get("judge"), dict) else {}
    said = verdicts.get(name) or (judge.get("verdict") if judge.get("name") == name else "") or ""
    found = re.search(r"hand-written pairs [\d.]+% \(needs >= ([\d.]+%)\)", str(said))
    return f" (the bar is {found.group(1)})" if found else ""


def judge_sentence(m05: dict[str, Any]) -> str | None:
    val = m05.get("judge_validation")
    judge = m05.get("judge") if isinstance(m05.get("judge"), dict) else {}
    if not isinstance(val, dict) or not judge:
        return None
    name = judge.get("name") or judge.get("kind")
    v = next(
        (x for k, x in val.items() if isinstance(x, dict) and name in (k, x.get("judge"))), None
    )
    if not v or not _ok(v.get("pairs")):
        return None
    cell = f"{pct_ci(v['pairs'], v.get('pairs_lo'), v.get('pairs_hi'))} of {v.get('pairs_n')}"
    bar = pairs_bar(m05, name)
    if judge.get("passed"):
        return (
            f"The {name} judge passed its validation, ranking {cell} held-out hand-written pairs "
            f"right{bar}, so its capability and metric scores can be read."
        )
    return (
        f"The {name} judge failed its validation, ranking {cell} held-out hand-written pairs "
        f"right{bar}, so its capability and metric scores are not evidence."
    )


def readme_findings(profile: Profile | str) -> list[str]:
    """The README's findings, planner first, each one sentence generated from `results/`."""
    prof = _profile(profile)
    m02, m04, m05 = (load_metrics(prof, nb) for nb in ("02", "04", "05"))
    out = planner_sentences(m02)
    out += [
        s
        for s in (
            online_sentence(m04),
            heard_sentence(m04),
            referee_sentence(paths(prof, create=False).tables),
            bayes_sentence(m02),
            grpo_sentence(m02),
            judge_sentence(m05),
        )
        if s
    ]
    if len(out) > 8:  # the README is read in ten minutes: a ninth finding merges into another,
        # never silently replaces the last (the judge's verdict)
        raise ValueError(f"readme_findings: {len(out)} findings, at most 8")
    return out


def findings_section(profile: Profile | str) -> str:
    """Markdown for the README's "What this run found" (without its markers)."""
    prof = _profile(profile)
    p = paths(prof, create=False)
    found = readme_findings(prof)
    out = ["## What this run found\n"]
    if not found:
        out.append(
            f"_Nothing saved yet for profile `{prof.name}`: run `make reproduce` (or "
            f"`python -m salesman_utils.run --profile {prof.name}`), then "
            f"`python -m salesman_utils.report --profile {prof.name}`._\n"
        )
        return "\n".join(out)
    out.append(
        f"_Generated by `python -m salesman_utils.report --profile {prof.name}` from "
        f"`{repo_relative(p.results)}/`; every number is a saved value, rounded._\n"
    )
    out += [f"- {s}" for s in found] + [""]
    fig = next(((n, t) for n, t in HEADLINE_FIGURES if (p.figures / f"{n}.png").exists()), None)
    if fig:
        out.append(f"![{fig[1]}]({repo_relative(p.figures / f'{fig[0]}.png')})\n")
    return "\n".join(out)


# --- "What this run shows": one paragraph per notebook ----------------------------------------


def _nb01(m: dict[str, Any]) -> list[str]:
    out = []
    sp = m.get("splits") or {}
    if m.get("n_calls_kept"):
        out.append(
            f"The simulator wrote {m.get('n_calls_simulated')} calls and the quality filter kept "
            f"{m['n_calls_kept']} ({sp.get('train')} train, {sp.get('validation')} validation, "
            f"{sp.get('test')} test)."
        )
    by = m.get("conversion_by_skill") or {}
    if "novice" in by and "expert" in by:
        nv, ex = by["novice"], by["expert"]
        s = (
            f"Conversion rises with the rep's skill, from {pct_ci(nv['rate'], nv['lo'], nv['hi'])} "
            f"for novices to {pct_ci(ex['rate'], ex['lo'], ex['hi'])} for experts (Wilson 95%)"
        )
        if _ok(m.get("good_in_failed")) and _ok(m.get("bad_in_success")):
            s += (
                f", yet the labels are noisy: {pct(m['good_in_failed'])} of the rep turns in calls "
                f"that did not convert are good, and {pct(m['bad_in_success'])} of those in calls "
                "that did are bad"
            )
        out.append(s + ".")
    if _ok(m.get("outcome_label_auc")) and _ok(m.get("structure_gbm_auc")):
        out.append(
            "The visible surface does not give the hidden turn quality away (ROC-AUC on test "
            f"turns): the call outcome reaches {num_ci(m['outcome_label_auc'], m.get('outcome_label_auc_lo'), m.get('outcome_label_auc_hi'))}, "
            f"a TF-IDF text probe {num_ci(m.get('text_probe_auc_tfidf', math.nan), m.get('text_probe_auc_tfidf_lo'), m.get('text_probe_auc_tfidf_hi'))} "
            f"and a gradient-boosted model trained on the hidden labels {num_ci(m['structure_gbm_auc'], m.get('structure_gbm_auc_lo'), m.get('structure_gbm_auc_hi'))}."
        )
    if _ok(m.get("checker_recall")) and _ok(m.get("checker_precision")):
        out.append(
            "The visible fact checker is a detector, not the label: against the hidden unfaithful "
            f"turns its recall is {num_ci(m['checker_recall'], m.get('checker_recall_lo'), m.get('checker_recall_hi'))} "
            f"and its precision {num_ci(m['checker_precision'], m.get('checker_precision_lo'), m.get('checker_precision_hi'))}."
        )
    return out


def _nb02(m: dict[str, Any]) -> list[str]:
    out = [s for s in (bayes_sentence(m), grpo_sentence(m)) if s]
    vs = {(r.get("system"), r.get("metric")): r for r in m.get("grpo_vs_sft") or []}
    r = vs.get(("grpo_bayes", "sim_expert"))
    if r:
        out.append(
            "GRPO without SFT against SFT, similarity to the hidden expert reply: "
            f"{num_ci(r['diff'], r['lo'], r['hi'], signed=True)} ({reading(r['lo'], r['hi'])}, "
            f"n={r['n']})."
        )
    planner = planner_sentences(m)
    if planner:
        out += planner
    else:
        pushy = m.get("pushy") or {}
        meet = [
            s
            for s, r in pushy.items()
            if isinstance(r, dict)
            and r.get("invented") == 0
            and r.get("n_price_pushes")
            and r.get("price_answered", 0) / r["n_price_pushes"] >= 0.8
        ]
        if pushy:
            out.append(
                "On the pushy-merchant lines (a development set, replies of the policies alone), "
                + (
                    f"{', '.join(meet)} answered most price pushes without inventing a number."
                    if meet
                    else "no policy answered most price pushes without inventing a number."
                )
            )
    return out[:5]


def _nb03(m: dict[str, Any]) -> list[str]:
    out = []
    if m.get("n_templates"):
        out.append(
            f"The library holds {m['n_templates']} templates, mined from {m.get('n_sources')} "
            f"training-split rep turns of {m.get('n_train_calls')} calls."
        )
    src, cor, lift = (m.get(k) or {} for k in ("source_good_share", "corpus_good_share", "lift"))
    if _ok(src.get("overall")) and _ok(cor.get("overall")):
        per = {k: v for k, v in lift.items() if k != "overall" and _ok(v)}
        weakest = min(per, key=per.get) if per else None
        s = (
            f"The turns behind the templates are good (hidden quality, read here only to check) "
            f"{pct(src['overall'])} of the time against {pct(cor['overall'])} in the corpus"
        )
        if weakest:
            s += f"; the smallest lift is on {weakest} ({100 * per[weakest]:.1f} points)"
        out.append(s + ".")
    dropped = m.get("dropped") or {}
    if dropped:
        out.append(
            f"Clusters dropped: {dropped.get('min_support', 0)} for too little support, "
            f"{dropped.get('fact_check', 0)} for a failed fact check, "
            f"{dropped.get('duplicate', 0)} as duplicates."
        )
    out.append(
        "These are shares of one build without intervals; whether the templates help a call is "
        "measured by the online calls of notebook 04, not here."
    )
    return out


def referee_findings_sentence(m04: dict[str, Any]) -> str | None:
    """The referee's findings (facts not in the knowledge base or on the dashboard) in the
    model-written turns of each guarded LLM agent, from notebook 04's `referee_findings` and
    `reply_kinds` records; None when the run saved no `referee_findings`."""
    found = m04.get("referee_findings")
    if not isinstance(found, dict):
        return None
    written = {
        r["system"]: int(r["replies"])
        for r in m04.get("reply_kinds") or []
        if r.get("kind") == "llm" and r.get("replies") and r.get("planned_n")
    }
    if not written:
        return None
    cells = [
        f"{s} {found.get(f'{s}.llm', 0) or 'no'} finding(s) in {n} turns"
        for s, n in sorted(written.items())
    ]
    return (
        "The referee's fact check found facts absent from the knowledge base and the dashboard "
        "in DOGA's model-written turns: " + ", ".join(cells) + " (every finding with its reply: "
        "`online_referee_findings.csv`). The guard's own fact check has rules modelled on the "
        "referee's findings, so a zero here is partly by construction."
    )


def _nb04(m: dict[str, Any]) -> list[str]:
    out = []
    on = {s: r for s, r in (m.get("online") or {}).items() if isinstance(r, dict) and r.get("n")}
    if on:
        order = sorted(on, key=lambda s: -on[s]["rate"])
        out.append(
            f"Conversion in {on[order[0]]['n']} whole calls per system against the simulated "
            "customer (Wilson 95%): "
            + ", ".join(f"{s} {pct_ci(on[s]['rate'], on[s]['lo'], on[s]['hi'])}" for s in order)
            + "."
        )
    if m.get("detectable_difference"):
        out.append(str(m["detectable_difference"]))
    heard = heard_sentence(m)
    if heard:
        out.append(heard)
    found = referee_findings_sentence(m)
    if found:
        out.append(found)
    fsm, rule = (m.get("intent") or {}).get("with_fsm") or {}, m.get("script_rule") or {}
    if _ok(fsm.get("expert_macro_f1")) and _ok(rule.get("expert_macro_f1")):
        out.append(
            "DOGA's intent classifier picks the hidden expert's move with macro-F1 "
            f"{fsm['expert_macro_f1']:.3f} on {fsm.get('n')} test turns, against "
            f"{rule['expert_macro_f1']:.3f} for the by-the-book script rule."
        )
    return out[:5]


def _nb05(m: dict[str, Any]) -> list[str]:
    out = []
    for name, v in (m.get("judge_validation") or {}).items():
        if isinstance(v, dict) and _ok(v.get("pairs")):
            out.append(
                f"The {name} judge {'passed' if v.get('passed') else 'failed'} its validation: "
                f"{pct_ci(v['pairs'], v.get('pairs_lo'), v.get('pairs_hi'))} of "
                f"{v.get('pairs_n')} held-out hand-written pairs ranked right{pairs_bar(m, name)}."
            )
    judge = m.get("judge") if isinstance(m.get("judge"), dict) else {}
    if judge and not judge.get("passed"):
        out.append(
            f"So the capability and metric tables above, scored by the {judge.get('name')} judge, "
            "are not evidence: read the referee's measures instead."
        )
    auto = m.get("auto_metrics") or {}
    cells = [
        f"{s} {auto[f'{s}.referee_violations_per_100']:.1f}"
        for s in ("base_plain", "grpo_bayes", "base_doga", "template_only")
        if _ok(auto.get(f"{s}.referee_violations_per_100"))
    ]
    if cells:
        out.append(
            "The referee's own fact check, ungrounded facts per 100 replies: "
            + ", ".join(cells)
            + " (the template agent's is 0 by construction)."
        )
    sims = [
        f"{s} {auto[f'{s}.sim_expert']:.3f}"
        for s in ("base_plain", "sft", "grpo_bayes", "base_doga", "template_only")
        if _ok(auto.get(f"{s}.sim_expert"))
    ]
    if sims:
        out.append("Similarity to the hidden expert reply: " + ", ".join(sims) + ".")
    return out[:5]


TRY_NEXT = {
    "01_corpus_construction": "change `corpus.n_calls` or `corpus.disfluency`",
    "02_bayesian_grpo_training": (
        "raise `training.grpo.max_steps` (token-level GRPO) or `planner.updates` (the planner), "
        "then `--only 02,04,05` carries the change through"
    ),
    "03_script_library": "change `library.top_fraction` or `library.max_k`",
    "04_doga_inference": (
        "raise `doga.n_online_calls` to narrow the conversion intervals, or change "
        "`doga.guard_retries`"
    ),
    "05_judged_evaluation": (
        "set `eval.judge_kind: api` with a `models.judge` entry (an API judge), or raise "
        "`eval.n_items`"
    ),
}
_PARTS = {"01": _nb01, "02": _nb02, "03": _nb03, "04": _nb04, "05": _nb05}


def notebook_findings(profile: Profile | str, notebook: str) -> str:
    """Markdown "What this run shows" for one notebook, from its own saved metrics JSON: results
    and non-results (3-6 sentences), then what to try next and the command that re-runs it alone."""
    prof, nb = _profile(profile), notebook_name(notebook)
    m = load_metrics(prof, nb)
    head = "### What this run shows\n\n"
    if not m:
        return head + f"_No saved metrics for `{nb}` yet: run `{_run_cmd(prof, nb)}`._\n"
    said = _PARTS[nb[:2]](m)
    said.append(
        f"Try next: in a copy of the profile, {TRY_NEXT[nb]}; re-run this notebook alone with "
        f"`{_run_cmd(prof, nb)}`."
    )
    return head + " ".join(said) + "\n"
