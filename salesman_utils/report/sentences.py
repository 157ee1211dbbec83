"""Sentences and small tables read from notebooks 01, 02 and 04's saved outputs (hidden truth,
Bayesian supervision, token-level GRPO, pushy merchants, online reply kinds), and the number
formats every results page shares."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from salesman_utils.agent.training import OBJECTIVE_COLUMN
from salesman_utils.config import repo_relative


def _f(x: Any, nd: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{nd}f}"


def _ci(
    point: float, lo: float, hi: float, nd: int = 2, pct: bool = False, signed: bool = False
) -> str:
    """'1.23 [0.98, 1.50]'; relative effects as '+18.9% [+5.1%, +30.2%]'."""
    if not math.isfinite(point):
        return "n/a"
    k, fmt = (100.0, "{:+.1f}%") if pct else (1.0, f"{{:{'+' if signed else ''}.{nd}f}}")
    body = fmt.format(point * k)
    if math.isfinite(lo) and math.isfinite(hi):
        body += f" [{fmt.format(lo * k)}, {fmt.format(hi * k)}]"
    return body


def _md(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, disable_numparse=True) if len(df) else "(no rows)"


def supervision_section(
    tables: Path, posterior: str = "posterior w", audit_table: bool = True
) -> list[str]:
    """Notebooks 01-02: how hard the hidden quality is to read (`audit_table`), and the Bayesian
    posterior beside its baselines (ROC-AUC against the hidden turn quality on held-out calls),
    with a generated sentence saying which baselines the posterior beats and which it does not."""
    audit, val = tables / "01_hidden_truth_audit.csv", tables / "02_bayes_validation.csv"
    out = ["### Hidden truth and Bayesian supervision (notebooks 01-02)\n"]
    if audit_table and audit.exists():
        a = pd.read_csv(audit)
        a["value [95% CI]"] = [_ci(r.value, r.lo, r.hi, 3) for r in a.itertuples()]
        out += [_md(a[["instrument", "measure", "value [95% CI]", "n"]]), ""]
    if not val.exists():
        return out + [f"_Run notebook 02 for the posterior table ({repo_relative(val)})._\n"]
    v = pd.read_csv(val).query("metric == 'auc'").reset_index(drop=True)
    v["ROC-AUC [95% CI]"] = [_ci(r.value, r.lo, r.hi, 3) for r in v.itertuples()]
    out += [_md(v[["score", "ROC-AUC [95% CI]", "n_turns"]]), ""]
    paired = tables / "02_bayes_paired.csv"
    if not paired.exists():
        return out + [f"_Run notebook 02 for the paired differences ({repo_relative(paired)})._\n"]
    d = pd.read_csv(paired).query("score == @posterior")
    above = [
        f"{r.minus} ({_ci(r.auc_diff, r.lo, r.hi, 3, signed=True)})"
        for r in d.itertuples()
        if r.lo > 0
    ]
    below = [
        f"{r.minus} ({_ci(r.auc_diff, r.lo, r.hi, 3, signed=True)})"
        for r in d.itertuples()
        if r.hi < 0
    ]
    tied = [
        f"{r.minus} ({_ci(r.auc_diff, r.lo, r.hi, 3, signed=True)})"
        for r in d.itertuples()
        if r.lo <= 0 <= r.hi
    ]
    out.append(
        "Posterior AUC minus each baseline's, paired on the same resampled test calls: "
        f"**above** {', '.join(above) or 'none'}; **below** {', '.join(below) or 'none'}; "
        f"**interval includes 0** {', '.join(tied) or 'none'}. The structure GBM and the text "
        "probes are trained on the hidden labels of the training split (upper references for what "
        "the visible surface allows); the posterior never sees a label.\n"
    )
    return out


_VS_SFT_NAMES = {
    "sim_expert": "similarity to the hidden expert reply",
    "degenerate": "share of degenerate replies",
    "price_answered": "share of price questions answered with a real price",
    "referee_violations": "share of replies with an ungrounded fact (referee)",
}


def training_section(tables: Path) -> list[str]:
    """Notebook 02: GRPO without SFT against SFT on the referee's measures, and each GRPO
    variant's own objective against the base model, read from the paired tables with their
    intervals (a difference counts only where its interval excludes 0)."""
    vs_sft, vs_base = tables / "02_grpo_vs_sft.csv", tables / "02_reward_vs_base.csv"
    if not vs_sft.exists():
        return []
    out = ["### GRPO without SFT vs SFT (notebook 02, held-out contexts)\n"]
    d = pd.read_csv(vs_sft).query("system == 'grpo_bayes' and metric in @_VS_SFT_NAMES")
    parts = [
        f"{_VS_SFT_NAMES.get(r.metric, r.metric)} {_ci(r.diff, r.lo, r.hi, 3, signed=True)} "
        f"({'interval excludes 0' if r.excludes_0 else 'interval includes 0: no difference shown'}"
        f", n={r.n})"
        for r in d.itertuples()
    ]
    if parts:
        out.append("`grpo_bayes` minus `sft`, paired bootstrap 95%: " + "; ".join(parts) + ".\n")
    out += sft_label(tables.parent / "metrics" / "02_bayesian_grpo_training.json")
    out += objective_lines(vs_base)
    out += pushy_lines(tables / "02_pushy_merchants.csv", tables / "02_pushy_sealed.csv")
    return out


def objective_lines(vs_base: Path) -> list[str]:
    """Each GRPO variant's own training objective on held-out contexts minus the base model's
    (`02_reward_vs_base.csv`): a rise counts only where its interval excludes 0."""
    if not vs_base.exists():
        return []
    b = pd.read_csv(vs_base)
    rows = [r for r in b.itertuples() if OBJECTIVE_COLUMN.get(r.system) == r.metric]
    if not rows:
        return []
    said = [
        f"{r.system} {'rose' if r.lo > 0 else 'did NOT rise'} "
        f"({r.metric} {_ci(r.diff, r.lo, r.hi, 3, signed=True)})"
        for r in rows
    ]
    return [
        "Each GRPO variant's own training objective on held-out contexts, minus the base "
        "model's: "
        + "; ".join(said)
        + ". One training seed"
        + (
            f"; {len(rows)} variants read without a multiplicity correction, so a single rise "
            "is weak evidence.\n"
            if len(rows) > 1
            else ".\n"
        )
    ]


def sft_label(metrics_02: Path) -> list[str]:
    """What `sft` is in this run's comparisons (its steps and price-answer rows against GRPO's
    prompts): with price rows it is not the paper's SFT baseline, and the README says so."""
    if not metrics_02.exists():
        return []
    m = json.loads(metrics_02.read_text())
    sft, grpo = m.get("sft") or {}, m.get("grpo") or {}
    if not sft:
        return []
    share = float(sft.get("price_share") or 0)
    rows = f"{sft.get('price_rows', 0)} of its rows price answers" if share else "no price rows"
    if sft.get("rows_seen"):
        rows += f"; {sft['rows_seen']} rows seen in training"
    return [
        f"Here `sft` is {sft.get('max_steps')} SFT steps ({rows}, `training.sft.price_share` "
        f"{share:g}); each GRPO variant is {grpo.get('max_steps')} steps of one prompt x "
        f"{grpo.get('num_generations')} completions. "
        + (
            "With price rows this `sft` is not the paper's SFT baseline (SFT on every reference), "
            "and the two sides did not get the same data or compute: read every sft-vs-GRPO "
            "difference in this README with that in mind.\n"
            if share
            else "\n"
        )
    ]


def _pushy_cells(csv: Path) -> tuple[list[str], list[str]]:
    """Per policy of one pushy table: its sentence cell, and the policies that meet the bar."""
    from salesman_utils.stats import wilson_ci

    cells, meet = [], []
    for r in pd.read_csv(csv).itertuples():
        _, ilo, ihi = wilson_ci(int(r.invented), int(r.n))
        _, alo, ahi = wilson_ci(int(r.price_answered), int(r.n_price_pushes))
        cells.append(
            f"{r.system} invented a number in {r.invented}/{r.n} [{ilo:.0%}, {ihi:.0%}], answered "
            f"{r.price_answered}/{r.n_price_pushes} pushes [{alo:.0%}, {ahi:.0%}]"
        )
        if r.invented == 0 and r.n_price_pushes and r.price_answered / r.n_price_pushes >= 0.8:
            meet.append(str(r.system))
    return cells, meet


def pushy_lines(pushy_csv: Path, sealed_csv: Path | None = None) -> list[str]:
    """Notebook 02's pushy-merchant tables as sentences: per policy, replies with an invented
    number and price/discount pushes answered with the real price or promotion (Wilson 95%), and
    which policies meet the bar (no invented number, >= 80% answered); the development set
    (`pushy_csv`) labelled as such, then the sealed set (`sealed_csv`, written blind)."""
    out = []
    if pushy_csv.exists():
        cells, meet = _pushy_cells(pushy_csv)
        out.append(
            "Pushy merchants, development set (`02_pushy_merchants.csv`: the developers' own "
            "lines, greedy replies of the policies alone, no guard; the referee's reading): "
            + "; ".join(cells)
            + ". No invented number and at least 80% of pushes answered: "
            + (", ".join(meet) if meet else "no policy")
            + ". The referee's price check (`answers_with_kb_price`) applies the same rule as the "
            "one that picked SFT's price-answer rows (`pricing.states_price`; separate code). "
            "**Not a sealed test**: the agent's price-talk rule (`pricing.asks_about_price`) was "
            "tuned on these lines, and the corpus's harder price pushes "
            "(`data/customer_templates.yaml`) were written from a brief that named the same kinds "
            "of push, so several are close paraphrases of these. Read this table as a development "
            "measure.\n"
        )
    if sealed_csv is not None and sealed_csv.exists():
        cells, meet = _pushy_cells(sealed_csv)
        out.append(
            "Pushy merchants, sealed set (`02_pushy_sealed.csv`: `data/pushy_merchants_sealed.yaml`,"
            " written blind from the product sheet alone; nothing was chosen on it; scored as "
            "above): "
            + "; ".join(cells)
            + ". No invented number and at least 80% of pushes answered: "
            + (", ".join(meet) if meet else "no policy")
            + ".\n"
        )
    return out


def held_out_by_metric(pairs_csv: Path) -> list[str]:
    """Per judge, the deciding (held-out) hand-written pairs ranked right per metric, and the
    metrics at or below chance: a per-metric column of the score tables is only as good as this."""
    if not pairs_csv.exists():
        return []
    df = pd.read_csv(pairs_csv)
    held = df[df["set"].isna() | (df["set"] == "held-out")] if "set" in df else df
    out = []
    for judge, g in held.groupby("judge", sort=False):
        per = g.groupby("metric", sort=False)["right"].agg(["sum", "size"])
        cells = [
            f"{m.replace('_', ' ')} {int(r['sum'])}/{int(r['size'])}" for m, r in per.iterrows()
        ]
        low = [m.replace("_", " ") for m, r in per.iterrows() if r["sum"] <= r["size"] / 2]
        out.append(
            f"- Held-out pairs ranked right per metric ({judge} judge): "
            + ", ".join(cells)
            + (f"; at or below chance: {', '.join(low)}." if low else ".")
        )
    return out + [""] if out else []


def _heard_count(row: Any) -> int:
    """Planned moves heard: the saved count (`planned_heard`), or, for a table saved before it
    was a column, the rate times n rounded."""
    if "planned_heard" in row and pd.notna(row["planned_heard"]):
        return int(row["planned_heard"])
    return int(round(float(row["planned_heard_rate"]) * int(row["planned_n"])))


def _planned_heard_cells(df: pd.DataFrame) -> list[str]:
    """Per guarded system: planned moves heard by the customer, model-written vs template turns."""
    from salesman_utils.stats import wilson_ci

    if "planned_heard_rate" not in df or "planned_n" not in df:
        return []
    cells = []
    for system, g in df.groupby("system", sort=False):
        by = g.set_index("kind")
        if not {"llm", "template"} <= set(by.index) or not (by["planned_n"] > 0).all():
            continue
        bits = []
        for kind, label in (("llm", "model-written"), ("template", "template")):
            n = int(by.loc[kind, "planned_n"])
            k = _heard_count(by.loc[kind])
            _, lo, hi = wilson_ci(k, n)
            bits.append(f"{k} of {n} {label} turns ({k / n:.0%} [{lo:.0%}, {hi:.0%}])")
        cells.append(f"{system} " + " vs ".join(bits))
    return cells


def _model_driven(df: pd.DataFrame) -> set[str]:
    """Systems of a reply-kinds table with at least one model-written reply."""
    return set(df.loc[(df["kind"] == "llm") & (df["replies"] > 0), "system"])


def _model_free_heard(df: pd.DataFrame) -> str:
    """The same reading for the model-free agents: the trivial baseline beside DOGA's rates."""
    free = df[(df["kind"] == "template") & (df["planned_n"] > 0)]
    free = free[~free["system"].isin(_model_driven(df))]
    cells = []
    for r in free.itertuples():
        k = _heard_count(r._asdict())
        cells.append(f"{r.system} {k} of {int(r.planned_n)} ({k / int(r.planned_n):.0%})")
    return (" Model-free agents, the same reading: " + "; ".join(cells) + ".") if cells else ""


def reply_kinds_sentence(kinds_csv: Path, metrics_04: dict) -> str:
    """Per guarded system (one with both model-written and template turns online): how many turns
    the model wrote and how many are the guard's template; and on the merchant's price pushes, how
    many the model's FIRST DRAFT answered with a knowledge-base price (the result), and after the
    guard (selected by the guard's own price rule and price-line fallback: by construction)."""
    from salesman_utils.stats import wilson_ci

    if not kinds_csv.exists():
        return ""
    df = pd.read_csv(kinds_csv)
    parts = []
    for system, g in df.groupby("system", sort=False):
        n = dict(zip(g["kind"], g["replies"], strict=True))
        if n.get("llm", 0) and n.get("template", 0):
            total = n["llm"] + n["template"]
            parts.append(
                f"{system} {n['llm']} of {total} model-written ({n['llm'] / total:.0%}), "
                f"{n['template']} the guard's template"
            )
    if not parts:
        return ""
    out = (
        "Online turns (`online_reply_kinds.csv`): "
        + "; ".join(parts)
        + " (the guard's own decision read back: how often its fact check and its own reply tagger "
        "let the model's reply through, not an independent reading that the reply carries the "
        "planned move)."
    )
    heard = _planned_heard_cells(df)
    if heard:
        out += (
            " The independent reading: the customer's perception (the referee's, fitted on the "
            "held-out rep bank; the same kind of model as the guard's tagger, an embedding and a "
            "logistic regression, fitted on other lines) heard the move the agent planned in "
            + "; ".join(heard)
            + " (Wilson 95%; after a price push DOGA's template is the price line whatever move "
            "was planned)." + _model_free_heard(df)
        )
    push = {r["system"]: r for r in metrics_04.get("price_pushes", []) if isinstance(r, dict)}
    with_model = _model_driven(df)
    cells, free = [], []
    for system in (s for s in df["system"].unique() if s in push):
        r = push[system]
        n, first = r.get("price_pushes", 0), r.get("answered_first_draft")
        post = next((v for k, v in r.items() if k.startswith("answered_post_guard")), None)
        if not n or first is None:
            continue
        if system not in with_model:
            free.append(f"{system} {first} of {n}")  # its price line: the trivial baseline
            continue
        _, lo, hi = wilson_ci(int(first), int(n))
        cell = f"{system} {first} of {n} [{lo:.0%}, {hi:.0%}]"
        after = []
        if post is not None and post != first:
            after.append(f"{post} after the guard")
        if not r.get("model_written"):
            after.append("0 model replies kept")
        cells.append(cell + (f" ({'; '.join(after)})" if after else ""))
    if cells:
        out += (
            " Merchant price pushes answered with a knowledge-base price or promotion in the "
            "model's first draft (referee's reading, Wilson 95%; after the guard in brackets, which "
            "is selected by the guard's own price rule and its price-line fallback, so by "
            "construction): " + "; ".join(cells) + "."
        )
        if free:
            out += (
                " The model-free agents answer with their price line (by construction, the "
                "trivial baseline): " + "; ".join(free) + "."
            )
    return out


ADAPT_SOURCES = {
    "visible bank (template wording)": "template wording",
    "held-out bank": "held-out bank",
    "visible bank, paraphrased": "paraphrased",
}


def adaptation_gap(metrics_04: dict) -> str:
    """Sentences from notebook 04's `adaptation_validation`: per move, how often the customer's
    fitted reader hears an adapted line as adapted (Wilson 95%) in the templates' own wording, in
    the held-out bank's and paraphrased, and how often it hears a non-adapted line as adapted; then
    whether template wording is favoured (point estimates) and whether the intervals separate."""
    from salesman_utils.stats import wilson_ci

    rows = [r for r in metrics_04.get("adaptation_validation", []) if r.get("reader") == "fitted"]
    if not rows:
        return "(Run notebook 04 for the reader's validation.)"
    parts, verdicts = [], []
    for intent in dict.fromkeys(r["intent"] for r in rows):
        cells, rates = [], {}
        for r in rows:
            if r["intent"] != intent or r["source"] not in ADAPT_SOURCES:
                continue
            a, rate = r.get("n_adapted"), r["adapted_rate_if_adapted"]
            ci = ""
            if a:
                _, lo, hi = wilson_ci(int(round(rate * a)), a)
                ci, rates[r["source"]] = f" [{lo:.0%}, {hi:.0%}] of {a}", (rate, lo, hi)
            cells.append(
                f"{ADAPT_SOURCES[r['source']]} {rate:.0%}{ci} (non-adapted heard as adapted: "
                f"{r['adapted_rate_if_not']:.0%})"
            )
        parts.append(f"{intent}: " + "; ".join(cells))
        tpl = rates.get("visible bank (template wording)")
        others = [v for k, v in rates.items() if k != "visible bank (template wording)"]
        if tpl and others:
            if tpl[0] - max(o[0] for o in others) > 0.05:
                apart = tpl[1] > max(o[2] for o in others)
                verdicts.append(
                    f"{intent}: template wording is heard as adapted more often"
                    + (" (intervals apart)" if apart else " (intervals overlap)")
                )
    return (
        "On validation lines (notebook 04, `adaptation_validation`), adapted lines heard as adapted: "
        + ". ".join(parts)
        + ". "
        + (
            "; ".join(verdicts) + "."
            if verdicts
            else "No move where template wording is favoured by more than 5 points."
        )
    )
