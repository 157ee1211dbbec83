"""GRPO reward functions (TRL signature), and the scoring of replies with them.

Every reward has TRL's signature ``f(prompts, completions, **columns) -> list[float]``: `completions`
are strings, or message lists ``[{"role": "assistant", "content": ...}]`` for conversational prompts,
and the other dataset columns (``reference``, ``prototype``, ``weight``, ``product_id``, ...) arrive
as keyword lists aligned with the completions. The policy's prompt is a plain chat (`build_prompt`:
the knowledge base, the dashboard and the rules in the system message, the call as user/assistant
turns) and a completion is one spoken turn: no plan line, no labels. `parse_completion` still
splits the earlier ``Plan: ...\nReply: ...`` format (a plain reply parses as ``(None, None, text)``),
so similarity and faithfulness look at the reply part whatever the model wrote.
docs/DESIGN.md §3.2: ``R = R_format + R_bayes + R_faith`` with ``R_bayes = w sim(y, r) + (1 - w) sim(y, p)``.
Nothing from a turn's `hidden` dict reaches a prompt or a reward: `datasets.build_eval_dataset` is
the one place that reads it, for held-out scoring columns only. The prompt is built in `prompts`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from salesman_utils.agent.prompts import RULES
from salesman_utils.config import Profile
from salesman_utils.world.corpus import (
    INTENTS,
    fact_check,
    get_product,
)

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
    from salesman_utils.models import embed

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

    from salesman_utils.config import load_profile

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
