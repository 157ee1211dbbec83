"""The policy's prompt: a plain chat built from visible facts only (docs/DESIGN.md §3.2).

`build_prompt(context, dialogue, profile)` gives the system message (`system_message`: who the rep
is, the knowledge base, the merchant's dashboard, the `RULES`) and the call so far as user/assistant
turns (`call_messages`), trimmed to the profile's prompt budget. GRPO, SFT, DOGA and the evaluation
all prompt through here, so every policy sees the same facts. No example reply, no intent names,
no output labels: the 135M model copies all three."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from salesman_utils.config import Profile
from salesman_utils.world.corpus import (
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
