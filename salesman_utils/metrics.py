"""Automatic metrics and uncertainty: bootstrap and Wilson intervals, ROUGE-L, distinct-n,
embedding similarity, fact violations per 100 replies, and grouped summaries with intervals.

Every interval function returns ``(point, lo, hi)``; with too little data to resample the point is
still returned and the bounds are NaN (an interval is never invented).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:
    from .config import Profile

Interval = tuple[float, float, float]
NAN = float("nan")


def _finite(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


def bootstrap_ci(
    values: Any,
    stat: Callable[..., Any] = np.mean,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Interval:
    """Percentile bootstrap interval of `stat` over the finite `values`: (point, lo, hi).

    Percentile rather than BCa: BCa is undefined when every resample is equal (all judges' scores
    identical happens at small n), and the percentile interval is what readers expect.
    n_valid = 0 -> (nan, nan, nan); n_valid = 1 -> (value, nan, nan).
    """
    x = _finite(values)
    if x.size == 0:
        return NAN, NAN, NAN
    point = float(stat(x))
    if x.size < 2 or n < 2:
        return point, NAN, NAN
    if np.all(x == x[0]):  # no variation to resample: the interval is the point
        return point, point, point
    res = stats.bootstrap(
        (x,),
        stat,
        n_resamples=n,
        confidence_level=1 - alpha,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return point, float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_bootstrap_diff(
    a: Any,
    b: Any,
    stat: Callable[..., Any] = np.mean,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    relative: bool = False,
) -> Interval:
    """Interval of stat(a) - stat(b) (or its ratio to stat(b) if `relative`), resampling the pairs
    (a[i], b[i]) together so that per-item difficulty cancels. Pairs with a NaN are dropped.
    `stat` must accept ``axis`` (np.mean, np.median)."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired_bootstrap_diff: a has {a.size} values, b has {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size == 0:
        return NAN, NAN, NAN

    def effect(x: np.ndarray, y: np.ndarray, axis: int = -1) -> Any:
        d = stat(x, axis=axis) - stat(y, axis=axis)
        return d / stat(y, axis=axis) if relative else d

    point = float(effect(a, b))
    if a.size < 2 or n < 2:
        return point, NAN, NAN
    d = a - b
    if np.all(d == d[0]) and (not relative or np.all(b == b[0])):  # nothing varies: no interval
        return point, point, point
    res = stats.bootstrap(
        (a, b),
        effect,
        paired=True,
        vectorized=True,
        n_resamples=n,
        confidence_level=1 - alpha,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return point, float(res.confidence_interval.low), float(res.confidence_interval.high)


def wilson_ci(k: int, n: int, alpha: float = 0.05) -> Interval:
    """Binomial proportion k/n with its Wilson score interval; n = 0 -> NaNs."""
    if n <= 0:
        return NAN, NAN, NAN
    if not 0 <= k <= n:
        raise ValueError(f"wilson_ci: need 0 <= k <= n, got k={k}, n={n}")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=1 - alpha, method="wilson")
    return k / n, float(ci.low), float(ci.high)


# ---------------------------------------------------------------- text metrics


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(pred: str | Sequence[str], ref: str | Sequence[str]) -> float | np.ndarray:
    """ROUGE-L F1 in [0, 1] of one prediction (float) or of aligned lists (array)."""
    if isinstance(pred, str) and isinstance(ref, str):
        return float(_rouge_scorer().score(ref, pred)["rougeL"].fmeasure)
    if isinstance(pred, str) or isinstance(ref, str) or len(pred) != len(ref):
        raise ValueError("rouge_l: give two strings or two lists of the same length")
    return np.array([rouge_l(p, r) for p, r in zip(pred, ref, strict=True)], dtype=float)


def _words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() else " " for c in text).split()


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Unique n-grams / all n-grams over all texts (lower-cased words); NaN if there are none."""
    grams = [tuple(w[i : i + n]) for t in texts for w in [_words(t)] for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else NAN


def embedding_similarity(
    preds: Sequence[str], refs: Sequence[str], profile: Profile | None = None
) -> np.ndarray:
    """Cosine similarity of each prediction with its reference (profile's embedder), in [-1, 1]."""
    if len(preds) != len(refs):
        raise ValueError(f"embedding_similarity: {len(preds)} preds vs {len(refs)} refs")
    if not len(preds):
        return np.zeros(0)
    from .models import embed

    e = embed(list(preds) + list(refs), profile)
    return np.sum(e[: len(preds)] * e[len(preds) :], axis=1).astype(float)


def _aligned(x: Any, n: int, what: str) -> list[Any]:
    out = list(x) if isinstance(x, (list, tuple)) else [x] * n
    if len(out) != n:
        raise ValueError(f"violations: {n} replies vs {len(out)} {what}")
    return out


def violation_counts(replies: Sequence[str], products: Any, merchants: Any = None) -> np.ndarray:
    """Number of fact-check violations per reply (`corpus.fact_check`). `products` (and the
    optional `merchants`, whose own metrics may be quoted) are one object for all replies or a
    list aligned with them."""
    from .corpus import fact_check  # lazy: corpus is heavier and not needed by the other metrics

    prods = _aligned(products, len(replies), "products")
    merch = _aligned(merchants, len(replies), "merchants")
    return np.array(
        [len(fact_check(r, p, m)) for r, p, m in zip(replies, prods, merch, strict=True)], float
    )


def violations_per_100(replies: Sequence[str], products: Any, merchants: Any = None) -> float:
    """Fact violations per 100 replies (0 = none; NaN for no replies). For an interval,
    bootstrap ``100 * violation_counts(...)``."""
    counts = violation_counts(replies, products, merchants)
    return float(100 * counts.mean()) if counts.size else NAN


# ---------------------------------------------------------------- grouped summaries


def summarize(
    df: pd.DataFrame,
    by: Sequence[str] | str = ("system",),
    value: str = "score",
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Mean of `value` per group with a bootstrap interval: columns *by, mean, lo, hi, n
    (n counts finite values; NaN scores, e.g. judge parse failures, are left out, not zeroed)."""
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*by, value] if c not in df.columns]
    if missing:
        raise KeyError(f"summarize: missing columns {missing} (have {list(df.columns)})")
    rows = []
    for key, grp in df.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, lo, hi = bootstrap_ci(grp[value].to_numpy(), n=n_boot, seed=seed, alpha=alpha)
        n_ok = int(np.isfinite(grp[value].to_numpy(dtype=float)).sum())
        rows.append(
            {**dict(zip(by, key, strict=True)), "mean": mean, "lo": lo, "hi": hi, "n": n_ok}
        )
    return pd.DataFrame(rows, columns=[*by, "mean", "lo", "hi", "n"])
