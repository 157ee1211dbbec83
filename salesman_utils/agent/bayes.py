r"""Bayesian supervision: how good was each salesperson turn of a noisy corpus (docs/DESIGN.md §3.1)?

For agent turn t a latent z_t in {good, bad}. With c_t = (intent, preceding customer act) its
strategy cell, a_t the customer's next act, o_t the call outcome and v_t = 1 when `fact_check`
finds a violation in the turn's text (recomputed here, never read from `hidden`):

    theta_c ~ Beta(s m, s (1 - m))                      prior of a good turn in cell c
    P(z_t = good) = theta_{c_t}
    P(a_t, o_t, v_t | z) = phi_z(a_t | i_t) psi_z(o_t) kappa_z(v_t)   (independent given z)
    w_t = P(z_t = good | e_t)
        = theta phi_g psi_g kappa_g / (theta phi_g psi_g kappa_g + (1 - theta) phi_b psi_b kappa_b)

with i_t the turn's intent: a customer's reaction means different things after different moves
(an agreement after a close, a question after a pitch), so the reaction likelihood is per intent.

z is never observed, so EM fits theta, phi, psi, kappa on the training split: the E-step computes
w_t, the M-step sets theta_c to the mean of Beta(s m + sum_c w, s (1 - m) + sum_c (1 - w)) (the
Beta-Binomial update with expected counts, m the corpus-wide mean of w, s = `prior_strength`),
and phi, psi, kappa to smoothed expected frequencies. kappa_good(v = 1) is pinned near 0: a turn
that states a price or promise not in the knowledge base is bad whatever the customer said.
Every cell carries a 95% Beta credible interval.

Validation helpers: `naive_labels` (the call outcome, what "imitate successful calls" uses),
`hidden_quality` (the simulator's ground truth, for evaluation only) and `validate` (ROC-AUC and
Brier score with cluster-bootstrap 95% intervals, resampling whole calls).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from salesman_utils.artifacts import load_cached, reason
from salesman_utils.config import Profile, code_digest, paths
from salesman_utils.world.corpus import ACTS, INTENTS, OUTCOMES, Dialogue, fact_check, get_product

START = "start"  # the preceding act of the first turn of a call
PRIOR_ACTS = (START, *ACTS)
KAPPA_GOOD = 1e-6  # P(violation | good): the fact check is trusted, not learned


@dataclass
class TurnFeatures:
    """The visible evidence of every agent turn, in dialogue order then turn order."""

    dialogue: np.ndarray  # index of the dialogue in the input list
    cell: np.ndarray  # intent * len(PRIOR_ACTS) + preceding act
    next_act: np.ndarray  # index in ACTS
    outcome: np.ndarray  # index in OUTCOMES
    violation: np.ndarray  # 1 when fact_check flags the text


def turn_features(dialogues: Sequence[Dialogue]) -> TurnFeatures:
    """Evidence per agent turn from the visible fields only (intent, acts, outcome, text)."""
    rows: list[tuple[int, int, int, int, int]] = []
    for di, d in enumerate(dialogues):
        product = get_product(d.product_id)
        for i, t in enumerate(d.turns):
            if t.speaker != "agent":
                continue
            if t.intent not in INTENTS:
                raise ValueError(f"dialogue {d.id} turn {i}: unknown intent {t.intent!r}")
            prev = d.turns[i - 1].act if i > 0 else START
            nxt = d.turns[i + 1].act if i + 1 < len(d.turns) else "hangup"
            cell = INTENTS.index(t.intent) * len(PRIOR_ACTS) + PRIOR_ACTS.index(prev or START)
            bad = int(bool(fact_check(t.text, product, d.merchant)))
            rows.append((di, cell, ACTS.index(nxt), OUTCOMES.index(d.outcome), bad))
    arr = np.array(rows, dtype=int).reshape(-1, 5)
    return TurnFeatures(*(arr[:, k] for k in range(5)))


def cell_name(cell: int) -> tuple[str, str]:
    return INTENTS[cell // len(PRIOR_ACTS)], PRIOR_ACTS[cell % len(PRIOR_ACTS)]


@dataclass
class TurnQualityModel:
    """Fitted Beta-Binomial cell priors and evidence likelihoods (see the module doc)."""

    alpha: list[float]  # Beta posterior of theta_c: alpha_c, beta_c (per cell)
    beta: list[float]
    phi: list[list[list[float]]]  # [z][intent][act]: P(next act | z, intent), z = 0 bad, 1 good
    psi: list[list[float]]  # [z][outcome]
    kappa: list[float]  # [z]: P(violation | z)
    prior_mean: float
    prior_strength: float
    n_train: int
    iterations: int
    log_likelihood: list[float] = field(default_factory=list)

    def theta(self) -> np.ndarray:
        a, b = np.asarray(self.alpha), np.asarray(self.beta)
        return a / (a + b)

    def posterior_from(self, f: TurnFeatures) -> np.ndarray:
        return _e_step(self.theta(), self.phi, self.psi, self.kappa, f)[0]

    def posterior(self, dialogues: Sequence[Dialogue]) -> np.ndarray:
        """w_t = P(turn good | evidence), one per agent turn, dialogue order then turn order."""
        return self.posterior_from(turn_features(dialogues))

    def cell_table(self, level: float = 0.95, observed_only: bool = True) -> Any:
        """Per strategy cell: turns seen (n), posterior mean of theta and its Beta credible
        interval at `level`. Unseen cells keep the prior Beta(s m, s (1 - m))."""
        import pandas as pd

        a, b = np.asarray(self.alpha), np.asarray(self.beta)
        lo, hi = stats.beta.interval(level, a, b)
        n = a + b - self.prior_strength
        rows = [
            {
                "intent": cell_name(c)[0],
                "prev_act": cell_name(c)[1],
                "n": int(round(n[c])),
                "theta": a[c] / (a[c] + b[c]),
                "lo": lo[c],
                "hi": hi[c],
            }
            for c in range(len(a))
            if n[c] > 0.5 or not observed_only
        ]
        return pd.DataFrame(rows)

    def likelihood_table(self) -> Any:
        """P(evidence | z) for every next act and outcome, with the likelihood ratio good/bad."""
        import pandas as pd

        rows = [
            {
                "evidence": f"next act after {intent}: {a}",
                "p_good": self.phi[1][j][i],
                "p_bad": self.phi[0][j][i],
            }
            for j, intent in enumerate(INTENTS)
            for i, a in enumerate(ACTS)
        ]
        rows += [
            {"evidence": f"outcome: {o}", "p_good": self.psi[1][i], "p_bad": self.psi[0][i]}
            for i, o in enumerate(OUTCOMES)
        ]
        rows.append(
            {"evidence": "fact-check violation", "p_good": self.kappa[1], "p_bad": self.kappa[0]}
        )
        df = pd.DataFrame(rows)
        df["ratio"] = df.p_good / df.p_bad
        return df

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TurnQualityModel:
        return cls(**json.loads(text))


def _e_step(theta, phi, psi, kappa, f: TurnFeatures) -> tuple[np.ndarray, float]:
    phi, psi, kappa = np.asarray(phi), np.asarray(psi), np.asarray(kappa)
    kv = np.where(f.violation[None, :] == 1, kappa[:, None], 1.0 - kappa[:, None])
    intent = f.cell // len(PRIOR_ACTS)
    lik = phi[:, intent, f.next_act] * psi[:, f.outcome] * kv  # (2, n)
    good = theta[f.cell] * lik[1]
    bad = (1.0 - theta[f.cell]) * lik[0]
    total = good + bad
    return good / total, float(np.log(total).sum())


def _freq(values: np.ndarray, w: np.ndarray, k: int, smooth: float = 1.0) -> np.ndarray:
    counts = np.bincount(values, weights=w, minlength=k) + smooth
    return counts / counts.sum()


def _reaction_freq(f: TurnFeatures, w: np.ndarray, smooth: float = 1.0) -> np.ndarray:
    """Smoothed expected frequencies of the next act per intent: [intent][act]."""
    key = (f.cell // len(PRIOR_ACTS)) * len(ACTS) + f.next_act
    counts = np.bincount(key, weights=w, minlength=len(INTENTS) * len(ACTS)) + smooth
    counts = counts.reshape(len(INTENTS), len(ACTS))
    return counts / counts.sum(axis=1, keepdims=True)


def fit_turn_quality(
    train_dialogues: Sequence[Dialogue],
    prior_strength: float = 2.0,
    em_iterations: int = 50,
    tol: float = 1e-6,
) -> TurnQualityModel:
    """Fit the model by EM on the training dialogues (see the module doc for the equations).

    Initialization orients the latent classes: "good" starts as turns followed by a positive,
    agreeing or questioning customer, without a fact-check violation.
    """
    f = turn_features(train_dialogues)
    if f.cell.size == 0:
        raise ValueError("fit_turn_quality: no agent turns in the training dialogues")
    n_cells = len(INTENTS) * len(PRIOR_ACTS)
    warm = np.isin(f.next_act, [ACTS.index(a) for a in ("positive", "agreement", "question")])
    w = np.where(f.violation == 1, 0.02, np.where(warm, 0.8, 0.3))
    history: list[float] = []
    alpha = beta = np.ones(n_cells)
    phi = psi = kappa = None
    for _ in range(max(1, em_iterations)):
        m = float(w.mean())
        alpha = prior_strength * m + np.bincount(f.cell, weights=w, minlength=n_cells)
        beta = prior_strength * (1 - m) + np.bincount(f.cell, weights=1 - w, minlength=n_cells)
        phi = [_reaction_freq(f, 1 - w), _reaction_freq(f, w)]
        psi = [_freq(f.outcome, 1 - w, len(OUTCOMES)), _freq(f.outcome, w, len(OUTCOMES))]
        k_bad = (np.sum((1 - w) * f.violation) + 0.5) / (np.sum(1 - w) + 1.0)
        kappa = [float(k_bad), KAPPA_GOOD]
        w, ll = _e_step(alpha / (alpha + beta), phi, psi, kappa, f)
        if history and abs(ll - history[-1]) < tol * abs(ll):
            history.append(ll)
            break
        history.append(ll)
    return TurnQualityModel(
        alpha=alpha.tolist(),
        beta=beta.tolist(),
        phi=[p.tolist() for p in phi],
        psi=[p.tolist() for p in psi],
        kappa=kappa,
        prior_mean=float(w.mean()),
        prior_strength=prior_strength,
        n_train=int(f.cell.size),
        iterations=len(history),
        log_likelihood=history,
    )


# ---------------------------------------------------------------- labels and validation


def naive_labels(dialogues: Sequence[Dialogue]) -> np.ndarray:
    """The naive label of every agent turn: 1.0 when its call succeeded, else 0.0."""
    return np.array(
        [float(d.outcome == "success") for d in dialogues for t in d.turns if t.speaker == "agent"]
    )


def hidden_quality(dialogues: Sequence[Dialogue]) -> np.ndarray:
    """The simulator's ground truth per agent turn (EVALUATION ONLY: never train on it)."""
    out = []
    for d in dialogues:
        for i, t in enumerate(d.turns):
            if t.speaker == "agent":
                if "quality" not in t.hidden:
                    raise ValueError(
                        f"dialogue {d.id} turn {i}: no hidden quality (loaded "
                        "without hidden fields?)"
                    )
                out.append(int(t.hidden["quality"]))
    return np.array(out, dtype=int)


def _dialogue_index(dialogues: Sequence[Dialogue]) -> np.ndarray:
    return np.array([i for i, d in enumerate(dialogues) for t in d.turns if t.speaker == "agent"])


def validate(
    dialogues: Sequence[Dialogue],
    scores: dict[str, np.ndarray],
    n_boot: int = 1000,
    seed: int = 0,
) -> Any:
    """ROC-AUC and Brier score of each score vector against the hidden quality, with 95%
    intervals from a cluster bootstrap over calls (turns of one call are not independent).

    Returns a DataFrame: score, metric (auc | brier), value, lo, hi, n_turns.
    """
    import pandas as pd
    from sklearn.metrics import brier_score_loss, roc_auc_score

    y = hidden_quality(dialogues)
    groups = _dialogue_index(dialogues)
    members = [np.flatnonzero(groups == g) for g in range(len(dialogues))]
    rng = np.random.default_rng(seed)
    draws = [
        np.concatenate([members[g] for g in rng.integers(0, len(dialogues), len(dialogues))])
        for _ in range(n_boot)
    ]
    rows = []
    for name, s in scores.items():
        s = np.asarray(s, dtype=float)
        if s.shape != y.shape:
            raise ValueError(f"validate: score {name!r} has {s.size} values, {y.size} agent turns")
        for metric, fn in (("auc", roc_auc_score), ("brier", brier_score_loss)):
            boot = [fn(y[i], s[i]) for i in draws if 0 < y[i].sum() < i.size]
            lo, hi = np.percentile(boot, [2.5, 97.5]) if boot else (np.nan, np.nan)
            rows.append(
                {
                    "score": name,
                    "metric": metric,
                    "value": float(fn(y, s)),
                    "lo": float(lo),
                    "hi": float(hi),
                    "n_turns": int(y.size),
                }
            )
    return pd.DataFrame(rows)


def auc_difference(
    dialogues: Sequence[Dialogue], a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """AUC(a) - AUC(b) against the hidden quality, with a cluster-bootstrap 95% interval."""
    from sklearn.metrics import roc_auc_score

    y, groups = hidden_quality(dialogues), _dialogue_index(dialogues)
    members = [np.flatnonzero(groups == g) for g in range(len(dialogues))]
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        i = np.concatenate([members[g] for g in rng.integers(0, len(dialogues), len(dialogues))])
        if 0 < y[i].sum() < i.size:
            diffs.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    point = float(roc_auc_score(y, a) - roc_auc_score(y, b))
    lo, hi = np.percentile(diffs, [2.5, 97.5]) if diffs else (np.nan, np.nan)
    return point, float(lo), float(hi)


def paired_auc_table(
    dialogues: Sequence[Dialogue],
    scores: dict[str, np.ndarray],
    reference: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> Any:
    """AUC(reference) - AUC(other) for every other score, paired on the same resampled calls.

    Two scores' own intervals can overlap while their difference is clearly non-zero (they are
    read on the same turns), so a ranking claim needs this paired interval, not the two marginals.
    """
    import pandas as pd

    if reference not in scores:
        raise KeyError(f"paired_auc_table: reference score {reference!r} not in {sorted(scores)}")
    rows = []
    for name, s in scores.items():
        if name == reference:
            continue
        d, lo, hi = auc_difference(dialogues, scores[reference], s, n_boot=n_boot, seed=seed)
        rows.append(
            {
                "score": reference,
                "minus": name,
                "auc_diff": d,
                "lo": lo,
                "hi": hi,
                "n_turns": int(np.asarray(s).size),
            }
        )
    return pd.DataFrame(rows)


def calibration_frame(y: np.ndarray, scores: dict[str, np.ndarray], bins: int = 10) -> Any:
    """Reliability-diagram points: per score and probability bin, mean predicted vs observed."""
    import pandas as pd

    rows = []
    edges = np.linspace(0, 1, bins + 1)
    for name, s in scores.items():
        idx = np.clip(np.digitize(s, edges[1:-1]), 0, bins - 1)
        for b in np.unique(idx):
            m = idx == b
            rows.append(
                {
                    "score": name,
                    "predicted": float(s[m].mean()),
                    "observed": float(y[m].mean()),
                    "n": int(m.sum()),
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- cached accessor


def _corpus_digest(dialogues: Sequence[Dialogue]) -> str:
    h = hashlib.sha256()
    for d in dialogues:
        h.update(
            json.dumps(
                [
                    d.id,
                    d.product_id,
                    d.outcome,
                    [(t.speaker, t.text, t.intent, t.act) for t in d.turns],
                ]
            ).encode()
        )
    return h.hexdigest()[:16]


def _cache_dir(profile: Profile, splits: dict[str, Sequence[Dialogue]]) -> Path:
    b = profile.bayes
    # the posterior's evidence v_t comes from the agent's fact check: its code is in the key
    blob = [b.prior_strength, b.em_iterations, {k: _corpus_digest(v) for k, v in splits.items()}]
    blob.append(code_digest("agent.bayes", "world.knowledge", "world.factcheck"))
    key = hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]
    return paths(profile).artifacts / "bayes" / key


def posteriors_for(
    profile: Profile, splits: dict[str, Sequence[Dialogue]]
) -> dict[str, np.ndarray]:
    """Posteriors for every split of `splits`, the model fitted on ``splits["train"]`` only.

    Cached under ``paths(profile).artifacts/bayes/<hash>/`` (hash of the bayes settings and the
    corpus content), so notebooks 02-04 share one fit; the fitted model is ``model.json`` there.
    """
    if "train" not in splits:
        raise KeyError("posteriors_for: splits needs a 'train' split (the model is fitted on it)")
    folder = _cache_dir(profile, splits)
    files = {name: folder / f"posterior_{name}.npy" for name in splits}
    if all(f.exists() for f in files.values()) and (folder / "model.json").exists():
        # a cache: an unreadable file (truncated .npy, damaged json) is moved aside and refitted
        model_ok = load_cached(folder / "model.json", _read_model) is not None
        out = {name: load_cached(f, np.load) for name, f in files.items()} if model_ok else {}
        if model_ok and all(v is not None for v in out.values()):
            return out
    b = profile.bayes
    model = fit_turn_quality(splits["train"], b.prior_strength, b.em_iterations)
    folder.mkdir(parents=True, exist_ok=True)
    out = {name: model.posterior(dl) for name, dl in splits.items()}
    for name, arr in out.items():
        np.save(files[name], arr)
    (folder / "model.json").write_text(model.to_json())
    return out


def load_model(profile: Profile, splits: dict[str, Sequence[Dialogue]]) -> TurnQualityModel:
    """The model `posteriors_for` fitted for these splits (fitted and cached when missing)."""
    posteriors_for(profile, splits)
    return _read_model(_cache_dir(profile, splits) / "model.json")


def _read_model(path: Path) -> TurnQualityModel:
    """The fitted model cached at `path` (a JSON or field error names the file)."""
    try:
        return TurnQualityModel.from_json(path.read_text())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a fitted turn-quality model ({reason(exc)})") from None
