"""Degenerate replies, as the referee sees them: text that is not a rep speaking on the phone.

`degenerate_reasons(reply, prompt_text)` names what is wrong with one reply (empty list: nothing):

- ``empty``: no words;
- ``echo_prompt``: a run of `ECHO_WORDS` words (or the whole reply) taken from the prompt, other
  than from the knowledge base (`allowed`: quoting a price or the offer is an answer, not an echo);
- ``system_copy``: most of the reply's word 4-grams come from the system message (the rules, the
  role line, the dashboard layout), knowledge-base text again excepted;
- ``intent_name``: an intent name or a format label (``Plan:``, ``Reply:``, ``Rep:``);
- ``meta``: talk about the reply instead of the reply ("Here is a reply you could give", "As an AI",
  "Note:", a parenthesis, a bracketed placeholder; a spoken "here's the next step" is not meta);
- ``list_markup``: bullets, numbered lines, bold, headings;
- ``speaks_for_merchant``: a line for the merchant (``Merchant:``, ``Customer:``, ...);
- ``fallback``: the agent's "line cut out" fallback (`doga.EMPTY_FALLBACK`), which says nothing.

This is the referee's instrument (docs/DESIGN.md §1): agents, rewards and training never import it, and
it shares no code with the agent's R_format (`rewards.format_reward`), so a policy trained on
R_format is not graded by the same rules it was trained on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from salesman_utils.agent.doga import EMPTY_FALLBACK
from salesman_utils.world.simulator import INTENTS

ECHO_WORDS = 8
SYSTEM_COPY_SHARE = 0.5
REASONS = (
    "empty",
    "echo_prompt",
    "system_copy",
    "intent_name",
    "meta",
    "list_markup",
    "speaks_for_merchant",
    "fallback",
)

_TOKEN = re.compile(r"[a-z0-9]+(?:['.][a-z0-9]+)*")
_INTENT = re.compile(
    "|".join(
        [i.replace("_", r"[\s_-]+") for i in INTENTS if "_" in i] + [r"\bOpening\s*(?:-|:|\()"]
    ),
    re.IGNORECASE,
)
_LABEL = re.compile(r"\b(?:plan|reply|rep|agent|assistant|salesperson|response)\s*\**\s*:", re.I)
# "Here is/Here's" only when it introduces a reply about the reply ("Here is a reply you could give",
# "Here's a possible response", "here's how the rep could answer"): a rep says "here's the next step"
# or "here's what stands out" on the phone, and the corpus's own rep lines do (a test checks that
# no corpus rep line is degenerate).
_HERE_META = (
    r"\bhere(?:'s| is| are)\s+(?:(?:a|an|the|my|one|some|your|two|three)\s+)?"
    r"(?:(?:possible|potential|sample|suggested|revised|short|brief|draft|better|good|polite)\s+)*"
    r"(?:reply|replies|response|responses|draft|version|rewrite|script|answer|option|line)s?\b"
    r"|\bhere(?:'s| is)\s+how\s+(?:you|the (?:sales )?rep|i|we)\s+(?:could|might|would|should|can)\s+"
    r"(?:respond|reply|answer|say|phrase)"
)
_META = re.compile(
    r"\bas an ai\b|\blanguage model\b|" + _HERE_META + r"|\bnote\s*:|\(|\[|\{|<[a-z/]|"
    r"\bexample\s*:|\bin this (?:reply|response|turn)\b|\bthe (?:sales )?rep (?:says|would say)\b",
    re.IGNORECASE,
)
_MARKUP = re.compile(r"(?m)^\s*(?:[-*\u2022]|\d+[.)]|#{1,6})\s+|\*\*|__|```")
_MERCHANT = re.compile(
    r"(?:^|\n|[.!?]\s+)\W*(?:merchant|customer|owner|store owner|user|client|caller)\s*\**\s*:",
    re.IGNORECASE,
)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall((text or "").lower())


def _ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _flatten(prompt: Any) -> tuple[str, str]:
    """(whole prompt text, system text) from a string or a chat message list."""
    if isinstance(prompt, str):
        return prompt, prompt
    msgs = list(prompt or [])
    whole = "\n".join(str(m.get("content", "")) for m in msgs)
    system = "\n".join(str(m.get("content", "")) for m in msgs if m.get("role") == "system")
    return whole, system or whole


def degenerate_reasons(reply: str, prompt_text: Any, allowed: Sequence[str] = ()) -> list[str]:
    """What makes `reply` degenerate (see the module doc), in `REASONS` order; [] if nothing.

    `prompt_text`: the prompt as one string or as chat messages (then the system message is told
    apart for ``system_copy``). `allowed`: texts the reply may quote at any length (the product's
    knowledge base, e.g. ``[product.kb_text(), product_facts_text(product)]``).
    """
    words = _tokens(reply)
    if not words:
        return ["empty"]
    whole, system = _flatten(prompt_text)
    ok = {g for a in allowed for g in _ngrams(_tokens(a), ECHO_WORDS)}
    ok4 = {g for a in allowed for g in _ngrams(_tokens(a), 4)}
    out = []
    prompt_words = _tokens(whole)
    echo = bool((_ngrams(words, ECHO_WORDS) & _ngrams(prompt_words, ECHO_WORDS)) - ok)
    if not echo and len(words) >= 4:
        joined = " ".join(words)
        in_prompt = f" {joined} " in f" {' '.join(prompt_words)} "
        echo = in_prompt and not any(joined in " ".join(_tokens(a)) for a in allowed)
    if echo:
        out.append("echo_prompt")
    grams = _ngrams(words, 4)
    if len(words) >= 8 and grams:
        copied = (grams & _ngrams(_tokens(system), 4)) - ok4
        if len(copied) / len(grams) >= SYSTEM_COPY_SHARE:
            out.append("system_copy")
    if _INTENT.search(reply) or _LABEL.search(reply):
        out.append("intent_name")
    if _META.search(reply):
        out.append("meta")
    if _MARKUP.search(reply):
        out.append("list_markup")
    if _MERCHANT.search(reply):
        out.append("speaks_for_merchant")
    if " ".join(words) == " ".join(_tokens(EMPTY_FALLBACK)):
        out.append("fallback")
    return out


def is_degenerate(reply: str, prompt_text: Any, allowed: Sequence[str] = ()) -> bool:
    return bool(degenerate_reasons(reply, prompt_text, allowed))
