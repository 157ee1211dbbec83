"""How the simulated customer reads a rep's free-text reply (the referee's ears).

`CustomerPerception.fit` learns from lines of the HELD-OUT rep bank (`agent_templates_heldout.yaml`)
filled for many sampled merchants and products (`Realizer(..., heldout=True)`), never from corpus
turns, so that an agent copying the visible bank (the script library, SFT) is not heard better for
it, and an agent's own tagger (fitted on the training split) is not the customer's:

* intent: embedding (the profile's sentence embedder) + logistic regression over the six intents;
* adapted (is the move fitted to THIS merchant, `CustomerSimulator.personalization_due`):
  - Opening: the register (brief / warm, a second logistic regression fitted on the held-out
    Opening lines) is the one the merchant's latent decision style wants (`OPENING_REGISTER`);
  - Business_Analysis: the reply talks about the store's weakest metric, or quotes that
    metric's value (or its peer median) without talking about another metric;
  - Product_Introduction: the reply quotes this merchant's data (a metric or peer median) or
    talks about its weakest metric or one of its (latent) pain points;
  "talks about" is read by a `ConceptReader` fitted on the referee's own held-out wordings
  (`data/perception_paraphrases.yaml`, which no agent-side module may read), never on the
  personas bank's labels and pain phrases that the script library's templates fill in verbatim:
  a template and a paraphrase of it are heard alike (validated in `ConceptReader.validate`);
  - other intents: always (nothing to adapt);
* faithful: the referee's own check (`referee.facts.check`) finds nothing.

The referee may read hidden fields: the decision style and pain points are latent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from salesman_utils.agent.intents import TextEmbedder
from salesman_utils.banks import DATA_DIR, read_yaml, require, require_list, show_path
from salesman_utils.referee import facts
from salesman_utils.world.knowledge import Product, load_products
from salesman_utils.world.simulator import (
    INTENTS,
    METRICS,
    OPENING_REGISTER,
    Dialogue,
    MerchantProfile,
    Realizer,
    eligible_products,
    fmt_metric,
    load_bank,
    load_banks,
    metric_ratios,
    sample_merchant,
)


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


PARAPHRASES = DATA_DIR / "perception_paraphrases.yaml"  # referee side only (test_boundary)
_SENTENCE = re.compile(
    r"(?<=[.!?;:])\s+|,\s+(?=(?:and|but|while|so|since|because|as)\b)|\s+-\s+", re.I
)


def load_paraphrases() -> dict[str, Any]:
    """The referee's held-out wordings of metrics and pains (`data/perception_paraphrases.yaml`):
    `fit` and `check` wordings for every metric and pain point of the personas bank, for `none`
    and for the carriers (a missing one is a `DataBankError` naming the file and the entry)."""
    data, name, personas = read_yaml(PARAPHRASES), show_path(PARAPHRASES), load_bank("personas")
    require(data, ["metrics", "pain_points", "none", "carriers"], name)
    nodes = {"none": data["none"], "carriers": data["carriers"]}
    for group in ("metrics", "pain_points"):
        entries = require(data[group], list(personas[group]), f"{name}: {group}")
        nodes.update({f"{group}.{k}": entries[k] for k in personas[group]})
    for where, node in nodes.items():
        require(node, ["fit", "check"], f"{name}: {where}")
        for part in ("fit", "check"):
            require_list(node[part], f"{name}: {where}.{part}")
    return data


def concept_examples(part: str, seed: int = 0) -> tuple[list[str], list[str]]:
    """(sentences, concept) from the paraphrase file's `part` (fit | check): every wording of a
    metric (concept = metric key), a pain (pain key) or of nothing (`none`) in every carrier of
    that part, with sampled values."""
    bank = load_paraphrases()
    rng = np.random.default_rng([seed, 17])
    items = [
        (w, k)
        for group in ("metrics", "pain_points")
        for k, v in bank[group].items()
        for w in v[part]
    ]
    items += [(w, "none") for w in bank["none"][part]]
    texts, labels = [], []
    for wording, concept in items:
        for carrier in bank["carriers"][part]:
            v, peer = rng.integers(2, 5000, size=2)
            texts.append(carrier.format(x=wording, v=int(v), p=int(peer)))
            labels.append(concept)
    return texts, labels


def bank_examples(seed: int = 0) -> tuple[list[str], list[str]]:
    """The personas bank's OWN wordings (the labels and rep phrases that templates fill in
    verbatim) in the check carriers: validation text the reader never saw."""
    bank, carriers = load_banks()["personas"], load_paraphrases()["carriers"]["check"]
    rng = np.random.default_rng([seed, 19])
    items = [(v["label"], k) for k, v in bank["metrics"].items()]
    items += [(v["rep"], k) for k, v in bank["pain_points"].items()]
    texts, labels = [], []
    for wording, concept in items:
        for carrier in carriers:
            v, peer = rng.integers(2, 5000, size=2)
            texts.append(carrier.format(x=wording, v=int(v), p=int(peer)))
            labels.append(concept)
    return texts, labels


def topic(concept: str) -> str:
    """A concept's store metric: a metric is its own; a pain tied to a metric (`personas.yaml`)
    is that metric's (\"your rating is holding you back\" talks about the rating); other pains
    and `none` are themselves."""
    pains = load_banks()["personas"]["pain_points"]
    return (pains[concept].get("metric") or concept) if concept in pains else concept


@dataclass
class ConceptReader:
    """Which store metric or pain a clause talks about (or `none`): the profile's sentence
    embedding + logistic regression, fitted on the referee's held-out wordings only
    (`concept_examples` "fit", each wording alone and in the fit carriers), so the bank's own
    labels are as new to it as any paraphrase. A reply is split into clauses; a concept is heard
    when some clause reads as it with probability >= `threshold`."""

    model: LogisticRegression
    embedder: TextEmbedder
    threshold: float = 0.35

    @classmethod
    def fit(
        cls, embedder: TextEmbedder | None = None, seed: int = 0, threshold: float = 0.35
    ) -> ConceptReader:
        texts, labels = concept_examples("fit", seed)
        bank = load_paraphrases()
        for group in ("metrics", "pain_points"):
            for k, v in bank[group].items():
                texts += v["fit"]
                labels += [k] * len(v["fit"])
        texts += bank["none"]["fit"]
        labels += ["none"] * len(bank["none"]["fit"])
        embedder = embedder or TextEmbedder(None)
        model = LogisticRegression(C=4.0, max_iter=3000).fit(embedder(texts), labels)
        return cls(model, embedder, threshold)

    def read(self, texts: Sequence[str]) -> list[str]:
        """The most probable concept of each clause (no threshold)."""
        return [str(x) for x in self.model.predict(self.embedder(list(texts)))] if texts else []

    @staticmethod
    def clauses(text: str) -> list[str]:
        return [c.strip() for c in _SENTENCE.split(text or "") if c.strip()]

    def warm(self, texts: Sequence[str]) -> None:
        """Embed the clauses of many replies in one batch (the embedder caches them)."""
        self.embedder([c for t in texts for c in self.clauses(t)])

    def concepts(self, text: str) -> set[str]:
        """The concepts heard anywhere in a reply (clause by clause)."""
        clauses = self.clauses(text)
        if not clauses:
            return set()
        proba = self.model.predict_proba(self.embedder(clauses))
        classes = [str(c) for c in self.model.classes_]
        heard = set()
        for row in proba:
            heard |= {c for c, x in zip(classes, row, strict=True) if x >= self.threshold}
        return heard - {"none"}

    def topics(self, text: str) -> set[str]:
        """The store metrics (and metric-less pains) a reply talks about (`topic`)."""
        return {topic(c) for c in self.concepts(text)}

    def validate(self, seed: int = 0) -> pd.DataFrame:
        """Accuracy on text it never saw: the held-out check paraphrases and the bank's own
        wordings (what the templates fill in), per concept and per topic (a pain read as its own
        metric counts right at topic level); the fit part is in-sample, for reference."""
        rows = []
        sets = {
            "fit paraphrases (in-sample)": concept_examples("fit", seed),
            "check paraphrases (held out)": concept_examples("check", seed),
            "bank wordings (template text, held out)": bank_examples(seed),
        }
        for name, (texts, labels) in sets.items():
            pred = self.read(texts)
            pairs = list(zip(pred, labels, strict=True))
            rows.append(
                {
                    "text": name,
                    "n": len(texts),
                    "concept_accuracy": float(np.mean([a == b for a, b in pairs])),
                    "topic_accuracy": float(np.mean([topic(a) == topic(b) for a, b in pairs])),
                }
            )
        return pd.DataFrame(rows)


def _mentioned_values(text: str) -> set[float]:
    return {x.value for x in facts.mentions(text) if x.kind in {"number", "percentage"}}


def _metric_value(key: str, value: float) -> float:
    return round(float(value), 1) if key in {"rating", "conversion"} else float(round(value))


def _gap(merchant: MerchantProfile) -> str:
    ratios = metric_ratios(merchant)
    return min(ratios, key=ratios.get)


def quotes_weakest_metric(text: str, merchant: MerchantProfile, reader: ConceptReader) -> bool:
    """Business_Analysis adapted: the reader hears the weakest metric, or the reply quotes its
    value (or its peer median) while no other metric is heard."""
    gap, heard = _gap(merchant), reader.topics(text)
    if gap in heard:
        return True
    values = _mentioned_values(text)
    gap_values = {
        _metric_value(gap, merchant.metrics[gap]),
        _metric_value(gap, merchant.peer_medians[gap]),
    }
    return bool(values & gap_values) and not (heard & (set(METRICS) - {gap}))


def quotes_merchant_data(text: str, merchant: MerchantProfile, reader: ConceptReader) -> bool:
    """Product_Introduction adapted: a metric or peer median of this merchant, or the reader hears
    the weakest metric or one of the merchant's pain points (in any wording)."""
    low = (text or "").lower()
    own = {
        _metric_value(k, src[k]) for src in (merchant.metrics, merchant.peer_medians) for k in src
    }
    small = {v for v in own if v < 10}  # ratings and conversions: need their unit, not "3"
    for x in facts.mentions(text):
        if x.value in own and (x.value not in small or x.kind == "percentage"):
            return True
    if fmt_metric("rating", merchant.metrics["rating"]).lower() in low:
        return True
    heard = reader.concepts(text)
    return _gap(merchant) in {topic(c) for c in heard} or bool(heard & set(merchant.pain_points))


def verbatim_adapted(intent: str, text: str, merchant: MerchantProfile) -> bool:
    """The OLD reading, kept only to show its bias (notebook 04, tests): the bank's metric label
    or rep pain phrase word for word, or the merchant's numbers. Not used by the customer."""
    bank, low = load_banks()["personas"], (text or "").lower()
    label = bank["metrics"][_gap(merchant)]["label"].lower() in low
    values = _mentioned_values(text)
    gap = _gap(merchant)
    quoted = bool(
        values
        & {
            _metric_value(gap, merchant.metrics[gap]),
            _metric_value(gap, merchant.peer_medians[gap]),
        }
    )
    if intent == "Business_Analysis":
        return label or quoted
    if intent == "Product_Introduction":
        pains = any(bank["pain_points"][p]["rep"].lower() in low for p in merchant.pain_points)
        return label or quoted or pains
    return True


@dataclass
class CustomerPerception:
    """The customer's ears: intent and Opening-register models fitted on the held-out bank."""

    intent_model: LogisticRegression
    register_model: LogisticRegression
    embedder: TextEmbedder
    n_lines: int = 0
    concepts: ConceptReader | None = None  # None only in pickles of version 1 (refitted)

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
        concepts = ConceptReader.fit(embedder, seed)
        return cls(intent_model, register_model, embedder, len(texts), concepts)

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

    def _concepts(self) -> ConceptReader:
        if self.concepts is None:
            self.concepts = ConceptReader.fit(self.embedder)
        return self.concepts

    def adapted(self, intent: str, text: str, merchant: MerchantProfile) -> bool:
        """Is the reply fitted to this merchant, for its intent (see the module doc)?"""
        if intent == "Opening":
            return self.register([text])[0] == OPENING_REGISTER[merchant.decision_style]
        if intent == "Business_Analysis":
            return quotes_weakest_metric(text, merchant, self._concepts())
        if intent == "Product_Introduction":
            return quotes_merchant_data(text, merchant, self._concepts())
        return True

    def perceive(
        self,
        replies: Sequence[str],
        products: Sequence[Product],
        merchants: Sequence[MerchantProfile],
    ) -> list[Heard]:
        """What the customer hears in each reply (aligned lists)."""
        self._concepts().warm(replies)
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

    from salesman_utils.artifacts import load_cached
    from salesman_utils.config import code_digest, paths

    digest = hashlib.sha256(PARAPHRASES.read_bytes()).hexdigest()[:12]
    code = code_digest("referee.perception")  # how the reader is fitted (was a hand-bumped version)
    key = json.dumps([code, profile.models.embedder, n_merchants, seed, digest])
    name = hashlib.sha256(key.encode()).hexdigest()[:16]
    cache = paths(profile).models / "referee" / f"perception-{name}.pkl"
    out = load_cached(cache, lambda f: pickle.loads(f.read_bytes()))  # unreadable: refitted
    if out is not None:
        return out
    out = CustomerPerception.fit(profile, n_merchants, seed)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(out))
    return out


def _paraphrase(text: str, rng: np.random.Generator) -> str:
    """`text` with every bank label of a metric and every rep pain phrase replaced by one of the
    referee's held-out CHECK wordings of the same concept (text no template produces)."""
    bank, para = load_banks()["personas"], load_paraphrases()
    swaps = [(v["label"], para["metrics"][k]["check"]) for k, v in bank["metrics"].items()]
    swaps += [(v["rep"], para["pain_points"][k]["check"]) for k, v in bank["pain_points"].items()]
    for phrase, options in sorted(swaps, key=lambda x: -len(x[0])):
        pattern = re.compile(re.escape(phrase), re.I)
        if pattern.search(text):
            text = pattern.sub(str(options[int(rng.integers(len(options)))]), text)
    return text


def adaptation_validation(
    perception: CustomerPerception, n_merchants: int = 30, seed: int = 1
) -> pd.DataFrame:
    """Does the customer read adaptation right on text it never saw? For sampled merchants (other
    than those the perception was fitted on), Business_Analysis and Product_Introduction lines,
    adapted and not (the realizer's own flag is the truth), from three sources: the VISIBLE bank
    (the library's template wording), the held-out bank, and the visible-bank lines with every
    metric label / pain phrase replaced by a held-out check paraphrase. Per source and reader (the
    fitted reader of the customer, and the old word-for-word `verbatim_adapted`): accuracy, and
    the adapted rate among truly adapted and truly non-adapted lines (Product_Introduction lines
    only count when they mention the merchant's weakest metric or pain: a generic pitch has
    nothing to read)."""
    rng = np.random.default_rng([seed, 23])
    products = load_products()
    items = []
    for i in range(n_merchants):
        m = sample_merchant(rng, 50_000 + i)
        options = eligible_products(m, products)
        real = Realizer(m, options[int(rng.integers(len(options)))], agent_name="Sam", rng=rng)
        for intent in ("Business_Analysis", "Product_Introduction"):
            for adapted in (True, False):
                for _ in range(2):
                    visible = real.agent_text(intent, adapted, True)
                    lines = {
                        "visible bank (template wording)": visible,
                        "held-out bank": real.agent_text(intent, adapted, True, heldout=True),
                        "visible bank, paraphrased": _paraphrase(visible, rng),
                    }
                    items += [(s, intent, adapted, t, m) for s, t in lines.items()]
    perception._concepts().warm([x[3] for x in items])
    df = pd.DataFrame(
        [
            {
                "source": source,
                "intent": intent,
                "truth": adapted,
                "text": text,
                "fitted": perception.adapted(intent, text, m),
                "verbatim": verbatim_adapted(intent, text, m),
            }
            for source, intent, adapted, text, m in items
        ]
    )
    out = []
    for (source, intent), g in df.groupby(["source", "intent"], sort=False):
        for reader in ("fitted", "verbatim"):
            out.append(
                {
                    "source": source,
                    "intent": intent,
                    "reader": reader,
                    "n": len(g),
                    "n_adapted": int(g["truth"].sum()),
                    "accuracy": float((g[reader] == g["truth"]).mean()),
                    "adapted_rate_if_adapted": float(g.loc[g["truth"], reader].mean()),
                    "adapted_rate_if_not": float(g.loc[~g["truth"], reader].mean()),
                }
            )
    return pd.DataFrame(out)
