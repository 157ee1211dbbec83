"""The TeleSalesCorpus-style corpus: what the rest of the repo imports (docs/DESIGN.md §2).

Schemas and the simulator live in `simulator`, the knowledge base and fact check in `factcheck`;
this module re-exports them and adds what happens after simulation: LLM realization with a fact
guard, quality filtering, the split by merchant, JSONL storage (hidden ground truth in separate
files), a `datasets.DatasetDict` without hidden fields, statistics, and the visible views other
modules build prompts from (`agent_turn_contexts`, `visible_merchant_facts`, `product_facts_text`).

Nothing in `Turn.hidden`, in the merchant's latent fields or in the rep's rates may feed a model, a
reward or a prompt: the visible views below strip them.

One module although long: what happens to simulated calls after simulation, in the order it
happens (realization, filtering, splits, storage, the visible views), over one record format.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from salesman_utils.artifacts import run_command
from salesman_utils.stats import wilson_ci
from salesman_utils.world.factcheck import Fact, Violation, extract_facts, fact_check
from salesman_utils.world.knowledge import Product, get_product, load_products, product_facts_text
from salesman_utils.world.simulator import (
    ACTS,
    INTENTS,
    LATENT_AGENT_FIELDS,
    LATENT_MERCHANT_FIELDS,
    OPENING_REGISTER,
    OUTCOMES,
    PERSONALIZATION_DUE,
    SKILLS,
    STAGE_PLANS,
    AgentProfile,
    CustomerSimulator,
    Dialogue,
    MerchantProfile,
    Realizer,
    Turn,
    choose_move,
    disfluent,
    load_bank,
    load_banks,
    sample_agent,
    sample_merchant,
    simulate_corpus,
    simulate_rep_call,
)

OBJECTION_TYPES = list(load_bank("personas")["objection_types"])  # the personas bank only
SPLITS = ("train", "validation", "test")
SCHEMA_VERSION = 1

__all__ = [
    "ACTS",
    "INTENTS",
    "OBJECTION_TYPES",
    "OUTCOMES",
    "SKILLS",
    "PERSONALIZATION_DUE",
    "OPENING_REGISTER",
    "STAGE_PLANS",
    "LATENT_AGENT_FIELDS",
    "LATENT_MERCHANT_FIELDS",
    "AgentProfile",
    "CustomerSimulator",
    "Dialogue",
    "Fact",
    "MerchantProfile",
    "Product",
    "Realizer",
    "Turn",
    "Violation",
    "AgentTurnContext",
    "CorpusFormatError",
    "agent_turn_contexts",
    "choose_move",
    "corpus_stats",
    "disfluent",
    "extract_facts",
    "fact_check",
    "get_product",
    "load_corpus",
    "load_bank",
    "load_banks",
    "load_products",
    "mentions_merchant_data",
    "product_facts_text",
    "quality_filter",
    "realize_with_llm",
    "sample_agent",
    "sample_merchant",
    "save_corpus",
    "simulate_corpus",
    "simulate_rep_call",
    "split",
    "to_hf_dataset",
    "turn_frame",
    "visible_merchant_facts",
]


# ---------------------------------------------------------------- visible views


def visible_merchant_facts(merchant: MerchantProfile) -> dict[str, Any]:
    """What a rep sees in the merchant dashboard: no latent interest, patience, style or pains."""
    return {
        k: v for k, v in dataclasses.asdict(merchant).items() if k not in LATENT_MERCHANT_FIELDS
    }


def visible_turn(turn: Turn) -> Turn:
    return dataclasses.replace(turn, hidden={})


class AgentTurnContext(NamedTuple):
    index: int  # position of the agent turn in dialogue.turns
    history: list[Turn]  # the turns before it, hidden fields stripped
    prev_act: str | None  # the customer's last act (None for the first turn)
    product: Product


def agent_turn_contexts(dialogue: Dialogue) -> Iterator[AgentTurnContext]:
    """For each agent turn: (index, visible history, previous customer act, product)."""
    product = get_product(dialogue.product_id)
    for i, turn in enumerate(dialogue.turns):
        if turn.speaker == "agent":
            prev = dialogue.turns[i - 1].act if i > 0 else None
            yield AgentTurnContext(i, [visible_turn(t) for t in dialogue.turns[:i]], prev, product)


def mentions_merchant_data(text: str, merchant: MerchantProfile) -> bool:
    """Whether a reply uses this merchant's own data (a store metric or peer median, however
    formatted): the `personalized` flag to pass to `CustomerSimulator.step` for free-text replies."""
    _, facts = extract_facts(text)
    said = {round(float(x), 1) for x in re.findall(r"\d+(?:\.\d+)?", text.replace(",", ""))}
    said |= {round(f.value, 1) for f in facts}
    values = [*merchant.metrics.values(), *merchant.peer_medians.values()]
    return any(round(float(v), 1) in said for v in values)


# ---------------------------------------------------------------- LLM realization

REALIZE_SYSTEM = (
    "You rewrite one line of a sales phone call so it sounds natural and spoken. Keep every "
    "number, price, percentage, duration and name exactly as written. Do not add facts or "
    "promises. Reply with the rewritten line only."
)


REJECT_REASONS = ("empty", "length", "lost_fact", "new_violation", "lost_name")


def _clean_reply(reply: str) -> str:
    line = reply.strip().split("\n")[0].strip()
    line = re.sub(r"^(?:rewritten line|rewrite|line|answer)\s*:\s*", "", line, flags=re.I)
    return line.strip().strip('"').strip()


def check_rewrite(
    original: str,
    rewrite: str,
    product: Product,
    merchant: MerchantProfile | None = None,
    names: Sequence[str] = (),
) -> str | None:
    """Why a rewrite must be rejected (None = accept): empty, length, lost_fact, new_violation,
    lost_name. Facts are compared as (kind, value, period) multisets."""
    if len(rewrite.split()) < 3:
        return "empty"
    ratio = len(rewrite) / max(1, len(original))
    if not 0.5 <= ratio <= 2.0:
        return "length"

    def key(f: Fact) -> tuple[str, float]:
        return (f.kind, f.value)

    before = Counter(key(f) for f in extract_facts(original)[1])
    after = Counter(key(f) for f in extract_facts(rewrite)[1])
    if before - after:
        return "lost_fact"
    old = Counter(v.kind for v in fact_check(original, product, merchant))
    new = Counter(v.kind for v in fact_check(rewrite, product, merchant))
    if new - old or after - before:
        return "new_violation"
    if any(n.lower() in original.lower() and n.lower() not in rewrite.lower() for n in names):
        return "lost_name"
    return None


def realize_with_llm(
    dialogues: Sequence[Dialogue],
    backend: Any,
    *,
    sample: int | None = None,
    seed: int = 0,
    speakers: Sequence[str] = ("agent",),
    max_new_tokens: int = 64,
) -> tuple[list[Dialogue], dict[str, int]]:
    """Rewrite turns with `backend.chat` for more natural text; keep the template text whenever the
    rewrite loses or changes a fact (see `check_rewrite`). `sample` = how many dialogues to rewrite
    (None or -1: all; chosen by `seed`). Returns (all dialogues, rewritten ones replaced; counts)."""
    out = list(dialogues)
    idx = list(range(len(out)))
    if sample is not None and 0 <= sample < len(out):
        idx = sorted(np.random.default_rng(seed).choice(len(out), size=sample, replace=False))
    jobs = [(i, j) for i in idx for j, t in enumerate(out[i].turns) if t.speaker in speakers]
    batch = [
        [
            {"role": "system", "content": REALIZE_SYSTEM},
            {"role": "user", "content": f"Line: {out[i].turns[j].text}"},
        ]
        for i, j in jobs
    ]
    replies = (
        backend.chat(
            batch, max_new_tokens=max_new_tokens, temperature=0.0, seed=seed, desc="realize turns"
        )
        if batch
        else []
    )
    counts: Counter[str] = Counter(dialogues=len(idx), turns=len(jobs), accepted=0, rejected=0)
    counts.update({f"rejected_{r}": 0 for r in REJECT_REASONS})
    new_turns = {i: list(out[i].turns) for i in idx}
    for (i, j), reply in zip(jobs, replies, strict=True):
        d, turn = out[i], out[i].turns[j]
        product = get_product(d.product_id)
        text = _clean_reply(reply)
        why = check_rewrite(
            turn.text,
            text,
            product,
            d.merchant,
            names=(product.name, d.merchant.name, d.merchant.owner),
        )
        if why:
            counts["rejected"] += 1
            counts[f"rejected_{why}"] += 1
            continue
        counts["accepted"] += 1
        hidden = dict(turn.hidden, template_text=turn.text, realized=True)
        if turn.speaker == "agent":
            hidden["violations"] = [v.__dict__ for v in fact_check(text, product, d.merchant)]
        new_turns[i][j] = dataclasses.replace(turn, text=text, hidden=hidden)
    for i in idx:
        out[i] = dataclasses.replace(out[i], turns=new_turns[i])
    return out, dict(counts)


# ---------------------------------------------------------------- filtering and splitting


def structure_problem(d: Dialogue, max_words: int = 80) -> str | None:
    """Why a dialogue is malformed (None = fine)."""
    if len(d.turns) < 2 or d.outcome not in OUTCOMES:
        return "structure"
    for k, t in enumerate(d.turns):
        want = "agent" if k % 2 == 0 else "customer"
        if (
            t.speaker != want
            or (want == "agent" and t.intent not in INTENTS)
            or (want == "customer" and t.act not in ACTS)
        ):
            return "structure"
        if (t.act == "objection") != (t.objection_type is not None):
            return "structure"
        if not 1 <= len(t.text.split()) <= max_words:
            return "length"
    last = d.turns[-1].act
    if (d.outcome == "success") != (last == "agreement") or (d.outcome == "hangup") != (
        last == "hangup"
    ):
        return "structure"
    return None


def _embed(texts: list[str], embedder_or_profile: Any) -> np.ndarray:
    if hasattr(embedder_or_profile, "encode"):
        x = embedder_or_profile.encode(texts, batch_size=64, normalize_embeddings=True)
    elif callable(embedder_or_profile):
        x = embedder_or_profile(texts)
    else:
        from salesman_utils.models import embed

        x = embed(texts, embedder_or_profile)
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


def quality_filter(
    dialogues: Sequence[Dialogue],
    embedder_or_profile: Any,
    *,
    threshold: float = 0.97,
    max_words: int = 80,
    signature_chars: int = 240,
) -> tuple[list[Dialogue], dict[str, int]]:
    """Drop malformed calls (speaker order, labels, outcome vs last act), turns of 0 or more than
    `max_words` words, and near-duplicates: calls whose agent-side text (first `signature_chars`
    characters) has cosine similarity above `threshold` to an earlier kept call.
    `embedder_or_profile`: a SentenceTransformer, a function texts -> vectors, or a Profile."""
    report = Counter(
        n_in=len(dialogues), removed_structure=0, removed_length=0, removed_duplicate=0
    )
    ok = []
    for d in dialogues:
        why = structure_problem(d, max_words)
        if why:
            report[f"removed_{why}"] += 1
        else:
            ok.append(d)
    kept: list[Dialogue] = []
    if ok:
        sig = [
            " ".join(t.text for t in d.turns if t.speaker == "agent")[:signature_chars] for d in ok
        ]
        x = _embed(sig, embedder_or_profile)
        keep_idx: list[int] = []
        for i in range(len(ok)):
            if keep_idx and float(np.max(x[keep_idx] @ x[i])) > threshold:
                report["removed_duplicate"] += 1
            else:
                keep_idx.append(i)
        kept = [ok[i] for i in keep_idx]
    report["n_kept"] = len(kept)
    return kept, dict(report)


def split(
    dialogues: Sequence[Dialogue], seed: int = 0, fractions: Sequence[float] = (0.8, 0.1, 0.1)
) -> dict[str, list[Dialogue]]:
    """Train/validation/test by merchant (no merchant in two splits), call counts near `fractions`."""
    fr = [float(f) for f in fractions]
    if len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1) > 1e-6:
        raise ValueError(
            f"corpus.split_fractions: need 3 non-negative numbers summing to 1, got "
            f"{list(fractions)}"
        )
    by_m: dict[str, list[Dialogue]] = {}
    for d in dialogues:
        by_m.setdefault(d.merchant.id, []).append(d)
    order = sorted(by_m)
    np.random.default_rng(seed).shuffle(order)
    out: dict[str, list[Dialogue]] = {s: [] for s in SPLITS}
    total = max(1, len(dialogues))
    for m in order:  # give each merchant to the split furthest below its target share
        gaps = [fr[k] - len(out[s]) / total for k, s in enumerate(SPLITS)]
        out[SPLITS[int(np.argmax(gaps))]].extend(by_m[m])
    return out


# ---------------------------------------------------------------- storage


class CorpusFormatError(ValueError):
    """A corpus file is malformed: the message names the file, the line and the field."""


def _visible_record(d: Dialogue) -> dict[str, Any]:
    return {
        "id": d.id,
        "product_id": d.product_id,
        "outcome": d.outcome,
        "merchant": visible_merchant_facts(d.merchant),
        "agent": {"id": d.agent.id, "name": d.agent.name, "skill": d.agent.skill},
        "turns": [
            {
                "speaker": t.speaker,
                "text": t.text,
                "intent": t.intent,
                "act": t.act,
                "objection_type": t.objection_type,
            }
            for t in d.turns
        ],
    }


def _hidden_record(d: Dialogue) -> dict[str, Any]:
    return {
        "id": d.id,
        "merchant": {k: getattr(d.merchant, k) for k in LATENT_MERCHANT_FIELDS},
        "agent": {k: getattr(d.agent, k) for k in LATENT_AGENT_FIELDS},
        "turns": [t.hidden for t in d.turns],
    }


def save_corpus(splits: dict[str, list[Dialogue]], folder: str | Path) -> Path:
    """`<split>.jsonl` (what models may see) + `<split>.hidden.jsonl` (ground truth, by id) +
    `manifest.json`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, ds in splits.items():
        with (
            open(folder / f"{name}.jsonl", "w") as vis,
            open(folder / f"{name}.hidden.jsonl", "w") as hid,
        ):
            for d in ds:
                vis.write(json.dumps(_visible_record(d), ensure_ascii=False) + "\n")
                hid.write(json.dumps(_hidden_record(d), ensure_ascii=False) + "\n")
    manifest = {"schema_version": SCHEMA_VERSION, "splits": {k: len(v) for k, v in splits.items()}}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


def _need(
    rec: dict[str, Any],
    key: str,
    where: str,
    kind: type | tuple[type, ...],
    allowed: Sequence[Any] | None = None,
) -> Any:
    if not isinstance(rec, dict) or key not in rec:
        raise CorpusFormatError(f"{where}: field '{key}': missing")
    val = rec[key]
    if not isinstance(val, kind) or (allowed is not None and val not in allowed):
        raise CorpusFormatError(
            f"{where}: field '{key}': bad value {val!r}"
            + (f" (allowed: {list(allowed)})" if allowed else "")
        )
    return val


def _parse_dialogue(rec: dict[str, Any], hidden: dict[str, Any] | None, where: str) -> Dialogue:
    for key in ("id", "product_id"):
        _need(rec, key, where, str)
    _need(rec, "outcome", where, str, OUTCOMES)
    m = _need(rec, "merchant", where, dict)
    a = _need(rec, "agent", where, dict)
    for key in ("id", "name", "owner", "category", "city"):
        _need(m, key, f"{where}: merchant", str)
    for key in ("metrics", "peer_medians"):
        _need(m, key, f"{where}: merchant", dict)
    _need(a, "skill", f"{where}: agent", str, SKILLS)
    turns_raw = _need(rec, "turns", where, list)
    hid = hidden or {"merchant": {}, "agent": {}, "turns": [{} for _ in turns_raw]}
    if len(hid.get("turns", [])) != len(turns_raw):
        raise CorpusFormatError(
            f"{where}: field 'turns': {len(turns_raw)} turns but the hidden "
            f"file has {len(hid.get('turns', []))}"
        )
    turns = []
    for k, t in enumerate(turns_raw):
        w = f"{where}: turns[{k}]"
        sp = _need(t, "speaker", w, str, ("agent", "customer"))
        intent = _need(t, "intent", w, str, INTENTS) if sp == "agent" else None
        act = _need(t, "act", w, str, ACTS) if sp == "customer" else None
        otype = t.get("objection_type")
        turns.append(Turn(sp, _need(t, "text", w, str), intent, act, hid["turns"][k], otype))
    merchant = MerchantProfile(**{**m, **hid.get("merchant", {})})
    agent = AgentProfile(
        id=_need(a, "id", f"{where}: agent", str),
        name=a.get("name", ""),
        skill=a["skill"],
        **hid.get("agent", {}),
    )
    return Dialogue(rec["id"], rec["product_id"], merchant, agent, turns, rec["outcome"])


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusFormatError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc


def _manifest_counts(folder: Path, rebuild: str) -> dict[str, int] | None:
    """{split: number of calls} of the corpus's `manifest.json` (None when there is none)."""
    path = folder / "manifest.json"
    if not path.exists():
        return None
    try:
        counts = json.loads(path.read_text())["splits"]
        return {str(k): int(v) for k, v in counts.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        msg = f"{path}: unreadable manifest ({exc!r}); rebuild: {rebuild}"
        raise CorpusFormatError(msg) from None


def load_corpus(
    folder: str | Path, with_hidden: bool = True, rebuild: str | None = None
) -> dict[str, list[Dialogue]]:
    """Read what `save_corpus` wrote; `with_hidden=False` leaves every `hidden` empty.

    The number of calls of each split must be the manifest's, and (with `with_hidden`) every call
    must have its hidden record: a split with a line deleted is a `CorpusFormatError` naming the
    file, both counts and `rebuild` (the command that writes the corpus again: notebook 01)."""
    folder = Path(folder)
    rebuild = rebuild or run_command("01")
    counts = _manifest_counts(folder, rebuild)
    names = [
        p.name[: -len(".jsonl")]
        for p in sorted(folder.glob("*.jsonl"))
        if not p.name.endswith(".hidden.jsonl")
    ]
    if not names:
        raise FileNotFoundError(f"{folder}: no corpus here; run notebook 01 first")
    out: dict[str, list[Dialogue]] = {}
    for name in sorted(names, key=lambda s: SPLITS.index(s) if s in SPLITS else 99):
        hidden: dict[str, dict[str, Any]] = {}
        hpath = folder / f"{name}.hidden.jsonl"
        has_hidden = with_hidden and hpath.exists()
        if has_hidden:
            for lineno, rec in _read_jsonl(hpath):
                hidden[_need(rec, "id", f"{hpath}:{lineno}", str)] = rec
        path = folder / f"{name}.jsonl"
        out[name] = []
        for lineno, rec in _read_jsonl(path):
            if has_hidden and rec.get("id") not in hidden:
                raise CorpusFormatError(
                    f"{path}:{lineno}: call {rec.get('id')!r} has no record in {hpath.name}; "
                    f"rebuild: {rebuild}"
                )
            found = hidden.get(rec.get("id")) if with_hidden else None
            out[name].append(_parse_dialogue(rec, found, f"{path}:{lineno}"))
        want = (counts or {}).get(name, len(out[name]))
        if len(out[name]) != want or (has_hidden and len(hidden) != want):
            got = len(out[name]) if len(out[name]) != want else len(hidden)
            where = path if len(out[name]) != want else hpath
            raise CorpusFormatError(
                f"{where}: {got} calls, but {folder / 'manifest.json'} says {want}; "
                f"rebuild: {rebuild}"
            )
    missing = sorted(set(counts or {}) - set(out))
    if missing:
        raise CorpusFormatError(
            f"{folder}: no {missing[0]}.jsonl, but manifest.json lists it; rebuild: {rebuild}"
        )
    return out


def without_hidden(dialogues: Sequence[Dialogue]) -> list[Dialogue]:
    """Copies of `dialogues` as `load_corpus(..., with_hidden=False)` reads them: every turn's
    `hidden` empty, the merchant's latent fields and the rep's latent skills at their defaults.
    For code that must see only what a rep could (the agent's parts), whatever it is handed."""
    return [_parse_dialogue(_visible_record(d), None, f"dialogue {d.id}") for d in dialogues]


def to_hf_dataset(splits: dict[str, list[Dialogue]]) -> Any:
    """A `datasets.DatasetDict` of the visible records only (no hidden field at all)."""
    from datasets import Dataset, DatasetDict

    def row(d: Dialogue) -> dict[str, Any]:
        r = _visible_record(d)
        r["merchant"] = json.dumps(r["merchant"])  # nested metric dicts kept as one JSON column
        return r

    return DatasetDict({k: Dataset.from_list([row(d) for d in v]) for k, v in splits.items()})


# ---------------------------------------------------------------- statistics


def turn_frame(dialogues: Sequence[Dialogue]) -> pd.DataFrame:
    """One row per turn, visible columns plus the hidden ones (quality, expert_intent, ...)."""
    rows = []
    for d in dialogues:
        for i, t in enumerate(d.turns):
            nxt = d.turns[i + 1].act if i + 1 < len(d.turns) else None
            rows.append(
                {
                    "dialogue_id": d.id,
                    "index": i,
                    "speaker": t.speaker,
                    "intent": t.intent,
                    "act": t.act,
                    "objection_type": t.objection_type,
                    "text": t.text,
                    "n_words": len(t.text.split()),
                    "outcome": d.outcome,
                    "skill": d.agent.skill,
                    "product_id": d.product_id,
                    "merchant_id": d.merchant.id,
                    "category": d.merchant.category,
                    "prev_act": d.turns[i - 1].act if i > 0 else None,
                    "next_act": nxt,
                    "quality": t.hidden.get("quality"),
                    "expert_intent": t.hidden.get("expert_intent"),
                    "bad_type": t.hidden.get("bad_type"),
                    "n_violations": len(t.hidden.get("violations", [])),
                }
            )
    return pd.DataFrame(rows)


def corpus_stats(dialogues: Sequence[Dialogue]) -> dict[str, Any]:
    """Counts, shares and conversion by skill (Wilson 95% intervals); ground-truth noise measures
    (good turns in failed calls, bad turns in successful ones) when hidden fields are present."""
    df = turn_frame(dialogues)
    ag = df[df.speaker == "agent"]
    stats: dict[str, Any] = {
        "n_calls": len(dialogues),
        "n_turns": len(df),
        "n_agent_turns": len(ag),
        "n_merchants": len({d.merchant.id for d in dialogues}),
        "turns_per_call": float(df.groupby("dialogue_id").size().mean()) if len(df) else 0.0,
        "outcomes": {o: sum(d.outcome == o for d in dialogues) for o in OUTCOMES},
        "intents": {i: int((ag.intent == i).sum()) for i in INTENTS},
        "acts": {a: int((df.act == a).sum()) for a in ACTS},
        "conversion_by_skill": {},
    }
    for s in SKILLS:
        n = sum(d.agent.skill == s for d in dialogues)
        k = sum(d.agent.skill == s and d.outcome == "success" for d in dialogues)
        _, lo, hi = wilson_ci(k, n)
        stats["conversion_by_skill"][s] = {
            "n": n,
            "rate": k / n if n else math.nan,
            "lo": lo,
            "hi": hi,
        }
    if ag["quality"].notna().any():
        q = ag["quality"].astype(float)
        stats["good_share"] = float(q.mean())
        stats["good_in_failed"] = float(q[ag.outcome != "success"].mean())
        stats["bad_in_success"] = float(1 - q[ag.outcome == "success"].mean())
        stats["bad_types"] = {str(k): int(v) for k, v in ag.bad_type.value_counts().items()}
        stats["turns_with_violations"] = int((ag.n_violations > 0).sum())
    return stats
