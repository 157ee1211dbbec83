"""The agent's own reading of price talk: does the merchant push on the price, and does a reply
answer with the knowledge base's plan price or promotion.

Agent side (DOGA's guard and outline choice, and the selection of notebook 02's price-answer SFT
rows): visible text and the knowledge base only. The referee's measures (`referee.answers`) are
written apart from these rules and share no code with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from .corpus import AgentTurnContext, agent_turn_contexts
from .factcheck import Product, fact_check

# The merchant's last words ask about the price or push for a discount or a free period. The
# agent's own reading (the referee's `answers.asks_price` is written apart from it). Words that
# also name other acts are left out: "deal" (an agreement: "Deal. What do I do?"), "half" ("half
# empty"), "pay" and "refund" (guarantee demands: "refund me every cent", "I'm not paying").
_PRICE_TALK = re.compile(
    r"\b(?:price[sd]?|pricing|cost\w*|how much|set me back|expensive|cheap\w*|afford\w*|budget|"
    r"discount\w*|offer\w*|free|fees?|dollars?|bucks|percent)\b|\$|\d+\s*%",
    re.IGNORECASE,
)


def merchant_last_words(history: Sequence[Any]) -> str:
    """What the merchant said last (the last customer turn), or ''."""
    return next((t.text for t in reversed(history) if t.speaker != "agent"), "")


def asks_about_price(words: str) -> bool:
    """Whether the merchant's words ask the price or push for a discount ("80% off and I sign")."""
    return bool(_PRICE_TALK.search(words or ""))


_PRICE_NUM = re.compile(r"\d+(?:\.\d+)?")
_HEADLINE_STOP = {"a", "an", "the", "of", "on", "for", "to", "and", "with", "your", "first", "off"}


def states_price(reply: str, product: Product) -> bool:
    """The agent's own reading of whether `reply` answers a price push with the knowledge base: it
    states one of the product's plan prices, or its promotion (every number of the headline, e.g.
    50 of "50% off the first month"; for a headline without numbers, most of its content words).
    Used by the guard on price pushes (`asks_about_price`); the referee's measure is separate."""
    said = {float(x) for x in _PRICE_NUM.findall((reply or "").replace(",", ""))}
    if said & {float(p["price"]) for p in product.plans}:
        return True
    headline = str(product.promotion.get("headline", ""))
    need = {float(x) for x in _PRICE_NUM.findall(headline)}
    if need:
        return need <= said
    words = set(re.findall(r"[a-z]+", headline.lower())) - _HEADLINE_STOP
    got = set(re.findall(r"[a-z]+", (reply or "").lower()))
    return bool(words) and len(words & got) >= 0.6 * len(words)


def price_push_contexts(dialogues: Sequence[Any]) -> Iterator[tuple[Any, AgentTurnContext]]:
    """(dialogue, context) of every rep turn whose merchant's last words push on the price
    (`asks_about_price`); the context's history has hidden fields stripped."""
    for d in dialogues:
        for ctx in agent_turn_contexts(d):
            if asks_about_price(merchant_last_words(ctx.history)):
                yield d, ctx


def price_answer_turns(dialogues: Sequence[Any]) -> list[tuple[Any, AgentTurnContext]]:
    """(dialogue, context) of every rep turn that answers a price push with the knowledge base:
    a price push (`price_push_contexts`) whose rep reply states a plan price or the promotion
    (`states_price`) and passes the visible fact check. Reads turn texts, the product and the
    dashboard only (no hidden field, no outcome)."""
    out = []
    for d, ctx in price_push_contexts(dialogues):
        reply = d.turns[ctx.index].text
        if states_price(reply, ctx.product) and not fact_check(reply, ctx.product, d.merchant):
            out.append((d, ctx))
    return out
