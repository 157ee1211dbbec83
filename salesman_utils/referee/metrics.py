"""Automatic metrics and uncertainty: bootstrap and Wilson intervals, ROUGE-L, distinct-n,
embedding similarity, fact violations per 100 replies, and grouped summaries with intervals.

Every interval function returns ``(point, lo, hi)``; with too little data to resample the point is
still returned and the bounds are NaN (an interval is never invented).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from salesman_utils.config import Profile

# the interval helpers are plain statistics, shared with agent-side modules (training): they live
# in `stats`, which imports nothing of the referee; re-exported here
from salesman_utils.stats import NAN

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
    from salesman_utils.models import embed

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
    from salesman_utils.world.corpus import (
        fact_check,  # lazy: corpus is heavier and not needed by the other metrics
    )

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
