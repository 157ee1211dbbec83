"""Play the merchant against the DOGA agent in a terminal (or a notebook), seeing its reasoning.

    python -m salesman_utils.chat --product ID [--profile smoke] [--merchant-seed N]

The agent opens the call; type what the merchant says (an empty line or /quit ends the call). Beside
each reply the demo shows the intent the agent chose, its top intent probabilities, the outline it
followed and the guard's actions. The merchant's dashboard (visible data only) is printed first, so
you can react to the numbers the agent quotes. From a notebook: `session = start_session(...)`,
then `chat_turn(session, "text")` (or `chat_turn(session, None)` for the opening).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import Profile, load_profile
from .doga import AgentState, AgentTurn, BaseAgent, dashboard_text
from .factcheck import Product, get_product, load_products
from .intents import agent_view
from .simulator import MerchantProfile, Turn, eligible_products, sample_merchant


@dataclass
class ChatSession:
    """One call: the agent, the product, the merchant and the history so far (the merchant's
    words; the agent's replies with its planned intent). The agent's own `act_tagger` reads the
    merchant's acts when its view is built (`intents.agent_view`)."""

    agent: BaseAgent
    product: Product
    merchant: MerchantProfile
    act_tagger: Any = None
    history: list[Turn] = field(default_factory=list)
    turns: list[AgentTurn] = field(default_factory=list)
    seed: int = 0


def demo_merchant(product: Product, merchant_seed: int = 0) -> MerchantProfile:
    """A freshly sampled merchant for whom `product` is eligible (seeded)."""
    rng = np.random.default_rng([merchant_seed, 7])
    for i in range(200):
        m = sample_merchant(rng, i)
        if product.id in {p.id for p in eligible_products(m, load_products())}:
            return m
    raise ValueError(f"no sampled merchant is eligible for product {product.id!r}")


def start_session(
    profile: Profile | str = "smoke",
    product_id: str | None = None,
    merchant_seed: int = 0,
    adapter: str | None = None,
    max_new_tokens: int | None = None,
    parts: Any = None,
) -> ChatSession:
    """Build a DOGA agent (classifier, FSM, library, policy backend) for one product and merchant."""
    from .parts import build_parts, load_splits, make_agent

    prof = load_profile(profile) if isinstance(profile, str) else profile
    product = get_product(product_id) if product_id else next(iter(load_products().values()))
    if parts is None:
        splits, _ = load_splits(prof)
        parts = build_parts(prof, splits)
    agent = make_agent("doga", parts, prof, adapter=adapter, max_new_tokens=max_new_tokens)
    return ChatSession(agent, product, demo_merchant(product, merchant_seed), parts.act_tagger)


def chat_turn(session: ChatSession, text: str | None) -> AgentTurn:
    """Add the merchant's line (None: the call is just starting) and return the agent's turn."""
    if text is not None and text.strip():
        session.history.append(Turn("customer", text.strip()))
    view = agent_view(session.history, session.act_tagger)  # the words + its own readings
    state = AgentState(view, session.product, session.merchant.visible(), session.seed)
    turn = session.agent.respond(state)
    session.history.append(Turn("agent", turn.reply, intent=turn.intent))
    session.turns.append(turn)
    session.seed += 1
    return turn


def format_turn(turn: AgentTurn, width: int = 100) -> str:
    """The reply with the agent's intent, top probabilities, outline and guard beside it."""
    top = sorted(turn.proba.items(), key=lambda kv: -kv[1])[:3]
    probs = ", ".join(f"{k} {v:.2f}" for k, v in top)
    lines = [f"AGENT [{turn.intent or '-'}]: {turn.reply}"]
    if probs:
        lines.append(f"   intent probabilities: {probs}")
    for i, step in enumerate(turn.outline):
        lines.append(textwrap.shorten(f"   outline {i + 1}. {step}", width=width))
    acts = {k: v for k, v in turn.guard.items() if v and k != "checked"}
    lines.append(f"   guard: {acts or 'passed'}" + (f" ({turn.entry_id})" if turn.entry_id else ""))
    return "\n".join(lines)


def run_cli(session: ChatSession, lines: Any = None, out: Any = None) -> int:
    """The terminal loop: read merchant lines from `lines` (stdin by default) until EOF or /quit."""
    out = out or sys.stdout
    lines = lines if lines is not None else sys.stdin
    print(f"You are the merchant. {dashboard_text(session.merchant)}", file=out)
    print(f"The agent sells: {session.product.name} - {session.product.summary}", file=out)
    print("Type your replies; an empty line or /quit ends the call.\n", file=out)
    print(format_turn(chat_turn(session, None)), file=out, flush=True)
    n = 1
    for raw in lines:
        text = raw.strip()
        if not text or text in {"/quit", "/exit"}:
            break
        print(f"YOU: {text}", file=out)
        print(format_turn(chat_turn(session, text)), file=out, flush=True)
        n += 1
    print(f"\nCall ended after {n} agent turns. Guard counters: {dict(session.agent.counters)}")
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--product", required=True, help=f"one of {sorted(load_products())}")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--merchant-seed", type=int, default=0)
    parser.add_argument("--adapter", default=None, help="LoRA adapter folder (notebook 02)")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    args = parser.parse_args(argv)
    if args.product not in load_products():
        parser.error(f"--product {args.product!r}: unknown (known: {sorted(load_products())})")
    session = start_session(
        args.profile, args.product, args.merchant_seed, args.adapter, args.max_new_tokens
    )
    run_cli(session)


if __name__ == "__main__":
    main()
