"""Script library: scored outline templates per sales intent, mined from the training calls.

Per intent, the agent turns whose Bayesian posterior P(good) is in the top `top_fraction` of their
intent are embedded and clustered with posterior-weighted k-means (k in 2..max_k chosen by the
silhouette score); each cluster's medoid becomes a template, its product and merchant facts turned
into `{slots}` so that `fill` can personalize it for another call. A cluster's quality is the Beta
posterior of how often its turns were good, Beta(1 + sum w, 1 + sum (1 - w)), from the posteriors
only: nothing in a turn's `hidden` dict feeds the library (`source_quality` reads it, for evaluation).

One module although long: building the library and using it (`retrieve`, `fill`) share the
template format and its slots, and the cache key hashes this one file.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from salesman_utils.artifacts import ArtifactWarning, write_whole
from salesman_utils.world.corpus import (
    INTENTS,
    Dialogue,
    Product,
    fact_check,
    get_product,
    visible_merchant_facts,
)
from salesman_utils.world.simulator import fmt_metric, load_banks

LIBRARY_VERSION = 1
OUTLINE_SYSTEM = (
    "You extract the outline of one sales-call utterance: 2 to 4 short steps (imperative, at most "
    "ten words each) that say what the rep does, in order. Keep {placeholders} as written. "
    "Reply with the steps only, one per line."
)
INTENT_GOALS = {  # prepended when a medoid has a single clause, so every outline has >= 2 steps
    "Opening": "Greet the owner and introduce yourself",
    "Needs_Discovery": "Ask an open question about the store",
    "Business_Analysis": "Compare the store's numbers with its peers",
    "Product_Introduction": "Link the product to the store's gap",
    "Objection_Handling": "Acknowledge the concern",
    "Operational_Guidance": "Propose the concrete next step",
}
_FILLER = re.compile(r"\b(?:uh|um|(?<!so )you know|like|I mean|so),\s+", re.I)
_NUM_L, _NUM_R = r"(?<![\w.,$])", r"(?![\w]|[.,]\d)"


class LibraryFormatError(ValueError):
    """A saved library file is malformed or of another version: the message names the file."""


class MissingSlotError(ValueError):
    """`fill` has no value for a template slot; `.slot` names it."""

    def __init__(self, slot: str, where: str):
        super().__init__(f"template slot {{{slot}}} has no value ({where})")
        self.slot = slot


@dataclass
class LibraryEntry:
    id: str
    intent: str
    template: str
    slots: list[str]
    outline: list[str]
    outline_method: str  # "llm" | "medoid_sentences"
    support: int  # turns in the cluster
    posterior_mean: float  # mean posterior P(good) of those turns
    ci: tuple[float, float]  # 90% interval of Beta(1 + sum w, 1 + sum (1 - w))
    source_turns: list[tuple[str, int]]  # (dialogue_id, turn index)
    example: str = ""  # the medoid turn's own (cleaned) text: what retrieval embeds
    product_id: str = ""  # product of the medoid's call (fact-check reference)

    def __getitem__(self, key: str) -> Any:  # dict-style access for notebooks and the agent
        return getattr(self, key)


# ---------------------------------------------------------------- slots


def _merchant_dict(merchant: Any) -> dict[str, Any]:
    return merchant if isinstance(merchant, dict) else visible_merchant_facts(merchant)


def _gap_metric(m: dict[str, Any]) -> str:
    """The visible metric that lags the peer median most (rating scaled to a comparable ratio)."""
    own, peer = m["metrics"], m["peer_medians"]
    ratios = {k: own[k] / peer[k] for k in ("monthly_orders", "exposure", "conversion")}
    ratios["rating"] = 1.0 + (own["rating"] - peer["rating"]) / 1.5
    return min(ratios, key=ratios.get)


_METRIC_SLOT = {
    "monthly_orders": "orders",
    "rating": "rating",
    "exposure": "exposure",
    "conversion": "conversion",
}


def slot_values(product: Product | str, merchant: Any, agent_name: str = "Alex") -> dict[str, str]:
    """Every slot's value for one call, from the product's knowledge base and the merchant's
    VISIBLE facts (dashboard metrics and peer medians). `{pain}` is the rep's phrase for the pain
    that goes with the lagging metric (the latent pain points are never read)."""
    p = get_product(product) if isinstance(product, str) else product
    m = _merchant_dict(merchant)
    banks = load_banks()["personas"]
    cat, gap = banks["categories"][m["category"]], _gap_metric(m)
    pain = next(v["rep"] for v in banks["pain_points"].values() if v["metric"] == gap)
    own, peer = m["metrics"], m["peer_medians"]
    plan = p.plans[0]
    out = {
        "owner": m["owner"],
        "store": m["name"],
        "agent": agent_name,
        "platform": p.platform,
        "noun": cat["noun"],
        "plural": cat["plural"],
        "product": p.name,
        "summary": p.summary,
        "plan": plan["name"],
        "price": f"${float(plan['price']):g}",
        "period": plan["period"],
        "promo": p.promotion["headline"],
        "promo_terms": p.promotion["terms"],
        "eligibility": p.eligibility[0],
        "feature": p.features[0],
        "pain": pain,
        "gap_label": banks["metrics"][gap]["label"],
        "gap_value": fmt_metric(gap, own[gap]),
        "gap_peer": fmt_metric(gap, peer[gap]),
    }
    for key, slot in _METRIC_SLOT.items():
        out[slot] = fmt_metric(key, own[key])
        out[f"peer_{slot}"] = fmt_metric(key, peer[key])
    return out


def clean_text(text: str) -> str:
    """Undo ASR-like noise (fillers, a doubled word, lower-case start, missing final period)."""
    t = _FILLER.sub("", text.strip())
    t = re.sub(r"\b(\w+) \1\b", r"\1", t)
    t = t[:1].upper() + t[1:]
    return t if t.endswith((".", "?", "!")) else t + "."


def _sub_literal(text: str, value: str, slot: str, numeric: bool) -> str:
    if not value or value not in text:  # cheap test first: most facts are absent
        return text
    pat = re.escape(value)
    pat = _NUM_L + pat + _NUM_R if numeric else r"(?<![\w{])" + pat + r"(?![\w}])"
    return re.sub(pat, "{" + slot + "}", text)


def templatize(text: str, product: Product, merchant: Any, agent_name: str | None = None) -> str:
    """Turn the known facts of this call (product KB, merchant metrics, the rep's name) in `text`
    into `{slots}`."""
    m, banks = _merchant_dict(merchant), load_banks()["personas"]
    t = text.replace("{", "{{").replace("}", "}}")
    # longest, most specific phrases first so that a value inside a longer one is not split
    for slot, vals in (
        ("promo_terms", [product.promotion["terms"]]),
        ("summary", [product.summary]),
        ("eligibility", list(product.eligibility)),
        ("feature", list(product.features) + [f for pl in product.plans for f in pl["features"]]),
        ("promo", [product.promotion["headline"]]),
        ("store", [m["name"]]),
        ("owner", [m["owner"]]),
        ("product", [product.name]),
        ("platform", [product.platform]),
        ("agent", [agent_name] if agent_name else []),
        ("pain", [v["rep"] for v in banks["pain_points"].values()]),
    ):
        for v in sorted(vals, key=len, reverse=True):
            t = _sub_literal(t, v, slot, numeric=False)
    for pl in product.plans:  # price with its period; plan name only as a plan, not the app tab
        if f"${float(pl['price']):g}" not in t and pl["name"] not in t:
            continue
        price = re.escape(f"${float(pl['price']):g}")
        t = re.sub(_NUM_L + price + rf"(\s+(?:a|per)\s+){pl['period']}\b", r"{price}\1{period}", t)
        t = re.sub(_NUM_L + price + _NUM_R, "{price}", t)
        t = re.sub(rf"(?<!tap )\b{re.escape(pl['name'])}\b(?! tab)", "{plan}", t)
    own, peer, gap = m["metrics"], m["peer_medians"], _gap_metric(m)
    label = banks["metrics"][gap]["label"]
    if label in t:
        gv, gp = re.escape(fmt_metric(gap, own[gap])), fmt_metric(gap, peer[gap])
        t = re.sub(
            re.escape(label) + r"(\s*(?:is|at|of|:|,)\s+)" + gv + _NUM_R,
            r"{gap_label}\1{gap_value}",
            t,
        )
        t = t.replace(label, "{gap_label}")
        t = _sub_literal(t, gp, "gap_peer", numeric=True)
        t = re.sub(
            _NUM_L + gv + r"(\s+(?:versus|against|vs\.?)\s+\{gap_peer\})", r"{gap_value}\1", t
        )
    for key, slot in _METRIC_SLOT.items():
        t = _sub_literal(t, fmt_metric(key, own[key]), slot, numeric=True)
        t = _sub_literal(t, fmt_metric(key, peer[key]), f"peer_{slot}", numeric=True)
    cat = banks["categories"][m["category"]]
    t = _sub_literal(t, cat["plural"], "plural", numeric=False)
    return _sub_literal(t, cat["noun"], "noun", numeric=False)


def template_slots(template: str) -> list[str]:
    return list(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(template) if f))


def fill(
    template_or_entry: str | LibraryEntry,
    product: Product | str,
    merchant: Any,
    *,
    agent_name: str = "Alex",
    extra: dict[str, str] | None = None,
) -> str:
    """The template personalized for this product and merchant (a MerchantProfile or its
    visible-facts dict). `extra` overrides slot values. A slot without a value raises
    `MissingSlotError` naming it: a `{price}` never reaches a reply."""
    tpl = (
        template_or_entry.template
        if isinstance(template_or_entry, LibraryEntry)
        else (template_or_entry)
    )
    values = {**slot_values(product, merchant, agent_name), **(extra or {})}
    for slot in template_slots(tpl):
        if slot not in values or values[slot] in (None, ""):
            pid = product if isinstance(product, str) else product.id
            raise MissingSlotError(
                slot, f"product {pid}, merchant {_merchant_dict(merchant)['id']}"
            )
    text = tpl.format_map(values)
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------- outlines


def _clauses(text: str) -> list[str]:
    sents = [s.strip() for s in re.split(r"(?<=[.?!])\s+", text) if s.strip()]
    if len(sents) >= 2:
        return sents
    parts = [p.strip() for p in re.split(r"[,:;]\s+", text) if len(p.split()) >= 3]
    return parts if len(parts) >= 2 else sents


def sentence_outline(template: str, intent: str) -> list[str]:
    """2-4 steps from the medoid's own sentences (clauses when it has one sentence)."""
    steps = [s.rstrip(".") for s in _clauses(template)]
    if len(steps) > 4:  # merge the tail so that the outline stays short
        steps = steps[:3] + [" ".join(steps[3:])]
    if len(steps) < 2:
        steps = [INTENT_GOALS[intent]] + steps
    return steps[:4]


def _parse_steps(reply: str) -> list[str]:
    lines = [
        re.sub(r"^\s*(?:[-*\u2022]|\d+[.)]|step\s*\d+\s*[:.])\s*", "", ln, flags=re.I)
        for ln in reply.splitlines()
    ]
    return [ln.strip() for ln in lines if 2 <= len(ln.split()) <= 20][:4]


def llm_outlines(backend: Any, entries: Sequence[tuple[str, str]]) -> list[list[str] | None]:
    """Ask `backend` (cached `.chat`) for 2-4 steps per (intent, template); None where it fails."""
    batch = [
        [
            {"role": "system", "content": OUTLINE_SYSTEM},
            {"role": "user", "content": f"Intent: {intent}\nUtterance: {tpl}"},
        ]
        for intent, tpl in entries
    ]
    replies = backend.chat(batch, max_new_tokens=96, temperature=0.0, desc="library outlines")
    return [s if len(s := _parse_steps(r)) >= 2 else None for r in replies]


# ---------------------------------------------------------------- the library


def _embed(texts: list[str], embedder: Any) -> np.ndarray:
    """Embedder: a SentenceTransformer, a function texts -> vectors, a Profile or None (default)."""
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    if hasattr(embedder, "encode"):
        x = embedder.encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
    elif callable(embedder):
        x = embedder(list(texts))
    else:
        from salesman_utils.models import embed

        x = embed(list(texts), embedder)
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


class ScriptLibrary:
    """Templates per intent; `retrieve` ranks them for a context, `fill` personalizes one."""

    fill = staticmethod(fill)

    def __init__(
        self,
        entries: list[LibraryEntry],
        *,
        embedder: Any = None,
        meta: dict[str, Any] | None = None,
        dropped: dict[str, int] | None = None,
    ):
        self.entries, self.embedder = list(entries), embedder
        self.meta, self.dropped = dict(meta or {}), dict(dropped or {})
        self._vectors: dict[str, np.ndarray] = {}  # text -> embedding (templates, contexts)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit embeddings with the library's embedder, each distinct text embedded once."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if len(self._vectors) + len(todo) > 20_000:  # bound the cache on very long runs
            self._vectors.clear()
            todo = list(dict.fromkeys(texts))
        for t, v in zip(todo, _embed(todo, self.embedder), strict=True):
            self._vectors[t] = v
        return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, 1))

    def remember(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Take embeddings already computed with the same embedder (unit vectors), so that a
        caller that embeds many contexts in one batch does not pay for them one by one here."""
        for t, v in zip(texts, vectors, strict=True):
            self._vectors.setdefault(t, v)

    def __len__(self) -> int:
        return len(self.entries)

    def by_intent(self, intent: str) -> list[LibraryEntry]:
        if intent not in INTENTS:
            raise ValueError(f"unknown intent {intent!r}; expected one of {INTENTS}")
        return [e for e in self.entries if e.intent == intent]

    def retrieve(self, intent: str, context: str | Sequence[str], k: int = 2) -> list[LibraryEntry]:
        """The intent's top-k entries by cosine(context, template example) x posterior_mean.

        `context` is one text, or several (DOGA: the call's last two turns), whose unit embeddings
        are averaged: each line is embedded once however many contexts it appears in, so a caller
        that plays thousands of calls (`callenv`) pays per distinct line, not per pair of lines."""
        cands = self.by_intent(intent)
        if not cands:
            return []
        texts = [context] if isinstance(context, str) else list(context)
        texts = [t for t in texts if t] or [intent]
        x = self.embed([e.example or e.template for e in cands] + texts)
        query = x[len(cands) :].mean(axis=0)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        scores = (x[: len(cands)] @ query) * np.array([e.posterior_mean for e in cands])
        order = np.argsort(-np.asarray(scores), kind="stable")
        return [cands[i] for i in order[: max(k, 0)]]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "version": LIBRARY_VERSION,
            "meta": self.meta,
            "dropped": self.dropped,
            "entries": [asdict(e) for e in self.entries],
        }
        return write_whole(path, json.dumps(body, indent=1) + "\n")  # never half a library

    @classmethod
    def load(cls, path: str | Path, embedder: Any = None) -> ScriptLibrary:
        path = Path(path)
        try:
            body = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise LibraryFormatError(f"{path}: cannot read a library ({exc})") from exc
        if not isinstance(body, dict) or body.get("version") != LIBRARY_VERSION:
            got = body.get("version") if isinstance(body, dict) else type(body).__name__
            raise LibraryFormatError(f"{path}: library version {got!r}, expected {LIBRARY_VERSION}")
        fields = set(LibraryEntry.__dataclass_fields__)
        entries = []
        for i, rec in enumerate(body.get("entries", [])):
            need = {f for f in fields if f not in ("example", "product_id")}
            if not isinstance(rec, dict) or need - set(rec):
                lack = sorted(need - set(rec)) if isinstance(rec, dict) else "an object"
                raise LibraryFormatError(f"{path}: entries[{i}] lacks {lack}")
            rec = {k: v for k, v in rec.items() if k in fields}
            rec["ci"] = tuple(rec["ci"])
            rec["source_turns"] = [tuple(s) for s in rec["source_turns"]]
            entries.append(LibraryEntry(**rec))
        return cls(entries, embedder=embedder, meta=body.get("meta"), dropped=body.get("dropped"))


# ---------------------------------------------------------------- building


@dataclass
class _Turn:
    dialogue: Dialogue
    index: int
    text: str  # cleaned text
    template: str  # its facts slotted
    product: Product
    w: float


def agent_turns(dialogues: Sequence[Dialogue]) -> list[tuple[Dialogue, int]]:
    """Agent turns in dialogue order then turn order: the order of the posterior array."""
    return [(d, i) for d in dialogues for i, t in enumerate(d.turns) if t.speaker == "agent"]


def weighted_silhouette(x: np.ndarray, labels: np.ndarray, n: np.ndarray) -> float:
    """Silhouette score of the turns when distinct point i stands for n[i] identical turns (equal
    to sklearn's silhouette_score on the expanded turns, without expanding them)."""
    d = np.sqrt(np.maximum(2.0 - 2.0 * (x @ x.T), 0.0))  # unit vectors: Euclidean from cosine
    ks = np.unique(labels)
    member = (labels[:, None] == ks[None, :]).astype(float) * n[:, None]  # (points, clusters)
    tot = d @ member  # summed distance from each point to each cluster's turns
    size = member.sum(0)
    own = np.searchsorted(ks, labels)
    rows = np.arange(len(x))
    a = tot[rows, own] / np.maximum(size[own] - 1, 1)  # the point's own copies are at distance 0
    other = tot / size
    other[rows, own] = np.inf
    b = other.min(1)
    sil = np.where(size[own] > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float((sil * n).sum() / n.sum())


def choose_k(
    x: np.ndarray, w: np.ndarray, n: np.ndarray, max_k: int, seed: int
) -> tuple[int, np.ndarray]:
    """k-means on the distinct points `x` weighted by `w` (summed posterior) for k in 2..max_k;
    keep the k with the best turn-level silhouette (`n` turns per point). Returns (k, labels);
    k = 1 when there are too few distinct points."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    best = (-2.0, 1, np.zeros(len(x), dtype=int))
    for k in range(2, min(max_k, len(x) - 1) + 1):
        with threadpool_limits(1):  # a few hundred points: thread start-up costs more than it saves
            labels = KMeans(k, n_init=4, random_state=seed).fit(x, sample_weight=w).labels_
        if len(set(labels.tolist())) < 2:
            continue
        score = weighted_silhouette(x, labels, n)
        if score > best[0]:
            best = (score, k, labels)
    return best[1], best[2]


@dataclass
class IntentClusters:
    """Step 2's plan for one intent: the distinct slotted texts, their vectors and weights, and
    which cluster each text (and so each turn) falls in."""

    intent: str
    turns: list[_Turn]  # the intent's top-posterior turns (step 1)
    texts: list[str]  # distinct slotted texts
    of: np.ndarray  # turn j -> index of its slotted text
    vectors: np.ndarray  # one row per distinct text
    weights: np.ndarray  # summed posterior per distinct text
    labels: np.ndarray  # cluster of each distinct text


def select_top_turns(
    refs: Sequence[tuple[Dialogue, int]],
    w_all: np.ndarray,
    intent: str,
    top_fraction: float,
    products: dict[str, Product],
) -> list[_Turn]:
    """Step 1: the intent's turns whose posterior is in the top `top_fraction`, cleaned and slotted."""
    sel = [
        (d, i, float(w))
        for (d, i), w in zip(refs, w_all, strict=True)
        if d.turns[i].intent == intent
    ]
    if not sel:
        return []
    ws = np.array([w for _, _, w in sel])
    cut = np.quantile(ws, 1.0 - top_fraction) if top_fraction < 1.0 else -np.inf
    turns = []
    for d, i, w in sel:
        if w >= cut:
            p = products.get(d.product_id) or get_product(d.product_id)
            text = clean_text(d.turns[i].text)
            turns.append(_Turn(d, i, text, templatize(text, p, d.merchant, d.agent.name), p, w))
    return turns


def cluster_turns(
    intent: str, turns: list[_Turn], embedder: Any, max_k: int, seed: int
) -> IntentClusters:
    """Step 2: cluster the distinct slotted texts (calls differ by names and numbers, not by what
    the rep does), each weighted by the summed posterior of its turns; k by `choose_k`."""
    uniq = list(dict.fromkeys(t.template for t in turns))
    pos = {u: j for j, u in enumerate(uniq)}
    of = np.array([pos[t.template] for t in turns])
    w = np.array([t.w for t in turns])
    x = _embed(uniq, embedder)
    wu = np.maximum(np.bincount(of, weights=w, minlength=len(uniq)), 1e-3)
    _, labels = choose_k(x, wu, np.bincount(of, minlength=len(uniq)).astype(float), max_k, seed)
    return IntentClusters(intent, turns, uniq, of, x, wu, labels)


def cluster_entries(
    plan: IntentClusters, min_support: int, dropped: dict[str, int]
) -> list[LibraryEntry]:
    """Step 3: one entry per cluster of >= `min_support` turns; its template is the medoid (the
    text closest to the weighted centroid). A template whose filled text fails `fact_check`, or a
    repeat, is dropped and counted in `dropped`. Entries are ranked by posterior mean."""
    turns, of, x, wu, labels = plan.turns, plan.of, plan.vectors, plan.weights, plan.labels
    w = np.array([t.w for t in turns])
    seen: set[str] = set()
    mined = []
    for c in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels[of] == c)  # the cluster's turns
        if len(members) < min_support:
            dropped["min_support"] += 1
            continue
        ids = np.flatnonzero(labels == c)
        centroid = (wu[ids, None] * x[ids]).sum(0)
        best = int(ids[np.argmax(x[ids] @ centroid)])
        med = next(turns[j] for j in members if of[j] == best)
        template, product, wc = med.template, med.product, w[members]
        filled = fill(template, product, med.dialogue.merchant, agent_name=med.dialogue.agent.name)
        if fact_check(filled, product, med.dialogue.merchant):
            dropped["fact_check"] += 1
            continue
        if template in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(template)
        a, b = 1.0 + wc.sum(), 1.0 + (1.0 - wc).sum()
        lo, hi = stats.beta.ppf([0.05, 0.95], a, b)
        mined.append(
            LibraryEntry(
                id="",
                intent=plan.intent,
                template=template,
                slots=template_slots(template),
                outline=sentence_outline(template, plan.intent),
                outline_method="medoid_sentences",
                support=len(members),
                posterior_mean=float(wc.mean()),
                ci=(float(lo), float(hi)),
                source_turns=[(turns[j].dialogue.id, turns[j].index) for j in members],
                example=med.text,
                product_id=product.id,
            )
        )
    mined.sort(key=lambda e: -e.posterior_mean)
    for j, e in enumerate(mined):
        e.id = f"{plan.intent}-{j:02d}"
    return mined


def attach_llm_outlines(entries: list[LibraryEntry], outline_backend: Any) -> None:
    """Step 4 (optional): replace each entry's sentence outline by the LLM's steps, where it gave any."""
    if outline_backend is None or not entries:
        return
    steps_all = llm_outlines(outline_backend, [(e.intent, e.template) for e in entries])
    for e, steps in zip(entries, steps_all, strict=True):
        if steps:
            e.outline, e.outline_method = steps, "llm"


def build_library(
    train_dialogues: Sequence[Dialogue],
    posteriors: Sequence[float] | np.ndarray,
    embedder: Any = None,
    *,
    max_k: int = 8,
    min_support: int = 3,
    top_fraction: float = 0.5,
    seed: int = 0,
    products: dict[str, Product] | None = None,
    outline_backend: Any = None,
) -> ScriptLibrary:
    """Mine the library from training calls and their posteriors (one per agent turn, in
    `agent_turns` order), per intent in four named steps: `select_top_turns` (top `top_fraction`
    by posterior, facts slotted by `templatize`), `cluster_turns` (weighted k-means over the
    distinct slotted texts, k by silhouette over 2..max_k), `cluster_entries` (medoid template per
    cluster of >= `min_support` turns, fact-checked, deduplicated; `library.dropped` counts every
    drop by reason) and `attach_llm_outlines`. `embedder`: a SentenceTransformer, a function
    texts -> vectors, or a Profile / None (`models.embed`)."""
    refs = agent_turns(train_dialogues)
    w_all = np.asarray(posteriors, dtype=float)
    if w_all.shape != (len(refs),):
        raise ValueError(
            f"posteriors: {w_all.shape[0] if w_all.ndim else 0} values for "
            f"{len(refs)} agent turns (one per agent turn, dialogue then turn order)"
        )
    dropped = {"min_support": 0, "fact_check": 0, "duplicate": 0}
    entries: list[LibraryEntry] = []
    vectors: dict[str, np.ndarray] = {}
    for intent in tqdm(INTENTS, desc="library intents"):
        turns = select_top_turns(refs, w_all, intent, top_fraction, products or {})
        if not turns:
            continue
        plan = cluster_turns(intent, turns, embedder, max_k, seed)
        vectors.update(zip(plan.texts, plan.vectors, strict=True))
        entries += cluster_entries(plan, min_support, dropped)
    attach_llm_outlines(entries, outline_backend)
    meta = {
        "max_k": max_k,
        "min_support": min_support,
        "top_fraction": top_fraction,
        "seed": seed,
        "n_train_dialogues": len(train_dialogues),
        "n_agent_turns": len(refs),
        "outline_backend": getattr(outline_backend, "name", None),
    }
    lib = ScriptLibrary(entries, embedder=embedder, meta=meta, dropped=dropped)
    lib._vectors.update(vectors)  # the slotted texts: reused by `cluster_points`
    return lib


def _hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


def load_or_build(
    profile: Any, splits: dict[str, list[Dialogue]], posteriors: Any = None
) -> ScriptLibrary:
    """The profile's library from `<artifacts>/library/library.json` when its config hash (library
    settings, seed, embedder, training calls, posteriors) matches, else built and saved.
    `posteriors`: the training split's array, a dict split -> array, or None (bayes.posteriors_for)."""
    from salesman_utils.config import code_digest, paths
    from salesman_utils.models import load_embedder

    if posteriors is None:
        from salesman_utils.agent.bayes import posteriors_for

        posteriors = posteriors_for(profile, splits)
    if isinstance(posteriors, dict):
        posteriors = posteriors["train"]
    w = np.round(np.asarray(posteriors, dtype=float), 6)
    cfg = profile.library
    spec = profile.models.realizer if cfg.use_llm_outlines else None
    key = _hash(
        {
            "library": asdict(cfg),
            "seed": profile.seed,
            "embedder": profile.models.embedder,
            "calls": [d.id for d in splits["train"]],
            "outline": spec and asdict(spec),
            "w": hashlib.sha256(w.tobytes()).hexdigest(),
            "version": LIBRARY_VERSION,
            # templates that fail the fact check are dropped: its code is in the key too
            "code": code_digest("agent.library", "world.knowledge", "world.factcheck"),
        }
    )
    path = paths(profile).artifacts / "library" / "library.json"
    embedder = load_embedder(profile)
    if path.exists():
        try:
            lib = ScriptLibrary.load(path, embedder=embedder)
            if lib.meta.get("config_hash") == key:
                return lib
        except LibraryFormatError as exc:  # a stale or broken cache is rebuilt, said in one line
            warnings.warn(ArtifactWarning(f"{exc}; rebuilding it"), stacklevel=2)
    backend = None
    if spec is not None:
        from salesman_utils.llm import make_backend

        backend = make_backend(spec, profile=profile)
    lib = build_library(
        splits["train"],
        w,
        embedder,
        max_k=cfg.max_k,
        min_support=cfg.min_support,
        top_fraction=cfg.top_fraction,
        seed=profile.seed,
        outline_backend=backend,
    )
    lib.meta["config_hash"] = key
    lib.save(path)
    return lib


# ---------------------------------------------------------------- inspection


def library_frame(library: ScriptLibrary) -> Any:
    """One row per entry: id, intent, support, posterior mean and 90% interval, template, outline."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "id": e.id,
                "intent": e.intent,
                "support": e.support,
                "posterior_mean": e.posterior_mean,
                "ci_lo": e.ci[0],
                "ci_hi": e.ci[1],
                "slots": " ".join(e.slots),
                "template": e.template,
                "outline": " | ".join(e.outline),
                "outline_method": e.outline_method,
            }
            for e in library.entries
        ]
    )


def source_quality(library: ScriptLibrary, train_dialogues: Sequence[Dialogue]) -> Any:
    """EVALUATION ONLY (reads hidden quality): per intent and overall, the share of hidden-good
    turns among the library's source turns vs among all training agent turns of that intent."""
    import pandas as pd

    q = {
        (d.id, i): (d.turns[i].intent, d.turns[i].hidden.get("quality"))
        for d, i in agent_turns(train_dialogues)
    }
    src = {tuple(s) for e in library.entries for s in e.source_turns}
    rows = []
    for intent in [*INTENTS, "overall"]:
        keys = [k for k, (it, _) in q.items() if intent in ("overall", it)]
        corpus = [q[k][1] for k in keys if q[k][1] is not None]
        sources = [q[k][1] for k in keys if k in src and q[k][1] is not None]
        rows.append(
            {
                "intent": intent,
                "n_templates": sum(
                    e.intent == intent or intent == "overall" for e in library.entries
                ),
                "n_sources": len(sources),
                "n_turns": len(corpus),
                "source_good_share": float(np.mean(sources)) if sources else float("nan"),
                "corpus_good_share": float(np.mean(corpus)) if corpus else float("nan"),
            }
        )
    df = pd.DataFrame(rows)
    return df.assign(lift=df.source_good_share - df.corpus_good_share)


def cluster_points(library: ScriptLibrary, train_dialogues: Sequence[Dialogue]) -> Any:
    """For the cluster map: every distinct slotted text of the training agent turns, with its
    intent, turn count, the entry whose sources hold it ("not selected" when none), whether it is
    that entry's template, and 2-D PCA coordinates (fitted per intent)."""
    import pandas as pd
    from sklearn.decomposition import PCA

    owner = {tuple(s): e for e in library.entries for s in e.source_turns}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for d, i in agent_turns(train_dialogues):
        text = clean_text(d.turns[i].text)
        tpl = templatize(text, get_product(d.product_id), d.merchant, d.agent.name)
        e = owner.get((d.id, i))
        row = rows.setdefault(
            (d.turns[i].intent, tpl),
            {
                "intent": d.turns[i].intent,
                "template": tpl,
                "n_turns": 0,
                "entry": "not selected",
                "is_template": False,
            },
        )
        row["n_turns"] += 1
        if e is not None:
            row["entry"], row["is_template"] = e.id, e.template == tpl
    df = pd.DataFrame(list(rows.values()))
    df["x"], df["y"] = 0.0, 0.0
    for idx in df.groupby("intent").groups.values():
        x = library.embed(df.loc[idx, "template"].tolist())
        xy = PCA(2, random_state=0).fit_transform(x) if len(idx) > 2 else np.zeros((len(idx), 2))
        df.loc[idx, "x"], df.loc[idx, "y"] = xy[:, 0], xy[:, 1]
    return df
