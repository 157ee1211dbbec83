"""Figure helpers: one seaborn theme, fixed DPI, every figure saved as PNG to results/figures/.

One module although long: every figure in one seaborn theme and one `save_figure`, so that all
figures look alike and land under fixed names.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

# Scripts and tests draw off-screen; inside a Jupyter kernel (papermill included) the kernel's
# inline backend is kept, so that an executed notebook shows its figures, not only their paths.
if "ipykernel" not in sys.modules:
    matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from salesman_utils.config import Profile, paths  # noqa: E402

DPI = 120


def set_theme() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams["figure.dpi"] = DPI


def save_figure(fig: plt.Figure, profile: Profile, name: str) -> Path:
    """Save `fig` as `results/figures/<name>.png` (tight bbox) and return the path. In a notebook
    the inline backend shows the figure below its cell as well."""
    out = paths(profile).figures / f"{name}.png"
    fig.savefig(out, dpi=DPI, bbox_inches="tight")
    return out


# ---------------------------------------------------------------- eval_ (notebook 05)


def _eval_system_order(names) -> list[str]:
    from salesman_utils.arena.evaluation import SYSTEMS

    present = list(dict.fromkeys(names))
    return [s for s in SYSTEMS if s in present] + sorted(s for s in present if s not in SYSTEMS)


def eval_radar(
    df,
    value: str = "score",
    systems: list[str] | None = None,
    lim=(1, 10),
    judge_passed: bool | None = None,
) -> plt.Figure:
    """Radar of the mean judge score per capability (six axes), one line per system.

    `df` is long format with columns system, capability and `value` (e.g. eval_turn_scores).
    `judge_passed=False` (the judge failed its validation) marks the title (`judge_title`)."""
    import numpy as np

    from salesman_utils.judge.llm_judge import CAPABILITIES
    from salesman_utils.judge.validation import judge_title

    caps = list(CAPABILITIES)
    means = df.groupby(["system", "capability"])[value].mean()
    systems = systems or _eval_system_order(df["system"])
    angles = np.linspace(0, 2 * np.pi, len(caps), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(6.5, 6.5), subplot_kw={"projection": "polar"})
    colors = sns.color_palette("colorblind", len(systems))
    for s, color in zip(systems, colors, strict=True):
        vals = [float(means.get((s, c), np.nan)) for c in caps]
        ax.plot(angles + angles[:1], vals + vals[:1], color=color, lw=1.8, label=s)
        ax.fill(angles + angles[:1], vals + vals[:1], color=color, alpha=0.06)
    ax.set_xticks(angles, [c.replace("_", "\n") for c in caps], fontsize=9)
    ax.set_ylim(*lim)
    ax.set_title(judge_title("Judge score per capability (mean, 1-10)", judge_passed), pad=18)
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.1), fontsize=8)
    return fig


def eval_heatmap(
    df, value: str = "score", systems: list[str] | None = None, judge_passed: bool | None = None
) -> plt.Figure:
    """Heatmap systems x seven metrics of the mean judge score, annotated; `judge_passed=False`
    marks the title (`judge_title`)."""
    from salesman_utils.judge.llm_judge import METRICS
    from salesman_utils.judge.validation import judge_title

    table = df.pivot_table(index="system", columns="metric", values=value, aggfunc="mean")
    table = table.reindex(
        index=systems or _eval_system_order(table.index),
        columns=[m for m in METRICS if m in table.columns],
    )
    fig, ax = plt.subplots(figsize=(1.1 * len(table.columns) + 2.5, 0.5 * len(table) + 1.5))
    sns.heatmap(
        table,
        annot=True,
        fmt=".2f",
        cmap="viridis",
        vmin=1,
        vmax=10,
        ax=ax,
        cbar_kws={"label": "mean score (1-10)"},
    )
    ax.set_xticklabels([m.replace("_", " ") for m in table.columns], rotation=30, ha="right")
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title(judge_title("Judge score per metric (mean, 1-10)", judge_passed))
    return fig


def eval_bars_ci(
    summary_df,
    x: str = "system",
    hue: str | None = None,
    ylabel: str = "mean judge score",
    title: str = "Judge score with 95% bootstrap intervals over items",
    judge_passed: bool | None = None,
) -> plt.Figure:
    """Bars of `mean` with [lo, hi] error bars (the output of `stats.summarize`);
    `judge_passed=False` marks the title (`judge_title`)."""
    import numpy as np

    from salesman_utils.judge.validation import judge_title

    d = summary_df.copy()
    xs = _eval_system_order(d[x]) if x == "system" else list(dict.fromkeys(d[x]))
    hues = list(dict.fromkeys(d[hue])) if hue else [None]
    if hue in ("capability", "metric"):  # rubric order, not alphabetical
        from salesman_utils.judge.llm_judge import CAPABILITIES, METRICS

        known = list(CAPABILITIES if hue == "capability" else METRICS)
        hues = [h for h in known if h in hues] + [h for h in hues if h not in known]
    width = 0.8 / len(hues)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(xs) * max(1, len(hues) ** 0.5)), 4))
    colors = sns.color_palette("colorblind", len(hues))
    for j, (h, color) in enumerate(zip(hues, colors, strict=True)):
        sub = d if h is None else d[d[hue] == h]
        sub = sub.set_index(x).reindex(xs)
        pos = np.arange(len(xs)) - 0.4 + width * (j + 0.5)
        mean = sub["mean"].to_numpy(float)
        err = np.vstack([mean - sub["lo"].to_numpy(float), sub["hi"].to_numpy(float) - mean])
        ax.bar(pos, mean, width=width, color=color, label=h)
        ax.errorbar(pos, mean, yerr=np.nan_to_num(err), fmt="none", ecolor="black", capsize=3)
    ax.set_xticks(np.arange(len(xs)), xs, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(judge_title(title, judge_passed))
    if hue:
        ax.legend(title=hue, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- corpus (notebook 01)

_OUTCOME_ORDER = ["success", "failure", "hangup"]


def corpus_turns_per_call(turns) -> plt.Figure:
    """Histogram of turns per call by outcome; `turns` = corpus.turn_frame(dialogues)."""
    per = turns.groupby(["dialogue_id", "outcome"]).size().rename("turns").reset_index()
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    sns.histplot(
        per,
        x="turns",
        hue="outcome",
        hue_order=_OUTCOME_ORDER,
        multiple="stack",
        discrete=True,
        ax=ax,
    )
    ax.set(xlabel="turns per call (agent + customer)", ylabel="calls", title="Call length")
    return fig


def corpus_intent_distribution(turns) -> plt.Figure:
    """Agent turns per intent, split by hidden quality (good / bad)."""
    from salesman_utils.world.corpus import INTENTS

    ag = turns[turns.speaker == "agent"].assign(
        quality=lambda d: d["quality"].map({1: "good", 0: "bad"})
    )
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.countplot(ag, y="intent", hue="quality", order=INTENTS, hue_order=["good", "bad"], ax=ax)
    ax.set(xlabel="agent turns", ylabel="", title="Intents and hidden turn quality")
    return fig


def corpus_conversion_by_skill(stats: dict) -> plt.Figure:
    """Conversion rate per salesperson skill with Wilson 95% intervals (from corpus_stats)."""
    conv = stats["conversion_by_skill"]
    skills = [s for s in ("novice", "intermediate", "expert") if conv[s]["n"]]
    rates = [conv[s]["rate"] for s in skills]
    err = [
        [r - conv[s]["lo"] for s, r in zip(skills, rates, strict=True)],
        [conv[s]["hi"] - r for s, r in zip(skills, rates, strict=True)],
    ]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(skills, rates, yerr=err, capsize=6, color=sns.color_palette()[:3])
    for i, s in enumerate(skills):
        ax.text(i, 0.01, f"n={conv[s]['n']}", ha="center", va="bottom", fontsize=9)
    ax.set(ylabel="conversion (success share)", ylim=(0, 1), title="Conversion by skill (95% CI)")
    return fig


def corpus_noise(turns) -> plt.Figure:
    """Share of good and bad agent turns by call outcome: the noise the Bayesian reward sees through."""
    ag = turns[turns.speaker == "agent"]
    share = ag.groupby("outcome")["quality"].mean().reindex(_OUTCOME_ORDER)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.bar(share.index, share.values, label="good turns", color=sns.color_palette()[2])
    ax.bar(
        share.index,
        1 - share.values,
        bottom=share.values,
        label="bad turns",
        color=sns.color_palette()[3],
    )
    for i, v in enumerate(share.values):
        ax.text(i, v / 2, f"{v:.0%}", ha="center", color="white", fontweight="bold")
        ax.text(i, v + (1 - v) / 2, f"{1 - v:.0%}", ha="center", color="white", fontweight="bold")
    ax.set(ylabel="share of agent turns", ylim=(0, 1), title="Turn quality by call outcome")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def corpus_example_call(dialogue, max_turns: int = 14, width: int = 70) -> plt.Figure:
    """A call rendered as chat bubbles: rep on the left (intent, hidden quality), merchant right."""
    import textwrap

    turns = dialogue.turns[:max_turns]
    wrapped = [textwrap.fill(t.text, width) for t in turns]
    heights = [0.45 + 0.22 * w.count("\n") for w in wrapped]
    fig, ax = plt.subplots(figsize=(9, 0.6 + sum(heights) + 0.15 * len(turns)))
    ax.set_axis_off()
    y = sum(heights) + 0.15 * len(turns)
    ax.set_ylim(0, y + 0.3)
    ax.set_xlim(0, 1)
    colors = {"good": "#d8f0d8", "bad": "#f8d7d7", "customer": "#e3ecfa"}
    for t, text, h in zip(turns, wrapped, heights, strict=True):
        if t.speaker == "agent":
            q = "good" if t.hidden.get("quality") else "bad"
            tag = f"REP · {t.intent} · hidden: {q}"
            if q == "bad" and t.hidden.get("expert_intent") != t.intent:
                tag += f" (expert: {t.hidden.get('expert_intent')})"
            x, ha, color = 0.01, "left", colors[q]
        else:
            tag = f"MERCHANT · {t.act}" + (f":{t.objection_type}" if t.objection_type else "")
            x, ha, color = 0.99, "right", colors["customer"]
        ax.text(x, y, tag, ha=ha, va="top", fontsize=7, color="#555555")
        ax.text(
            x,
            y - 0.24,
            text,
            ha=ha,
            va="top",
            fontsize=8.5,
            family="sans-serif",
            bbox={"boxstyle": "round,pad=0.4", "fc": color, "ec": "#999999"},
        )
        y -= h + 0.15
    ax.set_title(
        f"{dialogue.id}: {dialogue.merchant.name} ({dialogue.merchant.category}), "
        f"{dialogue.product_id}, rep skill {dialogue.agent.skill} -> {dialogue.outcome}",
        fontsize=10,
        loc="left",
    )
    return fig


# ---------------------------------------------------------------- library_ (notebook 03)


def library_cluster_map(points) -> plt.Figure:
    """Per intent, the 2-D PCA map of the distinct (slotted) agent turns: coloured by the library
    entry whose cluster holds them, grey when not selected, a star on each entry's template;
    marker area ~ number of turns. `points` = library.cluster_points(...)."""
    import numpy as np

    from salesman_utils.world.corpus import INTENTS

    intents = [i for i in INTENTS if i in set(points["intent"])]
    ncol = 3
    nrow = int(np.ceil(len(intents) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 4.0 * nrow), squeeze=False)
    for ax, intent in zip(axes.flat, intents, strict=False):
        d = points[points.intent == intent]
        size = 12 + 4 * np.sqrt(d["n_turns"].to_numpy(float))
        rest = d["entry"].eq("not selected").to_numpy()
        ax.scatter(
            d.x[rest], d.y[rest], s=size[rest], color="#bbbbbb", alpha=0.6, label="not selected"
        )
        entries = sorted(set(d.entry[~rest]))
        colors = sns.color_palette("tab10", max(len(entries), 1))
        for e, color in zip(entries, colors, strict=False):
            m = (d.entry == e).to_numpy()
            ax.scatter(d.x[m], d.y[m], s=size[m], color=color, alpha=0.8, label=e.split("-")[-1])
            t = m & d.is_template.to_numpy()
            ax.scatter(d.x[t], d.y[t], s=180, marker="*", color=color, edgecolor="black", lw=0.8)
        ax.set(title=intent.replace("_", " "), xticks=[], yticks=[])
        ax.legend(fontsize=6, ncol=2, loc="best", title="entry", title_fontsize=7)
    for ax in list(axes.flat)[len(intents) :]:
        ax.set_axis_off()
    fig.suptitle("Script library: clusters of agent turns per intent (PCA, star = template)")
    fig.tight_layout()
    return fig


def library_templates(frame, top: int = 3) -> plt.Figure:
    """Posterior mean with its 90% Beta interval for the top entries of each intent."""
    import numpy as np

    d = frame.sort_values(["intent", "posterior_mean"], ascending=[True, False])
    d = d.groupby("intent", sort=False).head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(d) + 1.2))
    y = np.arange(len(d))
    err = np.vstack([d.posterior_mean - d.ci_lo, d.ci_hi - d.posterior_mean])
    ax.errorbar(d.posterior_mean, y, xerr=err, fmt="o", color=sns.color_palette()[0], capsize=3)
    ax.set_yticks(
        y, [f"{i}  (n={n})" for i, n in zip(d["id"], d["support"], strict=True)], fontsize=8
    )
    ax.set(
        xlim=(0, 1),
        xlabel="posterior P(good) of the cluster's turns (mean, 90% interval)",
        title=f"Top {top} templates per intent",
    )
    return fig


def library_source_quality(table) -> plt.Figure:
    """Share of hidden-good turns among the library's sources vs all training turns, per intent
    (`table` = library.source_quality(...))."""
    import numpy as np

    d = table.reset_index(drop=True)
    x = np.arange(len(d))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.bar(x - 0.2, d.corpus_good_share, 0.4, label="all training turns", color="#9e9e9e")
    ax.bar(x + 0.2, d.source_good_share, 0.4, label="library sources", color=sns.color_palette()[2])
    for i, lift in enumerate(d.lift):
        ax.text(i + 0.2, d.source_good_share[i] + 0.02, f"{lift:+.2f}", ha="center", fontsize=8)
    ax.set_xticks(x, [s.replace("_", "\n") for s in d.intent], fontsize=8)
    ax.set(
        ylim=(0, 1.1),
        ylabel="share of hidden-good turns",
        title="Is the library built from better-than-average turns? (evaluation only)",
    )
    ax.legend(fontsize=8, loc="lower right")
    return fig


# ---------------------------------------------------------------- 02 Bayesian supervision + GRPO


def bayes_validation(y, scores: dict, bins: int = 10) -> plt.Figure:
    """ROC curves and a reliability diagram of turn-quality scores against the hidden quality."""
    import numpy as np
    from sklearn.metrics import roc_curve

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    edges = np.linspace(0, 1, bins + 1)
    for name, s in scores.items():
        s = np.asarray(s, dtype=float)
        fpr, tpr, _ = roc_curve(y, s)
        ax1.plot(fpr, tpr, label=name)
        idx = np.clip(np.digitize(s, edges[1:-1]), 0, bins - 1)
        pts = [(s[idx == b].mean(), y[idx == b].mean(), (idx == b).sum()) for b in np.unique(idx)]
        px, py, n = map(np.array, zip(*pts, strict=True))
        ax2.scatter(px, py, s=20 + 200 * n / n.max(), alpha=0.8, label=name)
        ax2.plot(px, py, alpha=0.5)
    for ax in (ax1, ax2):
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    ax1.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test turns)")
    ax2.set(xlabel="predicted P(good)", ylabel="observed share good", title="Calibration")
    ax1.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def grpo_reward_curves(logs: dict, keys: dict, smooth: int = 3) -> plt.Figure:
    """One panel per reward key (log-history column -> title), one line per variant, over steps
    (rolling mean over `smooth` logged steps; raw points faint)."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    for ax, (key, title) in zip(axes[0], keys.items(), strict=True):
        for name, df in logs.items():
            if key not in df.columns:
                continue
            d = df.dropna(subset=[key])
            line = ax.plot(d["step"], d[key].rolling(smooth, min_periods=1).mean(), label=name)
            ax.scatter(d["step"], d[key], s=8, alpha=0.3, color=line[0].get_color())
        ax.set(xlabel="GRPO step", title=title)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def grpo_heldout(table, metrics: dict) -> plt.Figure:
    """Point estimates with 95% intervals per system, one panel per metric (column -> title)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False)
    for ax, (col, title) in zip(axes[0], metrics.items(), strict=True):
        y = range(len(table))
        err = [table[col] - table[f"{col}_lo"], table[f"{col}_hi"] - table[col]]
        ax.errorbar(table[col], y, xerr=err, fmt="o", capsize=3)
        ax.set_yticks(list(y), table["system"] if ax is axes[0][0] else [""] * len(table))
        ax.invert_yaxis()
        ax.set(title=title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- doga_ (notebook 04)


def doga_confusion(
    result: dict, title: str = "Next-intent classifier (held-out calls)"
) -> plt.Figure:
    """Row-normalised confusion matrix from `IntentClassifier.evaluate` (rows = observed intent)."""
    import numpy as np

    conf = np.asarray(result["confusion"], dtype=float)
    norm = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
    labels = [x.replace("_", "\n") for x in result["labels"]]
    fig, ax = plt.subplots(figsize=(6.8, 5.6))
    sns.heatmap(
        norm,
        annot=conf.astype(int),
        fmt="d",
        cmap="Blues",
        vmin=0,
        vmax=1,
        ax=ax,
        xticklabels=labels,
        yticklabels=labels,
        cbar_kws={"label": "share of row"},
    )
    ax.set(
        xlabel="predicted", ylabel="observed", title=f"{title}: macro-F1 {result['macro_f1']:.2f}"
    )
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


def doga_transitions(fsm) -> plt.Figure:
    """The FSM's smoothed transition probabilities P(next intent | previous intent)."""
    from salesman_utils.world.simulator import INTENTS

    rows = ["(start)", *INTENTS]
    fig, ax = plt.subplots(figsize=(6.8, 5.2))
    sns.heatmap(
        fsm.transition,
        annot=True,
        fmt=".2f",
        cmap="Greens",
        ax=ax,
        vmin=0,
        vmax=1,
        xticklabels=[x.replace("_", "\n") for x in INTENTS],
        yticklabels=[x.replace("_", " ") for x in rows],
    )
    ax.set(xlabel="next intent", ylabel="previous intent", title="Intent FSM transitions")
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


def doga_conversion(table) -> plt.Figure:
    """Conversion rate per system with 95% Wilson intervals (table from `online_table`):
    horizontal bars, one row per system in the table's order, so that the system names stay
    readable however many systems there are; each bar is labelled with its rate and n."""
    import numpy as np

    n_sys = len(table)
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.42 * n_sys))
    colors = sns.color_palette("colorblind", n_sys)
    rate = table["rate"].to_numpy(float)
    err = np.vstack([rate - table["lo"].to_numpy(float), table["hi"].to_numpy(float) - rate])
    pos = np.arange(n_sys)
    ax.barh(pos, rate, xerr=err, capsize=4, color=colors, height=0.7)
    for y, (r, hi, n) in enumerate(zip(rate, table["hi"], table["n"], strict=True)):
        ax.text(min(float(hi), 0.8) + 0.015, y, f"{r:.0%}  (n={n})", va="center", fontsize=8)
    ax.set_yticks(pos, [str(s) for s in table["system"]], fontsize=9)
    ax.invert_yaxis()  # the table's first system on top
    ax.set(
        xlabel="conversion rate",
        ylabel="",
        xlim=(0, 1),
        title="Simulated calls: conversion with 95% Wilson intervals",
    )
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- eval_ (notebook 05, part 2)


def eval_auto_panels(table) -> plt.Figure:
    """One panel per automatic metric: mean per system with its 95% bootstrap interval
    (`table` = evaluation.auto_metric_table: system, metric, mean, lo, hi)."""
    import numpy as np

    metrics = list(dict.fromkeys(table["metric"]))
    systems = _eval_system_order(table["system"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 3.6), squeeze=False)
    colors = sns.color_palette("colorblind", len(systems))
    for ax, m in zip(axes[0], metrics, strict=True):
        sub = table[table["metric"] == m].set_index("system").reindex(systems)
        mean = sub["mean"].to_numpy(float)
        err = np.vstack([mean - sub["lo"].to_numpy(float), sub["hi"].to_numpy(float) - mean])
        ax.bar(range(len(systems)), mean, color=colors)
        ax.errorbar(
            range(len(systems)),
            mean,
            yerr=np.nan_to_num(np.abs(err)),
            fmt="none",
            ecolor="black",
            capsize=3,
        )
        ax.set_xticks(range(len(systems)), systems, rotation=60, ha="right", fontsize=8)
        ax.set_title(m.replace("_", " "), fontsize=10)
    fig.suptitle("Automatic metrics on held-out contexts (95% bootstrap intervals)")
    fig.tight_layout()
    return fig


def eval_judge_validation(scores, has_violation, auc: float, pair_summary: dict) -> plt.Figure:
    """Left: the judge's Faithfulness score of clean vs planted-violation corpus turns (AUC in
    the title). Right: expert-vs-novice pairwise outcomes (expert / novice / tie)."""
    import numpy as np
    import pandas as pd

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    d = pd.DataFrame(
        {
            "score": np.asarray(scores, float),
            "turn": np.where(np.asarray(has_violation) == 1, "planted violation", "clean"),
        }
    )
    # swarm (no random jitter) and a seeded bootstrap: the figure is the same on every run
    sns.swarmplot(d, x="turn", y="score", order=["clean", "planted violation"], ax=a1, alpha=0.7)
    sns.pointplot(
        d,
        x="turn",
        y="score",
        order=["clean", "planted violation"],
        ax=a1,
        color="black",
        linestyle="none",
        errorbar=("ci", 95),
        seed=0,
        markers="D",
    )
    a1.set(title=f"Faithfulness score vs ground truth (AUC {auc:.2f})", xlabel="", ylim=(1, 10))
    counts = [
        pair_summary.get("wins_a", 0),
        pair_summary.get("wins_b", 0),
        pair_summary.get("ties", 0),
    ]
    a2.bar(
        ["expert preferred", "novice preferred", "tie (order flips)"],
        counts,
        color=sns.color_palette("colorblind", 3),
    )
    a2.set(title="Pairwise: hidden expert reply vs novice reply", ylabel="pairs")
    a2.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig


def planner_curves(curves, refs) -> plt.Figure:
    """Strategy-level GRPO: held-out (validation) conversion and expert-move agreement against
    simulated training calls, mean over seeds with a 95% band (seaborn's bootstrap over seeds),
    one colour per reward arm, solid from the imitation start and dashed from scratch; grey
    lines: the reference policies on the same calls."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharex=True)
    ref = refs[refs["split"] == "validation"].set_index("policy")
    for ax, col, ref_col, title in (
        (axes[0], "conversion", "conversion", "held-out conversion"),
        (axes[1], "agreement", "expert_agreement", "expert-move agreement"),
    ):
        sns.lineplot(
            data=curves,
            x="calls",
            y=col,
            hue="arm",
            style="start",
            errorbar=("ci", 95),
            n_boot=500,
            seed=0,
            ax=ax,
            style_order=["imitation", "scratch"],
        )
        for (name, row), ls in zip(ref.iterrows(), [":", "-.", "--", (0, (1, 3))], strict=False):
            ax.axhline(row[ref_col], color="grey", lw=1, ls=ls)
            ax.annotate(
                name,
                (1.0, row[ref_col]),
                xycoords=("axes fraction", "data"),
                fontsize=8,
                color="dimgrey",
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
            )
        ax.set_title(title)
        ax.set_xlabel("simulated training calls")
        ax.set_ylabel(col)
    axes[0].get_legend().remove()
    axes[1].legend(loc="lower left", bbox_to_anchor=(1.25, 0.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
