"""Play the merchant against the DOGA agent in a terminal (or a notebook), seeing its reasoning.

    python -m salesman_utils.agent.chat --product ID [--profile smoke] [--merchant-seed N]

The agent opens the call; type what the merchant says (an empty line, /quit, end of input or Ctrl-C
ends the call). Beside each reply the demo shows the intent the agent chose, its top intent
probabilities, the outline it followed and the guard's actions. The merchant's dashboard (visible
data only) is printed first, so you can react to the numbers the agent quotes. However the call
ends, one summary line is printed and the transcript (each turn's speaker, text and the agent's
intent) is saved as JSON under the profile's artifacts, `<artifacts>/chats/<time>.json`. From a
notebook: `session = start_session(...)`, then `chat_turn(session, "text")` (or
`chat_turn(session, None)` for the opening).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from salesman_utils.agent.doga import (
    AgentState,
    AgentTurn,
    BaseAgent,
    dashboard_text,
    named_opening,
)
from salesman_utils.agent.intents import agent_view
from salesman_utils.artifacts import write_whole
from salesman_utils.banks import DataBankError
from salesman_utils.config import Profile, load_profile, paths
from salesman_utils.world.knowledge import Product, get_product, load_products
from salesman_utils.world.simulator import MerchantProfile, Turn, eligible_products, sample_merchant

EXIT_INTERRUPTED = 130  # the shell's code for a run ended by Ctrl-C


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
    merchant_seed: int | None = None


def demo_merchant(product: Product, merchant_seed: int = 0) -> MerchantProfile:
    """A freshly sampled merchant for whom `product` is eligible (seeded; the seed is >= 0)."""
    if isinstance(merchant_seed, bool) or not isinstance(merchant_seed, int | np.integer):
        raise TypeError(f"merchant_seed must be an integer >= 0, got {merchant_seed!r}")
    if merchant_seed < 0:
        raise ValueError(f"merchant_seed must be an integer >= 0, got {merchant_seed}")
    rng = np.random.default_rng([int(merchant_seed), 7])
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
    from salesman_utils.agent.parts import build_parts, load_splits, make_agent

    prof = load_profile(profile) if isinstance(profile, str) else profile
    product = get_product(product_id) if product_id else next(iter(load_products().values()))
    merchant = demo_merchant(product, merchant_seed)  # a bad seed fails before the slow build
    if parts is None:
        splits, _ = load_splits(prof)
        parts = build_parts(prof, splits)
    agent = make_agent("doga", parts, prof, adapter=adapter, max_new_tokens=max_new_tokens)
    return ChatSession(agent, product, merchant, parts.act_tagger, merchant_seed=merchant_seed)


def clean_text(text: str | bytes) -> str:
    """A person's line made safe for the tokenizer: undecodable bytes (raw, or smuggled in as lone
    surrogates by Python's `surrogateescape`) become U+FFFD instead of failing later."""
    if isinstance(text, bytes):
        return text.decode("utf-8", errors="replace")
    try:
        raw = text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
        return text.encode("utf-8", errors="replace").decode("utf-8")
    return raw.decode("utf-8", errors="replace")


def _named_opening(session: ChatSession, turn: AgentTurn) -> AgentTurn:
    """The call's first agent line greets the merchant by name (`doga.named_opening`, the guard's
    own check, which a DOGA agent's turn has passed already; here for any agent): else it is
    replaced by the turn's filled template ("Say something like: ...") or the safe opening line;
    the model's line stays in `draft`, and the guard records `unnamed_opening`."""
    prefix = "Say something like: "
    last = turn.outline[-1] if turn.outline else ""
    template = last[len(prefix) :] if last.startswith(prefix) else ""
    line = named_opening(
        turn.reply, session.history, session.product, session.merchant.visible(), template
    )
    if line is None:
        return turn
    turn.draft = turn.draft or turn.reply
    turn.reply = line
    turn.guard = {**turn.guard, "unnamed_opening": 1}
    counters = getattr(session.agent, "counters", None)
    if counters is not None:
        counters["unnamed_opening"] += 1
    return turn


def chat_turn(session: ChatSession, text: str | None) -> AgentTurn:
    """Add the merchant's line (None: the call is just starting) and return the agent's turn."""
    if text is not None:
        text = clean_text(text).strip()
        if text:
            session.history.append(Turn("customer", text))
    view = agent_view(session.history, session.act_tagger)  # the words + its own readings
    state = AgentState(view, session.product, session.merchant.visible(), session.seed)
    turn = _named_opening(session, session.agent.respond(state))
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


def transcript_dir(session: ChatSession) -> Path:
    """`<profile artifacts>/chats` (artifacts/chats without a profile on the agent)."""
    prof = getattr(session.agent, "profile", None)
    art = paths(prof, create=False).artifacts if prof is not None else Path("artifacts")
    return Path(art) / "chats"


def save_transcript(session: ChatSession, ended_by: str, folder: str | Path | None = None) -> Path:
    """Write the call as JSON: the product, the merchant's dashboard, how it ended and each turn
    (speaker, text; the agent's intent, entry and guard). Returns the file."""
    folder = Path(folder) if folder is not None else transcript_dir(session)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"{stamp}.json"
    k = 1
    while path.exists():  # two calls in the same second: never overwrite a transcript
        path, k = folder / f"{stamp}-{k}.json", k + 1
    agent_turns = iter(session.turns)
    turns = []
    for t in session.history:
        row: dict[str, Any] = {"speaker": t.speaker, "text": t.text, "intent": t.intent}
        if t.speaker == "agent":
            at = next(agent_turns, None)
            if at is not None:
                row.update(entry_id=at.entry_id, guard=at.guard, draft=at.draft)
        turns.append(row)
    m = session.merchant.visible()
    prof = getattr(session.agent, "profile", None)
    doc = {
        "profile": getattr(prof, "name", None),
        "agent": getattr(session.agent, "name", None),
        "product": session.product.id,
        "merchant": {"id": m.id, "name": m.name, "owner": m.owner, "seed": session.merchant_seed},
        "ended_by": ended_by,
        "outcome": "unknown",
        "agent_turns": len(session.turns),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "turns": turns,
    }
    return write_whole(path, json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")


def _safe_stream(stream: Any) -> Any:
    """A text stream that replaces undecodable input (and unprintable output) instead of failing."""
    if hasattr(stream, "reconfigure"):
        try:
            stream.reconfigure(errors="replace")
        except (ValueError, OSError):  # closed or detached: leave it
            pass
    return stream


class ChatInterrupted(KeyboardInterrupt):
    """Ctrl-C ended the call; the summary is printed and the transcript saved already."""

    def __init__(self, turns: int):
        super().__init__(f"call interrupted after {turns} agent turns")
        self.turns = turns


def run_cli(
    session: ChatSession, lines: Any = None, out: Any = None, save_dir: str | Path | None = None
) -> int:
    """The terminal loop: read merchant lines from `lines` (stdin by default) until an empty line,
    /quit, end of input or Ctrl-C; then print one summary line and save the transcript (under
    `save_dir`, default `transcript_dir`). Returns the number of agent turns; Ctrl-C is re-raised
    as `ChatInterrupted` (carrying that number) after the summary, so that `main` exits 130."""
    out = out or sys.stdout
    lines = lines if lines is not None else _safe_stream(sys.stdin)
    ended_by = "end of input"
    try:
        print(f"You are the merchant. {dashboard_text(session.merchant)}", file=out)
        print(f"The agent sells: {session.product.name} - {session.product.summary}", file=out)
        print("Type your replies; an empty line, /quit or Ctrl-C ends the call.\n", file=out)
        print(format_turn(chat_turn(session, None)), file=out, flush=True)
        for raw in lines:
            text = clean_text(raw).strip()
            if not text or text in {"/quit", "/exit"}:
                ended_by = text or "empty line"
                break
            print(f"YOU: {text}", file=out)
            print(format_turn(chat_turn(session, text)), file=out, flush=True)
    except KeyboardInterrupt:
        ended_by = "Ctrl-C"
    n = len(session.turns)
    try:
        where: Any = save_transcript(session, ended_by, save_dir)
    except OSError as exc:  # a full disk or a read-only folder must not hide the summary
        where = f"not saved ({exc})"
    print(
        f"\nCall ended after {n} agent turns (ended by the user: {ended_by}; outcome unknown). "
        f"Guard counters: {dict(session.agent.counters)}. Transcript: {where}",
        file=out,
        flush=True,
    )
    if ended_by == "Ctrl-C":
        raise ChatInterrupted(n)
    return n


def _int_at_least(low: int, hint: str = ""):
    """An argparse `type`: an integer >= `low` (0: "is negative"; else "is not >= low"), with
    `hint` after either message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer{hint}") from None
        if value < low:
            short = "negative" if low == 0 else f"not >= {low}"
            raise argparse.ArgumentTypeError(f"{value} is {short}{hint}")
        return value

    return parse


_seed = _int_at_least(0, " (use 0, 1, 2, ...)")
_positive = _int_at_least(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m salesman_utils.agent.chat", description=__doc__.splitlines()[0]
    )
    # the help text does not read the product bank: `--help` works even when data/ is broken
    parser.add_argument("--product", required=True, help="a product id of data/products.yaml")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--merchant-seed", type=_seed, default=0, help="an integer >= 0")
    parser.add_argument("--adapter", default=None, help="LoRA adapter folder (notebook 02)")
    parser.add_argument("--max-new-tokens", type=_positive, default=None)
    args = parser.parse_args(argv)
    try:
        products = load_products()
    except DataBankError as exc:
        parser.error(str(exc))
    if args.product not in products:
        parser.error(f"--product {args.product!r}: unknown (known: {sorted(products)})")
    _safe_stream(sys.stdout)
    try:
        session = start_session(
            args.profile, args.product, args.merchant_seed, args.adapter, args.max_new_tokens
        )
    except KeyboardInterrupt:
        print("\nInterrupted while loading the agent; no call was made.", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    try:
        run_cli(session)
    except ChatInterrupted:
        raise SystemExit(EXIT_INTERRUPTED) from None


if __name__ == "__main__":
    main()
