"""Turn-level offline evaluation (notebook 05): held-out contexts, the seven systems' replies,
automatic metrics with bootstrap intervals, judge inputs, and the judge's ground-truth checks.

* `eval_items` samples agent-turn contexts of the test split; the capability of an item is the
  intent the real rep used there. Notebook 02's held-out contexts come first, so that the plain
  and trained systems' replies to them are cache hits (same prompt, same decoding).
* `system_specs` lists the seven systems (`SYSTEMS`) with their LoRA adapters; a system whose
  adapter is missing is marked unavailable with the reason, never silently dropped.
* `generate` answers every item with a `doga.PlainAgent` (notebook 02's training prompt,
  `prompts.build_prompt`) or a `doga.DOGAAgent`, greedily; replies are `doga.clean_reply`-ed
  (the `Plan:` line is stripped by `rewards.parse_completion`).
* `judge.items.judge_view` is what the judge sees of an item: the knowledge base, the merchant dashboard, the
  last turns and the reply; never the corpus rep's move or anything hidden. The hidden expert
  reply and hidden labels are read ONLY by `auto_metric_items`, `faithfulness_probe`,
  `referee_probe` and `expert_novice_pairs` (evaluation, never a prompt of a system); the
  validation thresholds live in `judge.validation`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesman_utils.config import VARIANTS, Profile, paths, repo_relative
from salesman_utils.judge.items import judge_view
from salesman_utils.judge.llm_judge import CAPABILITIES
from salesman_utils.referee import facts as referee_facts
from salesman_utils.referee.answers import allowed_texts
from salesman_utils.referee.degenerate import degenerate_reasons
from salesman_utils.world.corpus import AgentTurnContext, Dialogue, Product, visible_merchant_facts

# the systems of the offline comparison, in the order every table and figure shows them
SYSTEMS = [
    "base_plain",
    "base_doga",
    "sft",
    "grpo_sim",
    "grpo_bayes",
    "sft_grpo_bayes",
    "best_grpo_doga",
]
PLAIN_ADAPTER_SYSTEMS = VARIANTS  # each trained policy of notebook 02, plain prompt


@dataclass
class EvalItem:
    """One held-out moment of a call. `expert_text` is hidden: evaluation only."""

    item_id: str
    capability: str
    dialogue: Dialogue
    context: AgentTurnContext
    reference: str
    expert_text: str

    @property
    def product(self) -> Product:
        return self.context.product


def eval_items(
    dialogues: Sequence[Dialogue], n: int, seed: int = 0, first_n: int = 0
) -> list[EvalItem]:
    """`n` agent-turn contexts of `dialogues` (the test split, with hidden fields): the
    `first_n` contexts notebook 02 evaluated (`rewards._contexts`, same seed) first, then others
    in a seeded random order."""
    from salesman_utils.agent.datasets import _contexts

    every = _contexts(dialogues, None, seed)
    first = (
        {(di, c.index) for di, c, _ in _contexts(dialogues, first_n, seed)} if first_n else set()
    )
    rest = [x for x in every if (x[0], x[1].index) not in first]
    order = np.random.default_rng(seed).permutation(len(rest))
    chosen = [x for x in every if (x[0], x[1].index) in first] + [rest[i] for i in order]
    out = []
    for di, ctx, _ in chosen[:n]:
        d = dialogues[di]
        turn = d.turns[ctx.index]
        if "expert_text" not in turn.hidden:
            raise ValueError(
                f"dialogue {d.id}: turn {ctx.index} has no hidden expert_text "
                "(load the test split with with_hidden=True)"
            )
        out.append(
            EvalItem(
                f"{d.id}:{ctx.index}", turn.intent, d, ctx, turn.text, turn.hidden["expert_text"]
            )
        )
    return out


def stratified(items: Sequence[Any], n: int, key: str = "capability") -> list[Any]:
    """`n` items taken round-robin over the values of `key` in rubric order (balanced buckets)."""
    buckets: dict[str, list[Any]] = {c: [] for c in CAPABILITIES}
    for it in items:
        buckets.setdefault(getattr(it, key), []).append(it)
    out: list[Any] = []
    depth = 0
    while len(out) < min(n, len(items)):
        for b in buckets.values():
            if depth < len(b) and len(out) < n:
                out.append(b[depth])
        depth += 1
    return out


def capability_counts(items: Sequence[EvalItem]) -> pd.Series:
    return (
        pd.Series([it.capability for it in items])
        .value_counts()
        .reindex(list(CAPABILITIES), fill_value=0)
    )


# ---------------------------------------------------------------- systems


@dataclass
class SystemSpec:
    name: str
    kind: str  # plain | doga
    adapter: Path | None
    available: bool
    note: str


def system_specs(profile: Profile) -> list[SystemSpec]:
    """The systems of `SYSTEMS` that this profile trains, each with its adapter (notebook 02) or
    why it is skipped. A GRPO/SFT variant outside `training.variants` is not listed at all (the
    tutorial profile leaves `grpo_sim` out), so a stale adapter from another run is never scored."""
    from salesman_utils.agent.parts import best_grpo_adapter

    models = paths(profile).models
    specs = [
        SystemSpec("base_plain", "plain", None, True, "base model, knowledge base in the prompt"),
        SystemSpec("base_doga", "doga", None, True, "base model + DOGA"),
    ]
    trained = [v for v in PLAIN_ADAPTER_SYSTEMS if v in profile.training.variants]
    for v in trained:
        folder = models / v / "adapter"
        ok = (folder / "adapter_config.json").exists()
        where = repo_relative(folder)
        why = f"LoRA adapter {where}" if ok else f"skipped: no adapter at {where} (notebook 02)"
        specs.append(SystemSpec(v, "plain", folder if ok else None, ok, why))
    variant, folder, note = best_grpo_adapter(profile)
    specs.append(
        SystemSpec(
            "best_grpo_doga",
            "doga",
            folder,
            folder is not None,
            f"{variant} + DOGA ({note})" if folder else f"skipped: {note}",
        )
    )
    names = [s.name for s in specs]
    assert names == [s for s in SYSTEMS if s in names]  # SYSTEMS' order
    return specs


def _agents(spec: SystemSpec, items: Sequence[EvalItem], profile: Profile, parts: Any) -> list:
    """One agent per item (agents of the same rep name shared), all on ONE backend."""
    from salesman_utils.agent.doga import DOGAAgent, PlainAgent
    from salesman_utils.llm import make_backend

    backend = make_backend(
        {**vars(profile.models.policy), "adapter": str(spec.adapter) if spec.adapter else None},
        profile=profile,
    )
    common = {
        "profile": profile,
        "tagger": parts.tagger,
        "name": spec.name,
        "max_new_tokens": profile.eval.max_new_tokens,
        "temperature": 0.0,
    }
    by_name: dict[str, Any] = {}
    for it in items:
        rep = it.dialogue.agent.name  # the rep's name, as in notebook 02's prompts
        if rep not in by_name:
            if spec.kind == "doga":  # greedy: a regeneration would repeat itself, so no retries
                by_name[rep] = DOGAAgent(
                    backend,
                    parts.library,
                    parts.classifier,
                    parts.fsm,
                    guard_retries=0,
                    agent_name=rep,
                    **common,
                )
            else:
                by_name[rep] = PlainAgent(backend, agent_name=rep, **common)
    return [by_name[it.dialogue.agent.name] for it in items]


def generate(spec: SystemSpec, items: Sequence[EvalItem], profile: Profile, parts: Any) -> list:
    """`doga.AgentTurn` per item (reply, planned intent, guard actions); one batched call."""
    from salesman_utils.agent.doga import AgentState, respond_all
    from salesman_utils.agent.intents import agent_view

    agents = _agents(spec, items, profile, parts)
    states = [  # the agent hears words only: acts from its own act tagger, not the simulator's
        AgentState(
            agent_view(it.context.history, parts.act_tagger),
            it.product,
            it.dialogue.merchant.visible(),
            seed=profile.seed,
        )
        for it in items
    ]
    return respond_all(agents, states)


TEMPLATE_ONLY = "template_only"


def template_only(
    spec: SystemSpec, items: Sequence[EvalItem], profile: Profile, parts: Any
) -> list:
    """The trivial baseline beside DOGA: its plan for each item (classifier + FSM -> move,
    retrieved outline, filled template) with NO model: the reply is the filled template, the
    line DOGA's guard falls back to. `spec` is a DOGA system (its adapter is never used)."""
    from salesman_utils.agent.doga import AgentState, AgentTurn
    from salesman_utils.agent.intents import agent_view

    agents = _agents(spec, items, profile, parts)
    out = []
    for agent, it in zip(agents, items, strict=True):
        state = AgentState(
            agent_view(it.context.history, parts.act_tagger),
            it.product,
            it.dialogue.merchant.visible(),
            seed=profile.seed,
        )
        plan = agent.plan_many([state])[0]
        reply = agent.fallback(plan)
        out.append(
            AgentTurn(
                plan.get("intent"),
                plan.get("outline", []),
                [],
                reply,
                entry_id=plan.get("entry_id"),
                guard={"template": 1},
            )
        )
    return out


def generate_all(
    specs: Sequence[SystemSpec], items: Sequence[EvalItem], profile: Profile, parts: Any
) -> dict[str, list]:
    """`generate` for every available system. An adapter that is gone by the time its system runs
    (e.g. notebook 02 re-training meanwhile) marks the system unavailable, with the reason."""
    from salesman_utils.llm import BackendError

    out = {}
    for s in specs:
        if (
            s.available
            and s.adapter is not None
            and not (s.adapter / "adapter_config.json").exists()
        ):
            s.available, s.note = False, f"skipped: adapter {s.adapter} disappeared (notebook 02)"
        if not s.available:
            continue
        try:
            out[s.name] = generate(s, items, profile, parts)
        except BackendError as exc:
            s.available, s.note = False, f"skipped: {exc}"
    return out


def replies_frame(turns_by_system: dict[str, list], items: Sequence[EvalItem]) -> pd.DataFrame:
    """Long table: system, item_id, capability, planned intent, reply, guard action."""
    rows = []
    for system, turns in turns_by_system.items():
        for it, t in zip(items, turns, strict=True):
            guard = (
                "template" if t.guard.get("template") else ("empty" if t.guard.get("empty") else "")
            )
            rows.append(
                {
                    "system": system,
                    "item_id": it.item_id,
                    "capability": it.capability,
                    "planned_intent": t.intent or "",
                    "guard": guard,
                    "reply": t.reply,
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- automatic metrics


def auto_metric_items(
    replies: pd.DataFrame, items: Sequence[EvalItem], profile: Profile
) -> pd.DataFrame:
    """Per (system, item): similarity (embedding cosine) to the real rep's reply and to the hidden
    expert reply, ROUGE-L to the reference, fact-check violations (with the merchant's data) by
    the guard's checker and by the referee's, and the referee's `degenerate` flag (0/1)."""
    from salesman_utils.referee.metrics import embedding_similarity, rouge_l, violation_counts

    by_id = {it.item_id: it for it in items}
    its = [by_id[i] for i in replies["item_id"]]
    texts = replies["reply"].tolist()
    out = replies[["system", "item_id", "capability"]].copy()
    out["sim_reference"] = embedding_similarity(texts, [it.reference for it in its], profile)
    out["sim_expert"] = embedding_similarity(texts, [it.expert_text for it in its], profile)
    out["rouge_l"] = rouge_l(texts, [it.reference for it in its])
    out["violations"] = violation_counts(
        texts, [it.product for it in its], [it.dialogue.merchant for it in its]
    )
    out["referee_violations"] = [
        len(referee_facts.check(t, it.product, it.dialogue.merchant))
        for t, it in zip(texts, its, strict=True)
    ]
    out["guard_referee_disagree"] = (out["violations"] > 0) != (out["referee_violations"] > 0)
    out["degenerate"] = [
        float(bool(degenerate_reasons(t, referee_context(it), allowed_texts(it.product))))
        for t, it in zip(texts, its, strict=True)
    ]
    out["reply"] = texts
    return out


def referee_context(item: EvalItem) -> list[dict[str, str]]:
    """What every system sees of an item, as chat messages for the referee's degenerate-reply
    detector: the knowledge base and the visible dashboard (system), then the call so far. Not a
    system's own prompt (DOGA's and the plain policy's instructions differ), so an echo of one
    system's instructions is not counted here; notebook 02 checks the plain policy's own prompt."""
    facts = visible_merchant_facts(item.dialogue.merchant)
    system = f"{item.product.kb_text()}\n{json.dumps(facts)}"
    call = [
        {"role": "assistant" if t.speaker == "agent" else "user", "content": t.text}
        for t in item.context.history
    ]
    return [{"role": "system", "content": system}, *call]


# violations_per_100: the guard's checker (`world.factcheck.fact_check`, which DOGA's guard uses: not
# independent for DOGA); referee_violations_per_100: the referee's own, stricter checker;
# degenerate_per_100: the referee's degenerate replies (`referee.degenerate`) per 100
AUTO_METRICS = (
    "sim_reference",
    "sim_expert",
    "rouge_l",
    "distinct_2",
    "violations_per_100",
    "referee_violations_per_100",
    "degenerate_per_100",
)


def reply_kinds_table(per_item: pd.DataFrame, replies: pd.DataFrame) -> pd.DataFrame:
    """Per system and kind of reply (`model`: written by the system's model; `template`: the
    filled template DOGA's guard fell back to, or the template-only baseline): n, similarity to
    the hidden expert reply, violations per 100 by the guard's checker and by the referee, and
    the replies where the two checkers disagree."""
    df = per_item.merge(replies[["system", "item_id", "guard"]], on=["system", "item_id"])
    df["kind"] = np.where(df["guard"] == "template", "template", "model")
    rows = []
    for (system, kind), g in df.groupby(["system", "kind"], sort=False):
        rows.append(
            {
                "system": system,
                "kind": kind,
                "n": len(g),
                "sim_expert": float(g["sim_expert"].mean()),
                "violations_per_100": 100.0 * float(g["violations"].mean()),
                "referee_violations_per_100": 100.0 * float(g["referee_violations"].mean()),
                "guard_referee_disagree": int(g["guard_referee_disagree"].sum()),
            }
        )
    return pd.DataFrame(rows)


def _distinct_interval(texts: list[str], n_boot: int) -> tuple[float, float, float]:
    """distinct-2 with a 95% jackknife (leave-one-reply-out) normal interval.

    Not a bootstrap: resampling replies with replacement repeats replies, which repeats their
    bigrams and pulls every resampled distinct ratio down (the interval then misses the estimate).
    `n_boot < 2` means "no intervals" here as for the bootstrapped metrics."""
    from salesman_utils.referee.metrics import distinct_n

    point = distinct_n(texts, 2)
    n = len(texts)
    if n < 2 or n_boot < 2 or np.isnan(point):
        return point, float("nan"), float("nan")
    loo = np.array([distinct_n(texts[:i] + texts[i + 1 :], 2) for i in range(n)], dtype=float)
    loo = loo[~np.isnan(loo)]
    se = float(np.sqrt((len(loo) - 1) / len(loo) * np.sum((loo - loo.mean()) ** 2)))
    return point, max(0.0, point - 1.96 * se), min(1.0, point + 1.96 * se)


def auto_metric_table(per_item: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """system, metric, mean, lo, hi, n (the contract of `report.tables.auto_metrics_table`)."""
    from salesman_utils.stats import bootstrap_ci

    rows = []
    for system, g in per_item.groupby("system", sort=False):
        for m in AUTO_METRICS:
            if m == "distinct_2":
                est = _distinct_interval(g["reply"].tolist(), n_boot)
            else:
                per_100 = m.endswith("_per_100")
                col, k = (m.removesuffix("_per_100"), 100.0) if per_100 else (m, 1.0)
                est = bootstrap_ci(k * g[col].to_numpy(float), n=n_boot, seed=seed)
            rows.append(
                {
                    "system": system,
                    "metric": m,
                    "mean": est[0],
                    "lo": est[1],
                    "hi": est[2],
                    "n": len(g),
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- judge inputs and validation


def judge_views(replies: pd.DataFrame, items: Sequence[EvalItem], profile: Profile) -> list[dict]:
    by_id = {it.item_id: it for it in items}
    return [
        judge_view(
            by_id[r.item_id].dialogue,
            by_id[r.item_id].context,
            r.reply,
            r.system,
            profile,
            r.item_id,
            r.capability,
        )
        for r in replies.itertuples()
    ]


def _agent_contexts(dialogues: Sequence[Dialogue]) -> list[tuple[Dialogue, AgentTurnContext]]:
    from salesman_utils.world.corpus import agent_turn_contexts

    return [(d, c) for d in dialogues for c in agent_turn_contexts(d)]


def faithfulness_probe(
    dialogues: Sequence[Dialogue], n: int, profile: Profile | None, seed: int = 0
) -> tuple[list[dict], np.ndarray]:
    """Up to n/2 real rep turns the simulator made unfaithful (hidden ``faithful`` False: wrong
    numbers, forbidden promises and the subtle forms a rule-based checker misses) and as many
    faithful ones: (judge items, has_violation labels). Labels are for scoring the judge only."""
    rng = np.random.default_rng(seed)
    ctxs = _agent_contexts(dialogues)
    bad = [x for x in ctxs if x[0].turns[x[1].index].hidden.get("faithful") is False]
    good = [x for x in ctxs if x[0].turns[x[1].index].hidden.get("faithful") is True]
    k = min(n // 2, len(bad), len(good))
    picks = [(x, 1) for x in (bad[i] for i in rng.choice(len(bad), k, replace=False))]
    picks += [(x, 0) for x in (good[i] for i in rng.choice(len(good), k, replace=False))]
    items = [judge_view(d, c, d.turns[c.index].text, "corpus", profile) for (d, c), _ in picks]
    return items, np.array([y for _, y in picks], dtype=int)


def referee_probe(
    dialogues: Sequence[Dialogue], n: int, profile: Profile | None, seed: int = 0
) -> tuple[list[dict], pd.DataFrame]:
    """`n` random real rep turns of held-out calls as judge items, and the referee's ground truth
    for each (evaluation only): faithful, expert_move (the rep made the expert's move),
    personalized (NaN where the move needs no personalization or the flag is not recorded)."""
    from salesman_utils.world.simulator import PERSONALIZATION_DUE

    ctxs = _agent_contexts(dialogues)
    idx = np.random.default_rng(seed).permutation(len(ctxs))[:n]
    items, rows = [], []
    for i in sorted(idx):
        d, c = ctxs[i]
        t = d.turns[c.index]
        items.append(judge_view(d, c, t.text, "corpus", profile))
        # the hidden flag is meaningful for the data-bearing moves only (an Opening's register
        # is due but never recorded as "personalized")
        due = t.hidden.get("personalization_due") and t.intent in PERSONALIZATION_DUE
        rows.append(
            {
                "item_id": items[-1]["item_id"],
                "faithful": int(bool(t.hidden.get("faithful"))),
                "expert_move": int(t.intent == t.hidden.get("expert_intent")),
                "personalized": float(bool(t.hidden.get("personalized"))) if due else np.nan,
            }
        )
    return items, pd.DataFrame(rows)


def expert_novice_pairs(
    dialogues: Sequence[Dialogue], n: int, profile: Profile | None, seed: int = 0
) -> tuple[list[dict], list[dict], str]:
    """Contexts where a novice rep made a bad move (hidden quality 0): (hidden expert reply items,
    the novice's reply items, note). Falls back to any bad turn if novices are too few."""
    ctxs = _agent_contexts(dialogues)
    bad = [
        (d, c)
        for d, c in ctxs
        if d.turns[c.index].hidden.get("quality") == 0
        and d.turns[c.index].hidden.get("expert_text")
    ]
    novice = [(d, c) for d, c in bad if d.agent.skill == "novice"]
    pool, note = (
        (novice, "novice reps' bad turns")
        if len(novice) >= n
        else (bad, f"bad turns of any rep (only {len(novice)} novice bad turns)")
    )
    idx = np.random.default_rng(seed).choice(len(pool), min(n, len(pool)), replace=False)
    expert = [
        judge_view(d, c, d.turns[c.index].hidden["expert_text"], "expert", profile)
        for d, c in (pool[i] for i in sorted(idx))
    ]
    rep = [
        judge_view(d, c, d.turns[c.index].text, "novice", profile)
        for d, c in (pool[i] for i in sorted(idx))
    ]
    return expert, rep, note


def faithfulness_auc(scores: Sequence[float], has_violation: Sequence[int]) -> dict[str, float]:
    """AUC of the Faithfulness score for telling clean turns from planted violations (0.5 =
    chance, 1 = perfect), and the mean score of each group."""
    from sklearn.metrics import roc_auc_score

    s, y = np.asarray(scores, float), np.asarray(has_violation, int)
    ok = np.isfinite(s)
    s, y = s[ok], y[ok]
    auc = float(roc_auc_score(1 - y, s)) if len(set(y)) == 2 else float("nan")
    return {
        "auc": auc,
        "n": int(len(y)),
        "mean_clean": float(s[y == 0].mean()) if (y == 0).any() else float("nan"),
        "mean_violating": float(s[y == 1].mean()) if (y == 1).any() else float("nan"),
    }
