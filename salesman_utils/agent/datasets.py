"""The GRPO, SFT and held-out evaluation datasets (Hugging Face `datasets`), built from the
training corpus's visible agent-turn contexts.

`build_grpo_dataset` samples contexts and adds the reward columns (reference, prototype, posterior
weight); `sft_rows` / `to_sft_dataset` turn them into imitation rows (with price-answer rows when
`training.sft.price_share` > 0); `build_eval_dataset` is the one place that reads a turn's `hidden`
dict, for held-out scoring columns only, never for a prompt."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from salesman_utils.agent.prompts import build_prompt
from salesman_utils.config import Profile
from salesman_utils.world.corpus import (
    agent_turn_contexts,
    fact_check,
    get_product,
    visible_merchant_facts,
)


def _contexts(dialogues: Sequence[Any], n: int | None, seed: int) -> list[tuple[int, Any, int]]:
    """(dialogue index, context, agent-turn ordinal) for `n` sampled agent turns (all if None)."""
    items, k = [], 0
    for di, d in enumerate(dialogues):
        for ctx in agent_turn_contexts(d):
            items.append((di, ctx, k))
            k += 1
    if n is not None and n < len(items):
        pick = np.random.default_rng(seed).choice(len(items), size=n, replace=False)
        items = [items[i] for i in sorted(pick)]
    return items


def select_prototypes(
    dialogues: Sequence[Any], posteriors: np.ndarray, seed: int = 0
) -> dict[tuple[str, str | None], str]:
    """Best-posterior faithful turn text per (intent, product_id), and per (intent, None).

    Ties (turns with identical evidence share a posterior) are broken by a seeded draw.
    """
    texts = [
        (t.intent, d.product_id, t.text, d.merchant)
        for d in dialogues
        for t in d.turns
        if t.speaker == "agent"
    ]
    if len(texts) != len(posteriors):
        raise ValueError(f"select_prototypes: {len(posteriors)} posteriors, {len(texts)} turns")
    jitter = np.random.default_rng(seed).random(len(texts)) * 1e-9
    best: dict[tuple[str, str | None], tuple[float, str]] = {}
    for (intent, pid, text, merchant), w in zip(texts, posteriors + jitter, strict=True):
        for key in ((intent, pid), (intent, None)):
            if key in best and best[key][0] >= w:
                continue
            if fact_check(text, get_product(pid), merchant):
                continue  # a prototype must be faithful
            best[key] = (float(w), text)
    return {k: v[1] for k, v in best.items()}


def build_grpo_dataset(
    dialogues: Sequence[Any],
    posteriors: np.ndarray,
    profile: Profile,
    n: int | None = None,
    seed: int | None = None,
) -> Any:
    """GRPO training contexts from training dialogues as a `datasets.Dataset`.

    Columns: prompt (conversational), reference (the rep's text), prototype (best-posterior
    faithful training turn of the same intent and product), weight (the reference turn's
    posterior w), intent, product_id, merchant (visible facts, JSON), dialogue_id, turn_index.
    `posteriors` align with the agent turns of `dialogues` (`bayes.posteriors_for`). Nothing of
    `hidden` is read. `n` defaults to `profile.training.n_train_prompts`.
    """
    from datasets import Dataset

    seed = profile.seed if seed is None else seed
    posteriors = np.asarray(posteriors, dtype=float)
    protos = select_prototypes(dialogues, posteriors, seed)
    rows = []
    for di, ctx, k in _contexts(dialogues, n or profile.training.n_train_prompts, seed):
        d = dialogues[di]
        intent = d.turns[ctx.index].intent
        proto = protos.get((intent, d.product_id)) or protos.get((intent, None), "")
        rows.append(
            {**_visible_row(ctx, d, profile), "prototype": proto, "weight": float(posteriors[k])}
        )
    return Dataset.from_list(rows)


def _visible_row(ctx: Any, d: Any, profile: Profile) -> dict[str, Any]:
    turn = d.turns[ctx.index]
    return {
        "prompt": build_prompt(ctx, d, profile),
        "reference": turn.text,
        "intent": turn.intent,
        "product_id": d.product_id,
        "merchant": json.dumps(visible_merchant_facts(d.merchant)),
        "dialogue_id": d.id,
        "turn_index": ctx.index,
    }


def build_eval_dataset(
    dialogues: Sequence[Any],
    profile: Profile,
    n: int | None = None,
    seed: int | None = None,
    posteriors: np.ndarray | None = None,
    prototypes: dict[tuple[str, str | None], str] | None = None,
) -> Any:
    """Held-out contexts with the evaluation-only columns `expert_text`, `expert_intent` and
    `quality` (from `hidden`: never pass this dataset to a trainer). `n` defaults to
    `profile.training.n_eval_prompts`. With `posteriors` (aligned with the agent turns of
    `dialogues`, visible evidence only) and `prototypes` (`select_prototypes` of the TRAIN split),
    the reward columns `weight` and `prototype` are added, so every training reward can be scored
    on held-out contexts."""
    from datasets import Dataset

    seed = profile.seed if seed is None else seed
    rows = []
    for di, ctx, k in _contexts(dialogues, n or profile.training.n_eval_prompts, seed):
        d = dialogues[di]
        hidden = d.turns[ctx.index].hidden  # evaluation-only columns
        row = {
            **_visible_row(ctx, d, profile),
            "expert_text": hidden["expert_text"],
            "expert_intent": hidden["expert_intent"],
            "quality": int(hidden["quality"]),
        }
        if posteriors is not None and prototypes is not None:
            intent = row["intent"]
            row["weight"] = float(np.asarray(posteriors)[k])
            row["prototype"] = prototypes.get((intent, d.product_id)) or prototypes.get(
                (intent, None), ""
            )
        rows.append(row)
    return Dataset.from_list(rows)


def sft_target(intent: str | None, text: str) -> str:
    """The SFT target of a reference turn: the rep's words as spoken (`intent` is not used: no
    plan line; kept in the signature for callers of the earlier format)."""
    return text.strip()


def price_answer_rows(dialogues: Sequence[Any], profile: Profile) -> list[dict[str, Any]]:
    """Visible training rows (like `build_grpo_dataset`'s, without reward columns) of the reps'
    answers to price pushes (`pricing.price_answer_turns`): the merchant pushed on the price and
    the rep answered with the knowledge base's plan price or promotion, faithfully."""
    from salesman_utils.agent.pricing import price_answer_turns

    return [_visible_row(ctx, d, profile) for d, ctx in price_answer_turns(dialogues)]


def sft_rows(
    grpo_dataset: Any, price_rows: Sequence[dict[str, Any]], share: float, seed: int
) -> list[dict[str, Any]]:
    """The SFT rows: `share` of them (rounded, at most all of `price_rows`, drawn without
    replacement) are price answers, the rest the GRPO contexts' rows in their order; shuffled."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"training.sft.price_share: expected 0 <= share < 1, got {share!r}")
    rows = [dict(r) for r in grpo_dataset]
    rng = np.random.default_rng(seed)
    k = min(int(round(share * len(rows))), len(price_rows))
    picked = [dict(price_rows[i]) for i in sorted(rng.choice(len(price_rows), k, replace=False))]
    mixed = rows[: len(rows) - k] + picked
    return [mixed[i] for i in rng.permutation(len(mixed))]


def to_sft_dataset(grpo_dataset: Any) -> Any:
    """prompt/completion pairs (conversational): SFT on the reference of every row of a GRPO
    dataset, or of `sft_rows` (the GRPO rows with a share replaced by price answers)."""
    from datasets import Dataset

    return Dataset.from_list(
        [
            {
                "prompt": row["prompt"],
                "completion": [
                    {"role": "assistant", "content": sft_target(row["intent"], row["reference"])}
                ],
            }
            for row in grpo_dataset
        ]
    )
