"""Audit the corpus against its hidden truth: how hard is a turn's hidden quality to read from what
is visible (docs/DESIGN.md §1-2)?

Referee side: this module reads `Turn.hidden` and trains probes on the hidden labels of the train
split. Agents, training, rewards and the script library must never import it (tests/test_boundary.py
checks the import boundary).

Instruments, all fitted on `train` and scored on held-out `test` calls, one value per agent turn in
the order of `bayes.hidden_quality(test)`:
- `text_probe_scores`: the agent line alone (TF-IDF 1-2-grams or sentence embeddings + logistic
  regression);
- `intent_prior_scores`: P(good | intent), Laplace-smoothed;
- `structure_scores`: gradient boosting over the visible structure (intents so far, last customer
  act and objection, stages done, position): the best rule over visible structure;
- `outcome_scores`: the naive label (the call succeeded).
`quality_baselines` puts them side by side through `bayes.validate` (cluster bootstrap over calls).
`checker_detection` measures the visible fact checker as a detector of the hidden unfaithful label,
`expert_text_verbatim_share` whether the hidden expert reference is copied from visible text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from salesman_utils.agent import bayes
from salesman_utils.stats import wilson_ci
from salesman_utils.world.corpus import (
    INTENTS,
    Dialogue,
    Product,
    _embed,
    fact_check,
    load_products,
    turn_frame,
)

OUTCOME = "naive (call outcome)"
INTENT_PRIOR = "P(good | intent)"
STRUCTURE = "structure GBM"
TFIDF = "TF-IDF probe"
EMBEDDING = "embedding probe"
POSTERIOR = "posterior w"

_CATEGORICAL = ["intent", "prev_intent", "prev2_intent", "last_act", "last_objection"]


def _agent_texts(dialogues: Sequence[Dialogue]) -> list[str]:
    return [t.text for d in dialogues for t in d.turns if t.speaker == "agent"]


def _need_two_classes(y: np.ndarray, what: str) -> None:
    if len(np.unique(y)) < 2:
        raise ValueError(f"{what}: the train split's agent turns are all of one quality class")


# ---------------------------------------------------------------- quality probes


def text_probe_scores(
    train: Sequence[Dialogue],
    test: Sequence[Dialogue],
    kind: Literal["tfidf", "embedding"] = "tfidf",
    embedder: Any = None,
    *,
    max_train_turns: int = 3000,
    seed: int = 0,
) -> np.ndarray:
    """P(good) of every agent turn of `test` from its text ALONE. `tfidf`: word 1-2-gram TF-IDF
    + logistic regression on all train turns; `embedding`: sentence embeddings (`embedder`: a
    SentenceTransformer, a function texts -> vectors, or a Profile) + logistic regression on at most
    `max_train_turns` train turns drawn with `seed`. The regularization is cross-validated."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    x_train, y = _agent_texts(train), bayes.hidden_quality(train)
    _need_two_classes(y, "text_probe_scores")
    x_test = _agent_texts(test)
    # C chosen by 3-fold cross-validated ROC-AUC on train: a probe too regularized to use a
    # strong word would flatter the corpus
    clf = GridSearchCV(
        LogisticRegression(max_iter=3000), {"C": [0.1, 1.0, 10.0, 100.0]}, cv=3, scoring="roc_auc"
    )
    if kind == "tfidf":
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
        clf.fit(vec.fit_transform(x_train), y)
        return clf.predict_proba(vec.transform(x_test))[:, 1]
    if kind != "embedding":
        raise ValueError(f"text_probe_scores: kind must be 'tfidf' or 'embedding', got {kind!r}")
    if embedder is None:
        raise ValueError("text_probe_scores: kind='embedding' needs an embedder")
    idx = np.arange(len(x_train))
    if len(idx) > max_train_turns:
        idx = np.sort(np.random.default_rng(seed).choice(len(idx), max_train_turns, replace=False))
    _need_two_classes(y[idx], "text_probe_scores")
    clf.fit(_embed([x_train[i] for i in idx], embedder), y[idx])
    return clf.predict_proba(_embed(x_test, embedder))[:, 1]


def intent_prior_scores(
    train: Sequence[Dialogue], test: Sequence[Dialogue], alpha: float = 1.0
) -> np.ndarray:
    """P(good | intent) on train with Laplace smoothing, (k + alpha) / (n + 2 alpha), per test
    agent turn (an intent never seen in train gets 0.5)."""
    y = bayes.hidden_quality(train)
    intents = [t.intent for d in train for t in d.turns if t.speaker == "agent"]
    frame = pd.DataFrame({"intent": intents, "y": y}).groupby("intent")["y"].agg(["sum", "count"])
    rate = ((frame["sum"] + alpha) / (frame["count"] + 2 * alpha)).to_dict()
    return np.array(
        [rate.get(t.intent, 0.5) for d in test for t in d.turns if t.speaker == "agent"],
        dtype=float,
    )


def visible_structure(dialogues: Sequence[Dialogue]) -> pd.DataFrame:
    """One row per agent turn (order of `bayes.hidden_quality`), visible structure only: the
    current and previous two agent intents, the last customer act and objection type, the stages
    (intents) already done, the position in the call. No text, no outcome, nothing after the turn."""
    df = turn_frame(dialogues)
    call = df["dialogue_id"]
    cust = df["speaker"].eq("customer")
    df["last_act"] = df["act"].where(cust).groupby(call).ffill().fillna("start")
    objection = df["objection_type"].where(cust & df["objection_type"].notna(), "none")
    df["last_objection"] = objection.where(cust).groupby(call).ffill().fillna("none")
    ag = df[df["speaker"].eq("agent")].copy()
    by_call = ag.groupby("dialogue_id", sort=False)
    ag["prev_intent"] = by_call["intent"].shift(1).fillna("none")
    ag["prev2_intent"] = by_call["intent"].shift(2).fillna("none")
    ag["agent_turn"] = by_call.cumcount()
    ag["turn_index"] = ag["index"]
    for intent in INTENTS:
        before = ag["intent"].eq(intent).astype(int).groupby(ag["dialogue_id"]).shift(1)
        ag[f"done_{intent}"] = before.fillna(0).astype(int).groupby(ag["dialogue_id"]).cummax()
    cols = _CATEGORICAL + ["agent_turn", "turn_index"] + [f"done_{i}" for i in INTENTS]
    return ag[cols].reset_index(drop=True)


def structure_scores(
    train: Sequence[Dialogue], test: Sequence[Dialogue], seed: int = 0
) -> np.ndarray:
    """P(good) per test agent turn from a seeded HistGradientBoostingClassifier over
    `visible_structure`: the best rule over the visible intent/act sequence."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    y = bayes.hidden_quality(train)
    _need_two_classes(y, "structure_scores")
    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), _CATEGORICAL)],
        remainder="passthrough",
    )
    model = make_pipeline(encode, HistGradientBoostingClassifier(random_state=seed))
    model.fit(visible_structure(train), y)
    return model.predict_proba(visible_structure(test))[:, 1]


def outcome_scores(test: Sequence[Dialogue]) -> np.ndarray:
    """The naive label: 1.0 for every agent turn of a successful call (`bayes.naive_labels`)."""
    return bayes.naive_labels(test)


def baseline_scores(
    train: Sequence[Dialogue],
    test: Sequence[Dialogue],
    embedder: Any = None,
    *,
    max_embed_turns: int = 3000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The baselines' score vectors on `test`, by display name; the embedding probe only when an
    `embedder` is given."""
    scores = {
        OUTCOME: outcome_scores(test),
        INTENT_PRIOR: intent_prior_scores(train, test),
        STRUCTURE: structure_scores(train, test, seed=seed),
        TFIDF: text_probe_scores(train, test, "tfidf"),
    }
    if embedder is not None:
        scores[EMBEDDING] = text_probe_scores(
            train, test, "embedding", embedder, max_train_turns=max_embed_turns, seed=seed
        )
    return scores


def quality_baselines(
    train: Sequence[Dialogue],
    test: Sequence[Dialogue],
    posterior: np.ndarray | None = None,
    embedder: Any = None,
    *,
    max_embed_turns: int = 3000,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """`bayes.validate` (ROC-AUC and Brier, cluster-bootstrap 95% intervals) of the posterior, when
    given, beside the baselines of `baseline_scores`."""
    scores = {} if posterior is None else {POSTERIOR: np.asarray(posterior, dtype=float)}
    scores |= baseline_scores(train, test, embedder, max_embed_turns=max_embed_turns, seed=seed)
    return bayes.validate(test, scores, n_boot=n_boot, seed=seed)


def text_only_auc(
    dialogues: Sequence[Dialogue], embedder_or_profile: Any, *, seed: int = 0, max_turns: int = 1500
) -> dict[str, float]:
    """Within one corpus: the embedding probe trained on 70% of merchants (at most `max_turns`
    agent turns), ROC-AUC on the other merchants' calls."""
    from sklearn.metrics import roc_auc_score

    merchants = np.array(sorted({d.merchant.id for d in dialogues}))
    np.random.default_rng(seed).shuffle(merchants)
    held = set(merchants[int(0.7 * len(merchants)) :])
    train = [d for d in dialogues if d.merchant.id not in held]
    test = [d for d in dialogues if d.merchant.id in held]
    y_train, y = bayes.hidden_quality(train), bayes.hidden_quality(test)
    n = {"n_train": int(min(y_train.size, max_turns)), "n_test": int(y.size)}
    if len(set(y_train)) < 2 or len(set(y)) < 2:
        return {"auc": math.nan, **n}
    s = text_probe_scores(
        train, test, "embedding", embedder_or_profile, max_train_turns=max_turns, seed=seed
    )
    return {"auc": float(roc_auc_score(y, s)), **n}


# ---------------------------------------------------------------- checker and reference audits


def checker_detection(
    dialogues: Sequence[Dialogue], products: dict[str, Product] | None = None
) -> dict[str, float]:
    """The visible fact checker as a detector of the hidden unfaithful label, over all agent turns:
    flagged = `fact_check(text, product, merchant)` is non-empty (recomputed, `hidden["violations"]`
    is not read), truth = `not hidden["faithful"]`. Counts, recall and precision with Wilson 95%
    intervals (NaN when undefined)."""
    products = products if products is not None else load_products()
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for d in dialogues:
        product = products[d.product_id]
        for i, t in enumerate(d.turns):
            if t.speaker != "agent":
                continue
            if "faithful" not in t.hidden:
                raise ValueError(f"dialogue {d.id} turn {i}: no hidden 'faithful' label")
            flagged = bool(fact_check(t.text, product, d.merchant))
            unfaithful = not t.hidden["faithful"]
            key = ("t" if flagged == unfaithful else "f") + ("p" if flagged else "n")
            counts[key] += 1
    recall = wilson_ci(counts["tp"], counts["tp"] + counts["fn"])
    precision = wilson_ci(counts["tp"], counts["tp"] + counts["fp"])
    out: dict[str, float] = {**counts, "n": sum(counts.values())}
    for name, (p, lo, hi) in (("recall", recall), ("precision", precision)):
        out |= {name: p, f"{name}_lo": lo, f"{name}_hi": hi}
    return out


def _norm_line(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip().rstrip(".!?,;:…").rstrip()


def expert_text_verbatim_share(dialogues: Sequence[Dialogue]) -> dict[str, float]:
    """Share of agent turns (with a hidden `expert_text`) whose expert text appears verbatim among
    the visible agent turn texts of `dialogues` (lower-cased, whitespace collapsed, final
    punctuation stripped), with its Wilson 95% interval. The design's target is 0: the expert
    reference comes from a held-out part of the bank."""
    visible = {_norm_line(t.text) for d in dialogues for t in d.turns if t.speaker == "agent"}
    refs = [
        _norm_line(t.hidden["expert_text"])
        for d in dialogues
        for t in d.turns
        if t.speaker == "agent" and t.hidden.get("expert_text")
    ]
    k = sum(r in visible for r in refs)
    share, lo, hi = wilson_ci(k, len(refs))
    return {"share": share, "lo": lo, "hi": hi, "k": k, "n": len(refs)}


# ---------------------------------------------------------------- notebook 01's audit table


def hidden_truth_audit(
    train: Sequence[Dialogue],
    test: Sequence[Dialogue],
    all_dialogues: Sequence[Dialogue],
    embedder: Any = None,
    *,
    products: dict[str, Product] | None = None,
    max_embed_turns: int = 3000,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per instrument: key, instrument, measure, value, lo, hi, n. Probes are fitted on
    `train` and scored on `test`; the checker and the verbatim share use `all_dialogues`."""
    val = quality_baselines(
        train, test, embedder=embedder, max_embed_turns=max_embed_turns, n_boot=n_boot, seed=seed
    )
    auc = val[val["metric"] == "auc"].set_index("score")
    keys = {
        TFIDF: "text_probe_auc_tfidf",
        EMBEDDING: "text_probe_auc_embedding",
        STRUCTURE: "structure_gbm_auc",
        INTENT_PRIOR: "intent_prior_auc",
        OUTCOME: "outcome_label_auc",
    }
    rows = [
        {
            "key": key,
            "instrument": name,
            "measure": "ROC-AUC vs hidden quality (test turns)",
            **{c: float(auc.loc[name, c]) for c in ("value", "lo", "hi")},
            "n": int(auc.loc[name, "n_turns"]),
        }
        for name, key in keys.items()
        if name in auc.index
    ]
    check = checker_detection(all_dialogues, products)
    for m in ("recall", "precision"):
        rows.append(
            {
                "key": f"checker_{m}",
                "instrument": "fact checker vs hidden unfaithful",
                "measure": f"{m} (all agent turns)",
                "value": check[m],
                "lo": check[f"{m}_lo"],
                "hi": check[f"{m}_hi"],
                "n": int(check["tp"] + (check["fn"] if m == "recall" else check["fp"])),
            }
        )
    share = expert_text_verbatim_share(all_dialogues)
    rows.append(
        {
            "key": "expert_text_verbatim_share",
            "instrument": "sanity check (0 by design: the banks are disjoint): hidden expert_text "
            "found verbatim in visible agent turns",
            "measure": "share (all agent turns)",
            **{c: share[c] for c in ("lo", "hi")},
            "value": share["share"],
            "n": int(share["n"]),
        }
    )
    return pd.DataFrame(rows, columns=["key", "instrument", "measure", "value", "lo", "hi", "n"])


def audit_metrics(table: pd.DataFrame) -> dict[str, float]:
    """`hidden_truth_audit`'s rows as flat metrics: key, key_lo, key_hi, key_n."""
    out: dict[str, float] = {}
    for row in table.itertuples(index=False):
        out |= {
            row.key: row.value,
            f"{row.key}_lo": row.lo,
            f"{row.key}_hi": row.hi,
            f"{row.key}_n": row.n,
        }
    return out
