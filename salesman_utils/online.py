"""Whole calls of an agent against the simulated customer, and the parts a DOGA agent is built from.

`simulate_calls` plays many calls in lockstep: each round makes ONE batched generation for every live
call (`doga.respond_all`). The customer is the corpus's `CustomerSimulator` (same latent dynamics),
reading a free-text reply through:
* intent = `ReplyTagger` tag of the reply;
* faithful = `fact_check(reply, product, merchant)` finds nothing;
* personalized = `doga.uses_merchant_data` (the reply states this merchant's metrics/peer medians);
* is_expert_move = tagged intent == `CustomerSimulator.expert_intent()`.
Customer lines come from the simulator's templates (fast, deterministic).

`build_parts` fits (or loads from a cache keyed by the training data) the next-intent classifier,
the FSM and the taggers; `best_grpo_adapter` finds the GRPO policy named by `doga.grpo_variant`.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .config import Profile, paths, repo_relative
from .corpus import load_corpus, simulate_corpus, split, visible_turn
from .doga import AgentState, BaseAgent, DOGAAgent, PlainAgent, respond_all, uses_merchant_data
from .factcheck import Product, fact_check, get_product
from .intents import IntentClassifier, IntentFSM, ReplyTagger, TextEmbedder, TextTagger
from .simulator import AgentProfile, CustomerSimulator, Dialogue, MerchantProfile, Turn

PARTS_VERSION = 1


# ---------------------------------------------------------------- calls


def simulate_calls(
    agent_factory: BaseAgent | Callable[[Product, MerchantProfile], BaseAgent],
    merchants_products: Sequence[tuple[MerchantProfile, Product]],
    seeds: Sequence[int],
    profile: Profile,
    *,
    tagger: TextTagger | None = None,
    max_turns: int | None = None,
    system: str | None = None,
    progress: bool = True,
) -> list[Dialogue]:
    """Play one call per (merchant, product) pair and seed, all calls in lockstep.

    `agent_factory` is an agent (shared by all calls: states carry product and merchant) or a
    callable (product, merchant) -> agent. Agent turns carry `intent` = the tagged intent of the
    reply and, in `hidden` (evaluation only), the planned intent, expert intent, quality,
    faithfulness, personalization, violations and guard actions.
    """
    if len(seeds) != len(merchants_products):
        raise ValueError(f"simulate_calls: {len(seeds)} seeds for {len(merchants_products)} calls")
    max_turns = max_turns or profile.doga.max_turns
    agents = [
        agent_factory if isinstance(agent_factory, BaseAgent) else agent_factory(p, m)
        for m, p in merchants_products
    ]
    tagger = tagger or getattr(agents[0], "tagger", None) if agents else tagger
    if agents and tagger is None:
        raise ValueError("simulate_calls: no ReplyTagger (pass tagger= or give the agent one)")
    system = system or (agents[0].name if agents else "agent")
    sims = [
        CustomerSimulator(m, p, seed=[int(s), 11], max_turns=max_turns)
        for (m, p), s in zip(merchants_products, seeds, strict=True)
    ]
    turns: list[list[Turn]] = [[] for _ in sims]
    live = list(range(len(sims)))
    bar = tqdm(total=max_turns, desc=f"{system} calls", disable=not progress)
    rnd = 0
    while live:
        states = [
            AgentState(
                [visible_turn(t) for t in turns[i]],
                merchants_products[i][1],
                merchants_products[i][0],
                seed=profile.seed + rnd,
            )
            for i in live
        ]
        outs = respond_all([agents[i] for i in live], states)
        tags = tagger.tag([o.reply for o in outs])
        for i, out, tag in zip(live, outs, tags, strict=True):
            _play(sims[i], turns[i], out, tag, *merchants_products[i])
        live = [i for i in live if not sims[i].done]
        rnd += 1
        bar.update(1)
    bar.close()
    return [
        Dialogue(
            f"{system}-{k:04d}",
            p.id,
            m,
            AgentProfile(system, agents[k].agent_name, "expert"),
            turns[k],
            sims[k].outcome or "failure",
        )
        for k, (m, p) in enumerate(merchants_products)
    ]


def _play(sim: CustomerSimulator, turns: list[Turn], out: Any, tag: str, m, p) -> None:
    expert = sim.expert_intent()
    violations = fact_check(out.reply, p, m)
    personalized = uses_merchant_data(out.reply, m)
    act, text, _, _ = sim.step(tag, not violations, personalized, is_expert_move=tag == expert)
    hidden = {
        "quality": sim.last_quality,
        "expert_intent": expert,
        "planned_intent": out.intent,
        "faithful": not violations,
        "personalized": personalized,
        "violations": [v.__dict__ for v in violations],
        "guard": out.guard,
        "entry_id": out.entry_id,
        "outline": out.outline,
    }
    turns.append(Turn("agent", out.reply, intent=tag, hidden=hidden))
    turns.append(Turn("customer", text, act=act, objection_type=sim.last_objection_type))


def simulate_call(
    agent: BaseAgent,
    product: Product,
    merchant: MerchantProfile,
    seed: int,
    profile: Profile,
    **kwargs: Any,
) -> Dialogue:
    """One whole call (see `simulate_calls`)."""
    return simulate_calls(agent, [(merchant, product)], [seed], profile, **kwargs)[0]


# ---------------------------------------------------------------- summaries


def summarize_calls(dialogues: Sequence[Dialogue], system: str) -> dict[str, Any]:
    """Conversion, hang-ups and fact violations per 100 agent turns, with 95% Wilson intervals."""
    try:
        from .metrics import wilson_ci
    except ImportError:  # pragma: no cover
        from .corpus import wilson_interval

        def wilson_ci(k: int, n: int) -> tuple[float, float, float]:
            return (k / n if n else float("nan"), *wilson_interval(k, n))

    n = len(dialogues)
    conv = sum(d.outcome == "success" for d in dialogues)
    hang = sum(d.outcome == "hangup" for d in dialogues)
    agent = [t for d in dialogues for t in d.turns if t.speaker == "agent"]
    n_viol = sum(len(t.hidden.get("violations", [])) for t in agent)
    turns_viol = sum(bool(t.hidden.get("violations")) for t in agent)
    guard: Counter[str] = Counter()
    for t in agent:
        guard.update(t.hidden.get("guard", {}))
    rate, lo, hi = wilson_ci(conv, n)
    h_rate, h_lo, h_hi = wilson_ci(hang, n)
    v_rate, v_lo, v_hi = wilson_ci(turns_viol, len(agent))
    return {
        "system": system,
        "n": n,
        "conversions": conv,
        "rate": rate,
        "lo": lo,
        "hi": hi,
        "hangups": hang,
        "hangup_rate": h_rate,
        "hangup_lo": h_lo,
        "hangup_hi": h_hi,
        "violations_per_100": 100 * n_viol / max(1, len(agent)),
        "violating_turns_per_100": 100 * v_rate,
        "violating_lo": 100 * v_lo,
        "violating_hi": 100 * v_hi,
        "agent_turns": len(agent),
        "expert_move_rate": sum(t.intent == t.hidden.get("expert_intent") for t in agent)
        / max(1, len(agent)),
        "personalized_rate": sum(bool(t.hidden.get("personalized")) for t in agent)
        / max(1, len(agent)),
        "guard_regenerated": guard["regenerated"],
        "guard_template": guard["template"],
    }


def online_table(results: dict[str, Sequence[Dialogue]]) -> pd.DataFrame:
    """One row per system (see `summarize_calls`)."""
    return pd.DataFrame([summarize_calls(d, s) for s, d in results.items()])


def online_cases(
    test_dialogues: Sequence[Dialogue], n: int, seed: int = 0
) -> tuple[list[tuple[MerchantProfile, Product]], list[int]]:
    """`n` (merchant, product) pairs from the held-out calls (distinct pairs first, then again with
    other seeds), and one customer seed per call."""
    pairs, seen = [], set()
    for d in test_dialogues:
        if (d.merchant.id, d.product_id) not in seen:
            seen.add((d.merchant.id, d.product_id))
            pairs.append((d.merchant, get_product(d.product_id)))
    if not pairs:
        raise ValueError("online_cases: no test dialogues")
    cases = [pairs[i % len(pairs)] for i in range(n)]
    return cases, [seed * 100_003 + i for i in range(n)]


# ---------------------------------------------------------------- parts and adapters


def load_splits(profile: Profile) -> tuple[dict[str, list[Dialogue]], str]:
    """Notebook 01's corpus; if it is absent, simulate one with the profile's settings (say so)."""
    folder = paths(profile).corpus
    if (folder / "manifest.json").exists():
        return load_corpus(folder, with_hidden=True), f"loaded from {repo_relative(folder)}"
    c = profile.corpus
    dialogues = simulate_corpus(c.n_calls, seed=c.seed, disfluency=c.disfluency)
    note = f"simulated {c.n_calls} calls (no corpus at {repo_relative(folder)}: run notebook 01)"
    return split(dialogues, seed=c.split_seed, fractions=tuple(c.split_fractions)), note


@dataclass
class DogaParts:
    """What a DOGA agent needs besides a backend (the library may be None if absent)."""

    classifier: IntentClassifier
    fsm: IntentFSM
    tagger: ReplyTagger
    act_tagger: TextTagger
    library: Any = None
    library_note: str = ""


def _train_key(train: Sequence[Dialogue], profile: Profile, weights: Any) -> str:
    calls = [(d.id, d.outcome, d.turns[0].text) for d in train]
    w = None if weights is None else np.round(np.asarray(weights, dtype=float), 6).tolist()
    blob = json.dumps([PARTS_VERSION, profile.models.embedder, calls, w])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _posteriors(profile: Profile, splits: dict[str, list[Dialogue]]) -> Any:
    try:
        from .bayes import posteriors_for
    except ImportError:
        return None
    return posteriors_for(profile, splits)


def build_parts(
    profile: Profile,
    splits: dict[str, list[Dialogue]],
    posteriors: Any = None,
    use_cache: bool = True,
) -> DogaParts:
    """Fit classifier, FSM and taggers on the training split (cached on disk by its content), and
    load or build the script library of notebook 03."""
    train = splits["train"]
    posteriors = posteriors if posteriors is not None else _posteriors(profile, splits)
    train_post = posteriors.get("train") if isinstance(posteriors, dict) else posteriors
    key = _train_key(train, profile, train_post)
    cache = paths(profile).models / "doga" / f"parts-{key}.pkl"
    if use_cache and cache.exists():
        parts = pickle.loads(cache.read_bytes())
    else:
        emb = TextEmbedder(profile)
        parts = DogaParts(
            classifier=IntentClassifier.fit(train, profile, posteriors=train_post, embedder=emb),
            fsm=IntentFSM.fit(train),
            tagger=ReplyTagger.fit(train, profile, embedder=emb),
            act_tagger=TextTagger.fit(train, profile, speaker="customer", embedder=emb),
        )
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(parts))
    try:
        from .library import load_or_build

        parts.library = load_or_build(profile, splits, posteriors)
        parts.library_note = "script library of notebook 03"
    except ImportError:
        parts.library, parts.library_note = None, "no salesman_utils.library: built-in lines"
    return parts


def best_grpo_adapter(profile: Profile) -> tuple[str | None, Path | None, str]:
    """(variant, adapter folder, note) of the GRPO policy that `best_grpo_doga` runs under DOGA.

    The variant is the profile's `doga.grpo_variant` (default `grpo_bayes`, the paper's best: GRPO
    with R_bayes and no SFT). It is set in the profile rather than picked from notebook 02's held-out
    table, because those contexts are among the items notebook 05 scores: picking there would select
    on the test items. Without the adapter: (None, None, why) = the system is skipped.
    """
    variant = profile.doga.grpo_variant
    folder = paths(profile).models / variant / "adapter"
    if (folder / "adapter_config.json").exists():
        return variant, folder, f"doga.grpo_variant = {variant}"
    return (
        None,
        None,
        f"no {variant} adapter at {repo_relative(folder)} (doga.grpo_variant; run notebook 02)",
    )


def make_agent(
    kind: str,
    parts: DogaParts,
    profile: Profile,
    adapter: str | Path | None = None,
    name: str | None = None,
    **kwargs: Any,
) -> BaseAgent:
    """A `plain` or `doga` agent on the profile's policy backend (+ LoRA adapter)."""
    from .llm import make_backend

    spec = {**vars(profile.models.policy), "adapter": str(adapter) if adapter else None}
    backend = make_backend(spec, profile=profile)
    common = {
        "profile": profile,
        "tagger": parts.tagger,
        "name": name,
    }
    if kind == "plain":
        return PlainAgent(backend, **common, **kwargs)
    if kind == "doga":
        return DOGAAgent(backend, parts.library, parts.classifier, parts.fsm, **common, **kwargs)
    raise ValueError(f"agent kind must be plain or doga, got {kind!r}")


def transcript(dialogue: Dialogue, width: int = 110) -> str:
    """A readable call: agent lines with tagged (and planned) intent, customer lines with act."""
    import textwrap

    lines = [f"{dialogue.id}  product={dialogue.product_id}  outcome={dialogue.outcome}"]
    for t in dialogue.turns:
        if t.speaker == "agent":
            planned = t.hidden.get("planned_intent")
            tag = t.intent + (f" / planned {planned}" if planned and planned != t.intent else "")
            head = f"AGENT [{tag}]"
        else:
            head = f"MERCHANT [{t.act}{':' + t.objection_type if t.objection_type else ''}]"
        lines.append(textwrap.shorten(f"{head} {t.text}", width=width))
    return "\n".join(lines)
