"""Figure helpers: one seaborn theme, fixed DPI, every figure saved as PNG to results/figures/."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from .config import Profile, paths  # noqa: E402

DPI = 120


def set_theme() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams["figure.dpi"] = DPI


def save_figure(fig: plt.Figure, profile: Profile, name: str) -> Path:
    """Save `fig` as `results/figures/<name>.png` (tight bbox) and return the path."""
    out = paths(profile).figures / f"{name}.png"
    fig.savefig(out, dpi=DPI, bbox_inches="tight")
    return out


# ---------------------------------------------------------------- eval_ (notebook 05)


def _eval_system_order(names) -> list[str]:
    from .report import SYSTEMS

    present = list(dict.fromkeys(names))
    return [s for s in SYSTEMS if s in present] + sorted(s for s in present if s not in SYSTEMS)


def eval_radar(
    df, value: str = "score", systems: list[str] | None = None, lim=(1, 10)
) -> plt.Figure:
    """Radar of the mean judge score per capability (six axes), one line per system.

    `df` is long format with columns system, capability and `value` (e.g. eval_turn_scores)."""
    import numpy as np

    from .judge import CAPABILITIES

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
    ax.set_title("Judge score per capability (mean, 1-10)", pad=18)
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.1), fontsize=8)
    return fig


def eval_heatmap(df, value: str = "score", systems: list[str] | None = None) -> plt.Figure:
    """Heatmap systems x seven metrics of the mean judge score, annotated."""
    from .judge import METRICS

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
    ax.set_xticklabels([m.replace("_", "\n") for m in table.columns], rotation=0, fontsize=9)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title("Judge score per metric")
    return fig


def eval_bars_ci(
    summary_df, x: str = "system", hue: str | None = None, ylabel: str = "mean judge score"
) -> plt.Figure:
    """Bars of `mean` with [lo, hi] error bars (the output of `metrics.summarize`)."""
    import numpy as np

    d = summary_df.copy()
    xs = _eval_system_order(d[x]) if x == "system" else list(dict.fromkeys(d[x]))
    hues = list(dict.fromkeys(d[hue])) if hue else [None]
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
    if hue:
        ax.legend(title=hue, fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- corpus (notebook 01)

_OUTCOME_ORDER = ["success", "failure", "hangup"]


def corpus_turns_per_call(turns) -> plt.Figure:
    """Histogram of turns per call by outcome; `turns` = corpus.turn_frame(dialogues)."""
    per = turns.groupby(["dialogue_id", "outcome"]).size().rename("turns").reset_index()
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    sns.histplot(per, x="turns", hue="outcome", hue_order=_OUTCOME_ORDER, multiple="stack",
                 discrete=True, ax=ax)
    ax.set(xlabel="turns per call (agent + customer)", ylabel="calls", title="Call length")
    return fig


def corpus_intent_distribution(turns) -> plt.Figure:
    """Agent turns per intent, split by hidden quality (good / bad)."""
    from .corpus import INTENTS

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
    err = [[r - conv[s]["lo"] for s, r in zip(skills, rates, strict=True)],
           [conv[s]["hi"] - r for s, r in zip(skills, rates, strict=True)]]
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
    ax.bar(share.index, 1 - share.values, bottom=share.values, label="bad turns",
           color=sns.color_palette()[3])
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
    heights = [0.35 + 0.22 * w.count("\n") for w in wrapped]
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
        ax.text(x, y - 0.14, text, ha=ha, va="top", fontsize=8.5, family="sans-serif",
                bbox={"boxstyle": "round,pad=0.4", "fc": color, "ec": "#999999"})
        y -= h + 0.15
    ax.set_title(f"{dialogue.id}: {dialogue.merchant.name} ({dialogue.merchant.category}), "
                 f"{dialogue.product_id}, rep skill {dialogue.agent.skill} -> {dialogue.outcome}",
                 fontsize=10, loc="left")
    return fig
