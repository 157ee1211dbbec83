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

from salesman_utils.world.corpus import AgentTurnContext, agent_turn_contexts
from salesman_utils.world.factcheck import _normalize, fact_check
from salesman_utils.world.knowledge import Product

# The merchant's last words ask about the price or push for a discount or a free period. The
# agent's own reading (the referee's `answers.asks_price` is written apart from it). Derived from
# the corpus's customer lines (the bank data/customer_templates.yaml they are drawn from: every
# line of its `price` objections, soft or firm, and its cost questions, "How much does it cost
# exactly?", must be read as price talk; `tests/test_guard_acceptance.py` checks the whole bank).
# The plain forms: "how much (does it cost / is it a month)", "what's the price/fee", "what do
# you charge", "pricey", "for the money", "commission". Words that also name other acts are left
# out: "deal" (an agreement: "Deal. What do I do?"), "half" ("half empty"), "pay" and "refund"
# (guarantee demands: "refund me every cent", "I'm not paying"), "charge" after "in" ("who's in
# charge"), "money" alone ("my husband handles the money").
_PRICE_TALK = re.compile(
    r"\b(?:price[sdy]?|pric(?:ey|ier|ing)|cost\w*|how much|set me back|expensive|cheap\w*|"
    r"afford\w*|budget|discount\w*|offer\w*|free|fees?|dollars?|bucks|percent|commission\w*|"
    r"for the money|(?<!in )charg(?:e|es|ed|ing))\b|\$|\d+\s*%",
    re.IGNORECASE,
)


def merchant_last_words(history: Sequence[Any]) -> str:
    """What the merchant said last (the last customer turn), or ''."""
    return next((t.text for t in reversed(history) if t.speaker != "agent"), "")


def asks_about_price(words: str) -> bool:
    """Whether the merchant's words ask the price or push for a discount ("80% off and I sign")."""
    return bool(_PRICE_TALK.search(words or ""))


# a number standing alone: not part of a code ("B2B2B") or a longer decimal ("2.2" is not 2)
_PRICE_NUM = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w]|\.\d)")
_HEADLINE_STOP = {"a", "an", "the", "of", "on", "for", "to", "and", "with", "your", "first", "off"}


def states_price(reply: str, product: Product) -> bool:
    """The agent's own reading of whether `reply` answers a price push with the knowledge base: it
    states one of the product's plan prices, or its promotion: every number of the headline (e.g.
    50 of "50% off the first month") AND at least half of its content words (a lone "2" is not
    "the monthly fee waived for the first 2 months"); for a headline without numbers, 60% of its
    content words. Numbers are read standing alone (digits inside a code do not count; number
    words count, through `factcheck`'s reading). Used by the guard on price pushes
    (`asks_about_price`); the referee's measure is separate."""
    text = _normalize(reply or "")[0]
    said = {float(x) for x in _PRICE_NUM.findall(text)}
    if said & {float(p["price"]) for p in product.plans}:
        return True
    headline = str(product.promotion.get("headline", ""))
    need = {float(x) for x in _PRICE_NUM.findall(headline)}
    words = set(re.findall(r"[a-z]+", headline.lower())) - _HEADLINE_STOP
    got = {w[:5] for w in re.findall(r"[a-z]+", text.lower())}
    share = len({w[:5] for w in words} & got) / len(words) if words else 0.0
    if need:
        return need <= said and share >= 0.5
    return bool(words) and share >= 0.6


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
