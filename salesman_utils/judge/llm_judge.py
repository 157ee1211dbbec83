"""LLM-as-a-judge: two judges over the rubric of `salesman_utils.judge.rubric` (re-exported here).

- `score(backend, items, kind="local")`: G-Eval style. One prompt per (item, metric); the score is
  the probability-weighted mean over the score strings "1".."10", read from the backend's next-token
  log-probabilities (`score_probs`). Never fails to parse; `mass` says how much probability the
  model put on valid scores at all.
- `score(backend, items, kind="api")`: one prompt per item asking for JSON
  ``{"scores": {metric: int}, "rationale": str}``. Malformed output is retried with another seed;
  what still fails is a parse failure (score NaN, ``parse_ok`` False), never a zero.
- `score(judge, items, kind="trained")`: the trained offline judge of `judge.trained` (a
  `TrainedJudge` in place of a backend): pointwise scores 1-10 from transparent checks and small
  learned parts; the rationale lists what its checks found.
- `pairwise(backend, items_a, items_b)`: asks in both orders; a verdict that flips with the order
  is a tie, and the flip rate measures position bias. With ``kind="trained"`` the verdict compares
  the two replies' mean scores, which cannot depend on the order (flip rate 0 by construction).

No prompt says which move the corpus rep made or which capability an item is filed under: the
capability is a grouping key for tables only.

An item is a dict: ``item_id``, ``capability`` (one of CAPABILITIES), ``reply``, and optionally
``system``, ``product_facts``, ``merchant_facts`` (visible to the rep), ``history`` (the call so
far as text). Nothing from a turn's hidden dict may be put in an item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from salesman_utils.judge.rubric import (
    BANDS,
    CAPABILITIES,
    CAPABILITY_TEXT,
    COMPLEX_CAPABILITIES,
    LOCAL_SPLIT,
    METRIC_TEXT,
    METRICS,
    SCORE_LABELS,
    Criterion,
    api_prompt,
    check_items,
    local_prompt,
    pair_items,
    pairwise_prompt,
    parse_scores,
    parse_winner,
    render_context,
    rubric_markdown,
)
from salesman_utils.judge.tokenprobs import _pieces, expected_score, score_probs

__all__ = [
    "BANDS",
    "CAPABILITIES",
    "CAPABILITY_TEXT",
    "COMPLEX_CAPABILITIES",
    "LOCAL_SPLIT",
    "METRICS",
    "METRIC_TEXT",
    "SCORE_COLUMNS",
    "SCORE_LABELS",
    "Criterion",
    "api_prompt",
    "chat_with_retries",
    "check_items",
    "expected_score",
    "local_prompt",
    "pair_items",
    "pairwise",
    "pairwise_prompt",
    "pairwise_summary",
    "parse_scores",
    "parse_winner",
    "render_context",
    "rubric_markdown",
    "score",
    "score_probs",
    "_pieces",
]


def chat_with_retries(
    backend: Any,
    batch: Sequence[list[dict[str, str]]],
    parse: Any,
    *,
    seed: int = 0,
    max_retries: int = 2,
    temperature: float = 0.0,
    retry_temperature: float = 0.7,
    max_new_tokens: int = 512,
    desc: str | None = None,
) -> tuple[list[Any], list[str], int]:
    """Ask, parse, re-ask the failures with seed+1, seed+2... Returns (parsed or None per prompt,
    last raw text per prompt, number of retried requests). Retries sample at `retry_temperature`
    because a greedy decode repeats the same malformed answer whatever the seed."""
    parsed: list[Any] = [None] * len(batch)
    raw = [""] * len(batch)
    todo = list(range(len(batch)))
    retried = 0
    for attempt in range(max_retries + 1):
        if not todo:
            break
        retried += len(todo) if attempt else 0
        texts = backend.chat(
            [batch[i] for i in todo],
            max_new_tokens=max_new_tokens,
            temperature=retry_temperature if attempt else temperature,
            seed=seed + attempt,
            desc=desc if not attempt else f"{desc or 'judge'} retry {attempt}",
        )
        for i, t in zip(todo, texts, strict=True):
            raw[i], parsed[i] = t, parse(t)
        todo = [i for i in todo if parsed[i] is None]
    return parsed, raw, retried


# ---------------------------------------------------------------- score


def _metric_names(metrics: Iterable[str]) -> list[str]:
    names = list(metrics)
    bad = [m for m in names if m not in METRICS]
    if bad:
        raise ValueError(f"metrics: unknown {bad} (allowed: {', '.join(METRICS)})")
    return names


def score(
    backend: Any,
    items: Sequence[Mapping[str, Any]],
    metrics: Iterable[str] = METRICS,
    kind: str = "local",
    *,
    seed: int = 0,
    max_retries: int = 2,
    retry_temperature: float = 0.7,
    max_new_tokens: int = 512,
    prefix: str = "Score: ",
    desc: str | None = None,
) -> pd.DataFrame:
    """Judge every item on every metric.

    Returns one row per (item, metric): item_id, system, capability, metric, score (float in
    [1, 10]; NaN on a parse failure), parse_ok, rationale, mass (local: probability on valid
    scores; api: NaN). ``df.attrs`` holds ``parse_failures`` (items with a NaN score) and
    ``retries`` (re-asked requests).
    """
    checked, names = check_items(items), _metric_names(metrics)
    rows: list[dict[str, Any]] = []
    retries = 0
    if kind == "local":
        if not hasattr(backend, "score_next_tokens"):
            raise ValueError(
                f"backend {getattr(backend, 'name', backend)!r} exposes no token "
                "probabilities: use kind='api'"
            )
        pairs = [(it, m) for it in checked for m in names]
        prompts = [local_prompt(it, m) for it, m in pairs]
        probs = score_probs(backend, prompts, prefix, split_marker=LOCAL_SPLIT)
        values = expected_score(probs)
        for (it, m), p, v in zip(pairs, probs, values, strict=True):
            ok = bool(np.isfinite(v))
            note = f"p(valid)={p.sum():.2f}; mode={SCORE_LABELS[int(p.argmax())]}" if ok else ""
            rows.append(_row(it, m, float(v), ok, note, float(p.sum())))
    elif kind == "api":
        parsed, raw, retries = chat_with_retries(
            backend,
            [api_prompt(it, names) for it in checked],
            lambda t: parse_scores(t, names),
            seed=seed,
            max_retries=max_retries,
            retry_temperature=retry_temperature,
            max_new_tokens=max_new_tokens,
            desc=desc or "judge",
        )
        for it, got, text in zip(checked, parsed, raw, strict=True):
            for m in names:
                if got is None:
                    rows.append(_row(it, m, float("nan"), False, f"unparsed: {text[:200]}"))
                else:
                    rows.append(_row(it, m, float(got[0][m]), True, got[1]))
    elif kind == "trained":
        if not hasattr(backend, "score_items"):
            raise ValueError(
                "kind='trained' needs a judge.trained.TrainedJudge, not a chat backend"
            )
        values, notes = backend.score_items(checked, names)
        for it, row, note in zip(checked, values, notes, strict=True):
            for m, v in zip(names, row, strict=True):
                rows.append(_row(it, m, float(v), True, note))
    else:
        raise ValueError(f"kind: expected 'local', 'api' or 'trained', got {kind!r}")
    df = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    n_failed = int(df.loc[~df["parse_ok"].astype(bool), "item_id"].nunique())
    df.attrs.update(parse_failures=n_failed, retries=retries, kind=kind)
    return df


SCORE_COLUMNS = ["item_id", "system", "capability", "metric", "score", "parse_ok", "rationale"]
SCORE_COLUMNS += ["mass"]


def _row(
    it: Mapping[str, Any],
    metric: str,
    value: float,
    ok: bool,
    note: str,
    mass: float = float("nan"),
) -> dict[str, Any]:
    values = (it["item_id"], it["system"], it["capability"], metric, value, ok, note, mass)
    return dict(zip(SCORE_COLUMNS, values, strict=True))


# ---------------------------------------------------------------- pairwise


def pairwise(
    backend: Any,
    items_a: Sequence[Mapping[str, Any]],
    items_b: Sequence[Mapping[str, Any]],
    kind: str = "local",
    *,
    seed: int = 0,
    max_retries: int = 2,
    retry_temperature: float = 0.7,
    max_new_tokens: int = 256,
    desc: str | None = None,
) -> pd.DataFrame:
    """Preference between two systems' replies to the same contexts, asked in both orders.

    Per item: ``pref_a_ab`` / ``pref_a_ba`` = P(system a preferred) with a shown first / second
    (local: normalised P("A") vs P("B"); api: 1.0 or 0.0; NaN on a parse failure),
    ``verdict_ab`` / ``verdict_ba`` in {"a", "b", None}, ``verdict`` in {"a", "b", "tie",
    "invalid"} (tie when the two orders disagree), ``flipped``. ``df.attrs["flip_rate"]`` is the
    share of valid items whose verdict flips with the order (position bias);
    ``df.attrs["parse_failures"]`` counts unparsed prompts (api) after retries.
    """
    pairs = pair_items(items_a, items_b)
    n = len(pairs)
    if kind != "trained":
        ab = [pairwise_prompt(a, a["reply"], b["reply"], kind) for a, b in pairs]
        ba = [pairwise_prompt(a, b["reply"], a["reply"], kind) for a, b in pairs]
    if kind == "trained":  # pointwise: each reply scored alone, so the order cannot matter
        sa, _ = backend.score_items([a for a, _ in pairs])
        sb, _ = backend.score_items([b for _, b in pairs])
        diff = sa.mean(axis=1) - sb.mean(axis=1) if n else np.zeros(0)
        pref_ab = np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
        pref_ba = pref_ab.copy()  # b shown first: the same two scores, the same comparison
        means = zip(sa.mean(axis=1), sb.mean(axis=1), strict=True) if n else []
        notes = [f"mean scores {x:.2f} vs {y:.2f}" for x, y in means]
        rat_ab = rat_ba = notes
        failures = retries = 0
    elif kind == "local":
        for letter in ("A", "B"):
            if len(_pieces(backend, letter)) != 1:
                raise ValueError(f"pairwise: {letter!r} is not a single token for this tokenizer")
        probs = score_probs(backend, ab + ba, "", labels=("A", "B"))
        with np.errstate(invalid="ignore", divide="ignore"):
            p_first = probs[:, 0] / probs.sum(axis=1)  # P(reply shown as A wins)
        pref_ab, pref_ba = p_first[:n], 1.0 - p_first[n:]
        notes = [f"p(valid)={m:.2f}" for m in probs.sum(axis=1)]
        rat_ab, rat_ba = notes[:n], notes[n:]
        failures = retries = 0
    elif kind == "api":
        parsed, raw, retries = chat_with_retries(
            backend,
            ab + ba,
            parse_winner,
            seed=seed,
            max_retries=max_retries,
            retry_temperature=retry_temperature,
            max_new_tokens=max_new_tokens,
            desc=desc or "pairwise",
        )
        first = np.array([np.nan if p is None else float(p[0] == "A") for p in parsed])
        pref_ab, pref_ba = first[:n], 1.0 - first[n:]
        notes = [p[1] if p else f"unparsed: {t[:200]}" for p, t in zip(parsed, raw, strict=True)]
        rat_ab, rat_ba = notes[:n], notes[n:]
        failures = sum(p is None for p in parsed)
    else:
        raise ValueError(f"kind: expected 'local', 'api' or 'trained', got {kind!r}")
    rows = []
    for i, (a, b) in enumerate(pairs):
        v1, v2 = _side(pref_ab[i]), _side(pref_ba[i])
        verdict = "invalid" if None in (v1, v2) else (v1 if v1 == v2 else "tie")
        rows.append(
            {
                "item_id": a["item_id"],
                "capability": a["capability"],
                "system_a": a["system"],
                "system_b": b["system"],
                "pref_a_ab": pref_ab[i],
                "pref_a_ba": pref_ba[i],
                "verdict_ab": v1,
                "verdict_ba": v2,
                "verdict": verdict,
                "flipped": None if verdict == "invalid" else v1 != v2,
                "rationale_ab": rat_ab[i],
                "rationale_ba": rat_ba[i],
            }
        )
    df = pd.DataFrame(rows)
    valid = df[df["verdict"] != "invalid"] if n else df
    df.attrs.update(
        flip_rate=float(valid["flipped"].mean()) if len(valid) else float("nan"),
        parse_failures=failures,
        retries=retries,
        kind=kind,
    )
    return df


def _side(pref_a: float) -> str | None:
    if not np.isfinite(pref_a):
        return None
    return "a" if pref_a > 0.5 else "b" if pref_a < 0.5 else "tie"


def pairwise_summary(df: pd.DataFrame, alpha: float = 0.05) -> dict[str, float]:
    """Counts, share of system a among decisive verdicts (Wilson CI), tie and flip rates, and how
    often the first-shown reply wins (>0.5 = the judge favours position A)."""
    from salesman_utils.stats import wilson_ci

    counts = df["verdict"].value_counts()
    wins_a, wins_b = int(counts.get("a", 0)), int(counts.get("b", 0))
    ties, invalid = int(counts.get("tie", 0)), int(counts.get("invalid", 0))
    share, lo, hi = wilson_ci(wins_a, wins_a + wins_b, alpha=alpha)
    shown_first = pd.concat([df["verdict_ab"] == "a", df["verdict_ba"] == "b"])
    answered = pd.concat([df["verdict_ab"].notna(), df["verdict_ba"].notna()])
    valid = df[df["verdict"] != "invalid"]
    return {
        "n": len(df),
        "wins_a": wins_a,
        "wins_b": wins_b,
        "ties": ties,
        "invalid": invalid,
        "share_a": share,
        "share_a_lo": lo,
        "share_a_hi": hi,
        "tie_rate": ties / len(valid) if len(valid) else float("nan"),
        "flip_rate": float(valid["flipped"].mean()) if len(valid) else float("nan"),
        "first_position_rate": float(shown_first[answered].mean())
        if answered.any()
        else float("nan"),
    }
