"""How the simulated customer reads a rep's free-text reply (the referee's ears).

`CustomerPerception.fit` learns from lines of the HELD-OUT rep bank (`agent_templates_heldout.yaml`)
filled for many sampled merchants and products (`Realizer(..., heldout=True)`), never from corpus
turns, so that an agent copying the visible bank (the script library, SFT) is not heard better for
it, and an agent's own tagger (fitted on the training split) is not the customer's:

* intent: embedding (the profile's sentence embedder) + logistic regression over the six intents;
* adapted (is the move fitted to THIS merchant, `CustomerSimulator.personalization_due`):
  - Opening: the register (brief / warm, a second logistic regression fitted on the held-out
    Opening lines) is the one the merchant's latent decision style wants (`OPENING_REGISTER`);
  - Business_Analysis: the reply names the store's weakest metric (its label), or quotes that
    metric's value (or its peer median) without naming another metric;
  - Product_Introduction: the reply quotes this merchant's data (a metric or peer median, the
    weakest metric's label, or the rep's words for one of its pain points);
  - other intents: always (nothing to adapt);
* faithful: the referee's own check (`referee.facts.check`) finds nothing.

The referee may read hidden fields: the decision style and pain points are latent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from ..factcheck import Product, load_products
from ..intents import TextEmbedder
from ..simulator import (
    INTENTS,
    METRICS,
    OPENING_REGISTER,
    Dialogue,
    MerchantProfile,
    Realizer,
    eligible_products,
    fmt_metric,
    load_banks,
    metric_ratios,
    sample_merchant,
)
from . import facts


@dataclass
class Heard:
    """What the customer heard in one reply."""

    intent: str
    adapted: bool
    faithful: bool
    findings: list[facts.Finding] = field(default_factory=list)
    register: str | None = None


def heldout_lines(
    n_merchants: int = 40, seed: int = 0
) -> tuple[list[str], list[str], list[str], list[str]]:
    """(texts, intents, opening texts, their registers) written from the held-out bank for
    `n_merchants` sampled merchants, each with one eligible product (adapted and not, faithful
    and now and then not, every objection of the merchant's repertoire)."""
    rng = np.random.default_rng([seed, 13])
    products = load_products()
    names = load_banks()["personas"]["agents"]["names"]
    texts, labels, openings, registers = [], [], [], []
    for i in range(n_merchants):
        m = sample_merchant(rng, 10_000 + i)
        options = eligible_products(m, products)
        p = options[int(rng.integers(len(options)))]
        real = Realizer(m, p, agent_name=str(rng.choice(names)), rng=rng)
        for intent in INTENTS:
            objections = m.objection_repertoire if intent == "Objection_Handling" else [None]
            for objection in objections:
                for adapted in (True, False):
                    faithful = bool(rng.random() > 0.15)
                    line = real.agent_text(intent, adapted, faithful, objection, heldout=True)
                    texts.append(line)
                    labels.append(intent)
                    if intent == "Opening":
                        right = OPENING_REGISTER[m.decision_style]
                        openings.append(line)
                        registers.append(right if adapted else ({"brief", "warm"} - {right}).pop())
    return texts, labels, openings, registers


def _mentioned_values(text: str) -> set[float]:
    return {x.value for x in facts.mentions(text) if x.kind in {"number", "percentage"}}


def _metric_value(key: str, value: float) -> float:
    return round(float(value), 1) if key in {"rating", "conversion"} else float(round(value))


def quotes_weakest_metric(text: str, merchant: MerchantProfile) -> bool:
    """Business_Analysis adapted: names the weakest metric, or quotes its value (or its peer
    median) without naming another metric."""
    labels = {k: v["label"] for k, v in load_banks()["personas"]["metrics"].items()}
    ratios = metric_ratios(merchant)
    gap = min(ratios, key=ratios.get)
    low = (text or "").lower()
    if labels[gap].lower() in low:
        return True
    values = _mentioned_values(text)
    gap_values = {
        _metric_value(gap, merchant.metrics[gap]),
        _metric_value(gap, merchant.peer_medians[gap]),
    }
    others = any(labels[k].lower() in low for k in METRICS if k != gap)
    return bool(values & gap_values) and not others


def quotes_merchant_data(text: str, merchant: MerchantProfile) -> bool:
    """Product_Introduction adapted: a metric or peer median of this merchant, the weakest
    metric's label, or the rep's words for one of its pain points."""
    low = (text or "").lower()
    own = {
        _metric_value(k, src[k]) for src in (merchant.metrics, merchant.peer_medians) for k in src
    }
    small = {v for v in own if v < 10}  # ratings and conversions: need their unit, not "3"
    for x in facts.mentions(text):
        if x.value in own and (x.value not in small or x.kind == "percentage"):
            return True
    for k in ("rating",):
        if fmt_metric(k, merchant.metrics[k]).lower() in low:
            return True
    bank = load_banks()["personas"]
    ratios = metric_ratios(merchant)
    if bank["metrics"][min(ratios, key=ratios.get)]["label"].lower() in low:
        return True
    return any(bank["pain_points"][p]["rep"].lower() in low for p in merchant.pain_points)


@dataclass
class CustomerPerception:
    """The customer's ears: intent and Opening-register models fitted on the held-out bank."""

    intent_model: LogisticRegression
    register_model: LogisticRegression
    embedder: TextEmbedder
    n_lines: int = 0

    @classmethod
    def fit(
        cls,
        profile: Any = None,
        n_merchants: int = 40,
        seed: int = 0,
        embedder: TextEmbedder | None = None,
    ) -> CustomerPerception:
        texts, labels, openings, registers = heldout_lines(n_merchants, seed)
        embedder = embedder or TextEmbedder(profile)
        intent_model = LogisticRegression(C=4.0, max_iter=2000).fit(embedder(texts), labels)
        register_model = LogisticRegression(C=4.0, max_iter=2000).fit(embedder(openings), registers)
        return cls(intent_model, register_model, embedder, len(texts))

    def tag(self, texts: Sequence[str]) -> list[str]:
        """The intent the customer hears in each text."""
        if not texts:
            return []
        return [str(x) for x in self.intent_model.predict(self.embedder(list(texts)))]

    def register(self, texts: Sequence[str]) -> list[str]:
        """brief | warm, as the customer hears an opening line."""
        if not texts:
            return []
        return [str(x) for x in self.register_model.predict(self.embedder(list(texts)))]

    def adapted(self, intent: str, text: str, merchant: MerchantProfile) -> bool:
        """Is the reply fitted to this merchant, for its intent (see the module doc)?"""
        if intent == "Opening":
            return self.register([text])[0] == OPENING_REGISTER[merchant.decision_style]
        if intent == "Business_Analysis":
            return quotes_weakest_metric(text, merchant)
        if intent == "Product_Introduction":
            return quotes_merchant_data(text, merchant)
        return True

    def perceive(
        self,
        replies: Sequence[str],
        products: Sequence[Product],
        merchants: Sequence[MerchantProfile],
    ) -> list[Heard]:
        """What the customer hears in each reply (aligned lists)."""
        out = []
        for reply, intent, p, m in zip(
            replies, self.tag(replies), products, merchants, strict=True
        ):
            found = facts.check(reply, p, m)
            reg = self.register([reply])[0] if intent == "Opening" else None
            out.append(Heard(intent, self.adapted(intent, reply, m), not found, found, reg))
        return out

    def evaluate(self, dialogues: Sequence[Dialogue], max_examples: int = 400) -> dict[str, Any]:
        """Intent accuracy on corpus agent turns (the VISIBLE bank the perception never saw)."""
        pairs = [(t.text, t.intent) for d in dialogues for t in d.turns if t.speaker == "agent"]
        pairs = pairs[:max_examples]
        pred = self.tag([p[0] for p in pairs])
        acc = float(np.mean([a == b[1] for a, b in zip(pred, pairs, strict=True)])) if pairs else 0
        return {"intent_accuracy": acc, "n": len(pairs)}


def load_or_fit(profile: Any, n_merchants: int = 40, seed: int = 0) -> CustomerPerception:
    """`CustomerPerception.fit` once per profile embedder and settings, cached on disk (the fit
    embeds ~650 lines: ~20 s on 2 CPU cores)."""
    import hashlib
    import json
    import pickle

    from ..config import paths

    key = json.dumps([1, profile.models.embedder, n_merchants, seed])
    name = hashlib.sha256(key.encode()).hexdigest()[:16]
    cache = paths(profile).models / "referee" / f"perception-{name}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    out = CustomerPerception.fit(profile, n_merchants, seed)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(out))
    return out
