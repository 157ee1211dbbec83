"""Plain statistics shared by both sides (agents' training code and the referee's metrics):
bootstrap and Wilson intervals, grouped summaries, and the smallest difference between two
proportions a sample can detect. Imports nothing of the package.

Every interval function returns ``(point, lo, hi)``; with too little data to resample the point is
still returned and the bounds are NaN (an interval is never invented).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

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


def min_detectable_difference(
    n_per_group: int, base_rate: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest rise of a proportion above `base_rate` that a two-sided two-proportion test
    with `n_per_group` per group detects with `power` at level `alpha` (normal approximation on
    Cohen's arcsine scale, as statsmodels' `NormalIndPower`): h = (z_{1-alpha/2} + z_power) *
    sqrt(2 / n), p2 = sin(asin(sqrt(p1)) + h / 2)^2, returned as p2 - p1 (NaN for n < 1; capped
    at 1 - p1 when even p2 = 1 is not detectable)."""
    if n_per_group < 1 or not 0 <= base_rate <= 1:
        return NAN
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    h = z * math.sqrt(2.0 / n_per_group)
    phi = math.asin(math.sqrt(base_rate)) + h / 2
    p2 = 1.0 if phi >= math.pi / 2 else math.sin(phi) ** 2
    return float(p2 - base_rate)
