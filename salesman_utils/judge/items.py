"""What a judge sees of a reply: one judge item (a dict), visible facts only.

`judge_view` gives the item every judge scores (the LLM judges, the trained judge, the human
sheet): the whole knowledge base, the merchant's dashboard line, the last `HISTORY_TURNS` turns of
the call and the reply. It reads no hidden field; who builds the replies (`arena.evaluation`, the
validation probes) decides which reply goes in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from salesman_utils.agent.prompts import facts_text, merchant_text
from salesman_utils.config import Profile
from salesman_utils.world.corpus import AgentTurnContext, visible_merchant_facts
from salesman_utils.world.simulator import Dialogue

HISTORY_TURNS = 4  # turns of the call the judge sees (as the policy's prompt does)


def history_text(history: Sequence[Any], n: int = HISTORY_TURNS) -> str:
    return "\n".join(
        f"{'Rep' if t.speaker == 'agent' else 'Merchant'}: {t.text}" for t in history[-n:]
    )


def judge_view(
    dialogue: Dialogue,
    context: AgentTurnContext,
    reply: str,
    system: str,
    profile: Profile | None,
    item_id: str | None = None,
    capability: str | None = None,
) -> dict[str, Any]:
    """A `judge.score` / `judge.pairwise` item: visible facts only."""
    return {
        "item_id": item_id or f"{dialogue.id}:{context.index}",
        "capability": capability or dialogue.turns[context.index].intent,
        "system": system,
        "reply": reply,
        # the whole knowledge base (features, eligibility and FAQ state facts a reply may
        # repeat); the LLM judge now runs on a small sample only, so prompt length matters less
        "product_facts": facts_text(context.product, "full"),
        "merchant_facts": merchant_text(visible_merchant_facts(dialogue.merchant)),
        "history": history_text(context.history),
    }
