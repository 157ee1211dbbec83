"""GRPO reward functions (TRL signature) and the datasets they read.

Every reward has TRL's signature ``f(prompts, completions, **columns) -> list[float]``: `completions`
are strings, or message lists ``[{"role": "assistant", "content": ...}]`` for conversational prompts,
and the other dataset columns (``reference``, ``prototype``, ``weight``, ``product_id``, ...) arrive
as keyword lists aligned with the completions. The policy's prompt is a plain chat (`build_prompt`:
the knowledge base, the dashboard and the rules in the system message, the call as user/assistant
turns) and a completion is one spoken turn: no plan line, no labels. `parse_completion` still
splits the earlier ``Plan: ...\nReply: ...`` format (a plain reply parses as ``(None, None, text)``),
so similarity and faithfulness look at the reply part whatever the model wrote.
docs/DESIGN.md §3.2: ``R = R_format + R_bayes + R_faith`` with ``R_bayes = w sim(y, r) + (1 - w) sim(y, p)``.
Nothing from a turn's `hidden` dict reaches a prompt or a reward: `build_eval_dataset` is the one
place that reads it, for held-out scoring columns only.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .config import Profile
from .corpus import (
    INTENTS,
    agent_turn_contexts,
    fact_check,
    get_product,
    product_facts_text,
    visible_merchant_facts,
)

# The aim of each move in plain words (DOGA's system message says "Your aim now: ..."). Never an
# intent name in a prompt: the 135M model echoes whatever label it is shown.
INTENT_PLANS = {
    "Opening": "greet and give the reason for the call",
    "Needs_Discovery": "ask about the store and its needs",
    "Business_Analysis": "compare the store's numbers with peers",
    "Product_Introduction": "present the product that fits",
    "Objection_Handling": "answer the concern with facts",
    "Operational_Guidance": "walk through activation and next steps",
}
# The rules of the policy's system message. No example reply (the base model copied it in 40 of
# 100 held-out replies) and no output labels (it echoed them).
RULES = (
    "This is a phone call with the store's owner. Speak one short turn: one to three sentences, "
    "in your own words.",
    "Answer what the merchant just said.",
    "If the merchant asks the price or pushes for a discount or a free period, answer with the "
    "plan price and the promotion above: there is no other offer.",
    "Never invent prices, discounts, terms or promises: only state the facts above.",
)
COMPACT_FACT_LINES = ("Product:", "Plans:", "Promotion:", "Never claim:")
# The merchant picking up: the first user message of every call, so the chat starts with a user.
PICK_UP = "Hello?"
MIN_REPLY_WORDS = 2
MAX_REPLY_WORDS = 60
VARIANT_REWARDS = {"grpo_sim": "similarity", "grpo_bayes": "bayes", "sft_grpo_bayes": "bayes"}


class Parsed(NamedTuple):
    """A completion split into the intent its plan names, the plan text, and the reply."""

    intent: str | None
    plan: str | None
    reply: str


_PLAN_RE = re.compile(r"^\W*plan\W*?[ \t]*[:\-][ \t]*", re.IGNORECASE)
_REPLY_RE = re.compile(r"\*{0,2}reply\*{0,2}\s*:\s*\*{0,2}\s*", re.IGNORECASE)
_INTENT_RE = re.compile(
    "|".join(r"\b" + i.replace("_", r"[\s_-]*") + r"\b" for i in INTENTS), re.IGNORECASE
)


def _intent_in(text: str) -> str | None:
    m = _INTENT_RE.search(text)
    if m is None:
        return None
    key = re.sub(r"[\s_-]+", "", m.group(0)).lower()
    return next(i for i in INTENTS if i.replace("_", "").lower() == key)


def parse_completion(text: str) -> Parsed:
    """Split ``Plan: <Intent> - <words>\\nReply: <text>``; tolerant of case, bold and spacing.

    No plan line -> ``(None, None, whole text)``; a plan line without ``Reply:`` -> the reply is the
    text after the plan line. A second ``Plan:`` (a model looping) ends the reply.
    """
    text = (text or "").strip()
    plan: str | None = None
    rest = text
    m = _PLAN_RE.match(text)
    if m:
        body = text[m.end() :]
        r = _REPLY_RE.search(body)
        line_end = body.find("\n")
        if r and (line_end < 0 or r.start() <= line_end):
            plan, rest = body[: r.start()], body[r.start() :]
        elif line_end >= 0:
            plan, rest = body[:line_end], body[line_end + 1 :]
        else:
            plan, rest = body, ""
        plan = plan.strip(" *-\t")
    r = _REPLY_RE.search(rest)
    if r and (plan is not None or r.start() == 0):
        rest = rest[r.end() :]
    again = re.search(r"\n\W*plan\W*\s*:", rest, re.IGNORECASE)
    reply = (rest[: again.start()] if again else rest).strip()
    return Parsed(_intent_in(plan) if plan else None, plan, reply)


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or the last message's content of a message list."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        return str(completion[-1].get("content", ""))
    return ""


_WORD_RE = re.compile(r"[a-z0-9$%']+")
_LABEL_RE = re.compile(
    r"(?:^|\n|[.!?:]\s+)[\s*#>_-]*(?:sales\s*)?(?:rep|agent|assistant|salesperson|plan|reply|"
    r"response|answer|product|plans|promotion|never claim|dashboard|call so far)\s*\**\s*:",
    re.IGNORECASE,
)
_OTHER_SPEAKER_RE = re.compile(
    r"(?:^|\n|[.!?]\s+)[\s*#>_-]*(?:merchant|customer|owner|user|store owner|client)\s*\**\s*:",
    re.IGNORECASE,
)
_INTENT_NAME_RE = re.compile(
    "|".join(i.replace("_", r"[ _]") for i in INTENTS if "_" in i) + r"|\bOpening\s*[-:(]"
)
_MARKUP_RE = re.compile(
    r"(?m)^\s*(?:[-*\u2022#>]|\d+[.)])\s|\*\*|__|```|^\s*#|<[a-z/][^>]*>|\[[^\]]*\]"
)
_META_RE = re.compile(
    r"\bas an ai\b|\blanguage model\b|^\W*(?:sure[,!.]?\s+)?here(?:'s| is| are)\b|\bnote\s*:|"
    r"\(|\bexample\s*:|\b(?:your|the rep's|the next) turn\b|\bthe merchant (?:says|said|asks)\b",
    re.IGNORECASE,
)
ECHO_RULE_WORDS = 6  # a run this long shared with the role line or the rules is an echo
ECHO_TURN_WORDS = 8  # ... or with one of the call's turns (the merchant's or the rep's own)


def _words(text: str) -> list[str]:
    return _WORD_RE.findall((text or "").lower())


def _grams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _echo_sources(prompt: Any) -> list[tuple[str, int]]:
    """(text, run length) pairs that a reply must not repeat: the system message's role line and
    rules (not its facts or dashboard: quoting a price is the point), and every turn of the call."""
    if not isinstance(prompt, list):
        return [(str(prompt), ECHO_TURN_WORDS)] if prompt else []
    out: list[tuple[str, int]] = []
    for m in prompt:
        content = str(m.get("content", ""))
        if m.get("role") == "system":
            lines = content.splitlines()
            out += [(x, ECHO_RULE_WORDS) for x in lines[:1] + [r for r in RULES if r in content]]
        else:
            out.append((content, ECHO_TURN_WORDS))
    return out


def is_echo(text: str, prompt: Any) -> bool:
    """Whether `text` repeats the prompt: a run of words shared with the role line or rules
    (`ECHO_RULE_WORDS`) or with a turn of the call (`ECHO_TURN_WORDS`), or a whole message."""
    words = _words(text)
    if not words:
        return False
    for source, n in _echo_sources(prompt):
        src = _words(source)
        if len(words) >= 3 and " ".join(words) == " ".join(src):
            return True
        if len(words) >= n and _grams(words, n) & _grams(src, n):
            return True
    return False


def format_problems(text: str, prompt: Any = None) -> list[str]:
    """What keeps `text` from being one speakable phone turn (empty list: none). Names:
    ``empty``, ``length`` (fewer than MIN_REPLY_WORDS or more than MAX_REPLY_WORDS words),
    ``label`` (a speaker, plan or fact label, or an intent name), ``other_speaker`` (a line for
    the merchant), ``markup`` (lists, bold, headings, brackets), ``meta`` (talk about the reply
    instead of the reply: "Here is", "As an AI", "Note:", parentheses), ``echo`` (repeats the
    prompt, see `is_echo`; only checked when `prompt` is given)."""
    text = (text or "").strip()
    if not _words(text):
        return ["empty"]
    problems = []
    if not MIN_REPLY_WORDS <= len(text.split()) <= MAX_REPLY_WORDS:
        problems.append("length")
    if _LABEL_RE.search(text) or _INTENT_NAME_RE.search(text):
        problems.append("label")
    if _OTHER_SPEAKER_RE.search(text):
        problems.append("other_speaker")
    if _MARKUP_RE.search(text):
        problems.append("markup")
    if _META_RE.search(text):
        problems.append("meta")
    if prompt is not None and is_echo(text, prompt):
        problems.append("echo")
    return problems


def format_score(text: str, prompt: Any = None) -> float:
    """1.0 for one speakable turn, minus 0.25 per problem of `format_problems` (at least 0.0);
    an empty text scores 0.0."""
    problems = format_problems(text, prompt)
    if problems == ["empty"]:
        return 0.0
    return max(0.0, 1.0 - 0.25 * len(problems))


def format_reward(prompts: list, completions: list, **columns: Any) -> list[float]:
    """R_format: is each completion one speakable turn of a phone call?

    Inputs: `prompts` (message lists, strings, or None when unknown: then no echo check) and
    `completions` (strings or message lists) of equal length. Returns values in
    {0, .25, .5, .75, 1}: 1.0 when `format_problems` finds nothing (non-empty, 2-60 words, no
    labels or intent names, no merchant lines, no markup, no meta text, no echo of the prompt),
    0.25 less per problem found. An empty or whitespace-only completion returns 0.0; nothing
    raises on odd input (a non-string completion reads as empty).
    """
    prompts = list(prompts) if prompts is not None else [None] * len(completions)
    return [format_score(completion_text(c), p) for p, c in zip(prompts, completions, strict=True)]


# ---------------------------------------------------------------- embeddings

_EMB_CACHE: dict[tuple[str, str], np.ndarray] = {}
_EMB_CACHE_MAX = 200_000


def embed_cached(texts: Sequence[str], profile: Profile | None = None) -> np.ndarray:
    """L2-normalised embeddings of `texts`, computing only the texts not seen before, in one batch.

    References and prototypes repeat across the `num_generations` completions of a prompt and
    across steps, so caching by text makes their cost vanish after the first step.
    """
    from .models import embed

    name = (profile.models.embedder if profile is not None else None) or "embedded"
    todo = list(dict.fromkeys(t for t in texts if (name, t) not in _EMB_CACHE))
    if todo:
        if len(_EMB_CACHE) + len(todo) > _EMB_CACHE_MAX:
            _EMB_CACHE.clear()  # completions are rarely seen twice: a full reset is cheap
        vecs = np.asarray(embed(todo, profile), dtype=np.float32)
        for t, v in zip(todo, vecs, strict=True):
            _EMB_CACHE[(name, t)] = v
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    return np.stack([_EMB_CACHE[(name, t)] for t in texts])


def cosine(a: Sequence[str], b: Sequence[str], profile: Profile | None = None) -> np.ndarray:
    """Row-wise cosine similarity of two equal-length lists of texts (empty text -> 0.0)."""
    if len(a) != len(b):
        raise ValueError(f"cosine: {len(a)} texts vs {len(b)} texts")
    ea, eb = embed_cached(list(a), profile), embed_cached(list(b), profile)
    sims = (ea * eb).sum(axis=1) if len(a) else np.zeros(0)
    empty = np.array([not x.strip() or not y.strip() for x, y in zip(a, b, strict=True)], bool)
    return np.where(empty, 0.0, sims).astype(float)


def _replies(completions: list) -> list[str]:
    return [parse_completion(completion_text(c)).reply for c in completions]


def similarity_reward(
    prompts: list,
    completions: list,
    reference: list[str],
    profile: Profile | None = None,
    **columns: Any,
) -> list[float]:
    """R_sim = cos(emb(reply), emb(reference)): the plain imitation reward of `grpo_sim`.

    Inputs: completions, and the `reference` column (the real rep's text). Returns values in
    [-1, 1] (in practice 0..1 for sentence embeddings); an empty reply returns 0.0.
    """
    return cosine(_replies(completions), list(reference), profile).tolist()


def bayes_reward(
    prompts: list,
    completions: list,
    reference: list[str],
    prototype: list[str],
    weight: list[float],
    profile: Profile | None = None,
    **columns: Any,
) -> list[float]:
    """R_bayes = w sim(y, r) + (1 - w) sim(y, p), with w = P(reference turn good | evidence).

    Inputs: completions and the columns `reference` (r), `prototype` (p, the best-posterior turn
    of the same intent) and `weight` (w in [0, 1]). Returns values in [-1, 1] (in practice 0..1);
    an empty reply returns 0.0. A doubtful reference (small w) hands the target to the prototype.
    """
    replies = _replies(completions)
    w = np.clip(np.asarray(weight, dtype=float), 0.0, 1.0)
    s_ref = cosine(replies, list(reference), profile)
    s_pro = cosine(replies, list(prototype), profile)
    return (w * s_ref + (1.0 - w) * s_pro).tolist()


def faithfulness_reward(
    prompts: list, completions: list, product_id: list[str], **columns: Any
) -> list[float]:
    """R_faith: -1.0 when the reply states any price, discount, term or promise that is not in the
    product's knowledge base (`fact_check`), else 0.0.

    Inputs: completions, the `product_id` column and, when present, the `merchant` column (visible
    store metrics as JSON, so that quoting the store's own percentages is not a violation).
    Returns values in {-1, 0}; an unknown product id raises KeyError (a dataset bug).
    """
    merchants = columns.get("merchant") or [None] * len(completions)
    return [
        -1.0 if fact_check(reply, get_product(pid), _merchant_view(m)) else 0.0
        for reply, pid, m in zip(_replies(completions), product_id, merchants, strict=True)
    ]


@functools.lru_cache(maxsize=4096)
def _merchant_view(merchant_json: str | None) -> Any:
    """The visible merchant facts (a JSON column) as the object `fact_check` reads metrics from."""
    if not merchant_json:
        return None
    from types import SimpleNamespace

    return SimpleNamespace(**json.loads(merchant_json))


def make_reward_funcs(profile: Profile, variant: str) -> tuple[list[Callable], list[float]]:
    """The reward functions of a GRPO variant and their weights (for ``GRPOConfig.reward_weights``).

    `grpo_sim`: format + similarity + faith; `grpo_bayes` / `sft_grpo_bayes`: format + bayes +
    faith. The semantic reward the variant does not train on is added with weight 0, so that both
    similarity and Bayes rewards are logged for every variant (Figure 4a compares them).
    """
    if variant not in VARIANT_REWARDS:
        raise ValueError(f"unknown GRPO variant {variant!r} (known: {sorted(VARIANT_REWARDS)})")
    rw = profile.training.reward_weights
    sim = functools.partial(similarity_reward, profile=profile)
    bay = functools.partial(bayes_reward, profile=profile)
    on_sim = VARIANT_REWARDS[variant] == "similarity"
    funcs: list[Callable] = [format_reward, sim, bay, faithfulness_reward]
    weights = [rw.format, rw.bayes if on_sim else 0.0, 0.0 if on_sim else rw.bayes, rw.faith]
    return funcs, weights


# ---------------------------------------------------------------- datasets

CHARS_PER_TOKEN = 3.5  # rough for English with these tokenizers; only used to trim history
MAX_HISTORY_TURNS = 4
MIN_HISTORY_TURNS = 2  # the rep's last turn and the merchant's answer, whatever the budget


def merchant_text(facts: dict[str, Any]) -> str:
    """The rep's dashboard view of a merchant (visible fields only) as one prompt line."""
    m, p = facts.get("metrics", {}), facts.get("peer_medians", {})
    unit = {"conversion": "%"}
    stats = ", ".join(
        f"{k.replace('monthly_', '')} {m[k]:g}{unit.get(k, '')} "
        f"(peers {p.get(k, float('nan')):g}{unit.get(k, '')})"
        for k in m
    )
    who = f"{facts['name']} ({facts['category']}, {facts['city']}), {facts['owner']}"
    return f"Dashboard: {who}. Store data: {stats}."


def facts_text(product: Any, mode: str = "full") -> str:
    """`corpus.product_facts_text`, or with ``mode="compact"`` only its product, plans,
    promotion and never-claim lines (features, eligibility and FAQ dropped: half the tokens)."""
    text = product_facts_text(product)
    if mode == "full":
        return text
    if mode != "compact":
        raise ValueError(f"training.prompt_facts: expected full or compact, got {mode!r}")
    return "\n".join(x for x in text.splitlines() if x.startswith(COMPACT_FACT_LINES))


def system_message(agent_name: str, product: Any, merchant_facts: dict[str, Any], mode: str) -> str:
    """The policy's system message: who the rep is, the knowledge base, the dashboard, the rules."""
    return "\n".join(
        [
            # short on purpose: the model copies a long role line as its own words ("I'm Jamie,
            # a sales rep for ..., on a phone call with the owner of a local store": 12 of the
            # 20 degenerate sft / sft_grpo_bayes replies on held-out contexts, tutorial run)
            f"You are {agent_name} from {product.platform}.",
            facts_text(product, mode),
            merchant_text(merchant_facts),
            *RULES,
        ]
    )


def call_messages(history: Sequence[Any]) -> list[dict[str, str]]:
    """The call so far as chat turns: merchant = user, rep = assistant. A call starts with the
    merchant picking up (`PICK_UP`), turns of one speaker in a row are joined, and the list always
    ends with a user message, so the model's next message is the rep's turn."""
    msgs: list[dict[str, str]] = []
    for t in history:
        role = "assistant" if t.speaker == "agent" else "user"
        if msgs and msgs[-1]["role"] == role:
            msgs[-1]["content"] += " " + t.text
        else:
            msgs.append({"role": role, "content": t.text})
    if not msgs or msgs[0]["role"] == "assistant":
        msgs.insert(0, {"role": "user", "content": PICK_UP})
    if msgs[-1]["role"] == "assistant":
        msgs.append({"role": "user", "content": "Mm-hm."})
    return msgs


def build_prompt(context: Any, dialogue: Any, profile: Profile) -> list[dict[str, str]]:
    """A plain chat: system (`system_message`) + the call so far (`call_messages`).

    `context` is a `corpus.AgentTurnContext` (its history has `hidden` stripped). At most
    `MAX_HISTORY_TURNS` turns are shown; older ones are dropped first when the prompt would exceed
    `training.grpo.max_prompt_length` (estimated), keeping at least the last `MIN_HISTORY_TURNS`.
    No example reply, no intent names, no output labels: the 135M model copies all three.
    """
    system = system_message(
        dialogue.agent.name,
        context.product,
        visible_merchant_facts(dialogue.merchant),
        profile.training.prompt_facts,
    )
    budget = profile.training.grpo.max_prompt_length * CHARS_PER_TOKEN - len(system)
    kept: list[Any] = []
    for t in reversed(context.history[-MAX_HISTORY_TURNS:]):
        if len(kept) >= MIN_HISTORY_TURNS and budget - len(t.text) < 0:
            break
        budget -= len(t.text) + 12  # the chat template's role markers
        kept.insert(0, t)
    return [{"role": "system", "content": system}, *call_messages(kept)]


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
    from .pricing import price_answer_turns

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


def score_replies(replies: Sequence[str], eval_dataset: Any, profile: Profile | None = None) -> Any:
    """Held-out scores per reply: similarity to the hidden expert reply and to the real rep's
    reply, fact violations, the R_format score and whether it is 1.0 (`format_ok`: one speakable
    turn). Replies in the earlier ``Plan:/Reply:`` format are scored on their reply part. Returns
    a DataFrame aligned with `eval_dataset`."""
    import pandas as pd

    if len(replies) != len(eval_dataset):
        raise ValueError(f"score_replies: {len(replies)} replies, {len(eval_dataset)} items")
    body = [parse_completion(r).reply for r in replies]
    fmt = [format_score(r, p) for r, p in zip(replies, eval_dataset["prompt"], strict=True)]
    viol = [
        len(fact_check(b, get_product(pid), _merchant_view(m)))
        for b, pid, m in zip(
            body, eval_dataset["product_id"], eval_dataset["merchant"], strict=True
        )
    ]
    return pd.DataFrame(
        {
            "sim_expert": cosine(body, eval_dataset["expert_text"], profile),
            "sim_reference": cosine(body, eval_dataset["reference"], profile),
            "violations": viol,
            "format": fmt,
            "format_ok": [float(f == 1.0) for f in fmt],
            "reply": list(replies),
        }
    )


def reward_components(replies: Sequence[str], dataset: Any, profile: Profile | None = None) -> Any:
    """Every training reward of each reply on a dataset with the reward columns (`reference`,
    `prototype`, `weight`, `product_id`, `merchant`, `prompt`): columns `format`, `similarity`,
    `bayes`, `faith`, and the two objectives `total_sim` / `total_bayes` with the profile's
    weights (what `grpo_sim` and the Bayes variants maximise). A DataFrame aligned with `dataset`."""
    import pandas as pd

    from .config import load_profile

    rw = (profile or load_profile("smoke")).training.reward_weights
    cols = {k: list(dataset[k]) for k in dataset.column_names if k != "prompt"}
    prompts, comps = list(dataset["prompt"]), list(replies)
    df = pd.DataFrame(
        {
            "format": format_reward(prompts, comps),
            "similarity": similarity_reward(prompts, comps, profile=profile, **cols),
            "bayes": bayes_reward(prompts, comps, profile=profile, **cols),
            "faith": faithfulness_reward(prompts, comps, **cols),
        }
    )
    df["total_sim"] = (
        rw.format * df["format"] + rw.bayes * df["similarity"] + rw.faith * df["faith"]
    )
    df["total_bayes"] = rw.format * df["format"] + rw.bayes * df["bayes"] + rw.faith * df["faith"]
    return df
