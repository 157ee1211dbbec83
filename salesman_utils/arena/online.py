"""The arena: whole calls of an agent against the simulated customer, scored by the referee.

This module is where the two sides meet, so it may import both: the agents (`doga`, `parts`) and
the referee (`referee.perception`, `referee.facts`). Agent-side modules must never import it
(`tests/test_boundary.py`).

`simulate_calls` plays many calls in lockstep: each round makes ONE batched generation for every live
call (`doga.respond_all`). The agent hears the call through `intents.agent_view`: the customer's
words with ITS OWN act tagger's readings, its own past turns with its own planned intent; no
simulator label. The customer is the corpus's `CustomerSimulator` (same latent dynamics), reading a
free-text reply through the referee's perception (`referee.perception.CustomerPerception`, fitted
on the held-out rep bank, never on corpus turns):
* intent = the perception's tag of the reply;
* adapted = the perception's reading (Opening register, Business_Analysis on the weakest metric,
  Product_Introduction with this merchant's data), passed as `personalized`;
* faithful = the referee's own check (`referee.facts.check`) finds nothing;
* is_expert_move = heard intent == `CustomerSimulator.expert_intent()`.
The agent's own tag of its reply (its `ReplyTagger`, the one its guard uses) and the guard's
checker (`world.factcheck.fact_check`) on the final reply are recorded beside the referee's, so that a
notebook can show how often they agree. Customer lines come from the simulator's templates.

What a DOGA agent is built from lives in `agent.parts`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from salesman_utils.agent.doga import AgentState, BaseAgent, respond_all
from salesman_utils.agent.intents import agent_view
from salesman_utils.config import Profile
from salesman_utils.referee.perception import CustomerPerception, load_or_fit
from salesman_utils.stats import min_detectable_difference, wilson_ci
from salesman_utils.world.factcheck import fact_check
from salesman_utils.world.knowledge import Product, get_product
from salesman_utils.world.simulator import (
    AgentProfile,
    CustomerSimulator,
    Dialogue,
    MerchantProfile,
    Turn,
)

# ---------------------------------------------------------------- calls


def simulate_calls(
    agent_factory: BaseAgent | Callable[[Product, MerchantProfile], BaseAgent],
    merchants_products: Sequence[tuple[MerchantProfile, Product]],
    seeds: Sequence[int],
    profile: Profile,
    *,
    perception: CustomerPerception | None = None,
    act_tagger: Any = None,
    tagger: Any = None,
    max_turns: int | None = None,
    system: str | None = None,
    progress: bool = True,
) -> list[Dialogue]:
    """Play one call per (merchant, product) pair and seed, all calls in lockstep.

    `agent_factory` is an agent (shared by all calls: states carry product and merchant) or a
    callable (product, merchant) -> agent. `perception` is the customer's (default: the profile's
    cached `referee.perception.load_or_fit`); `act_tagger` the agent's own ears (default: the
    agent's `act_tagger`, set by `parts.make_agent`); `tagger` the agent's own reply tagger
    (default: the agent's `tagger`). Agent turns carry `intent` = the intent the customer heard
    and, in `hidden` (evaluation only), the planned and own-tagged intents, expert intent,
    quality, faithfulness and findings of the referee, the guard checker's findings, the guard's
    actions and whether the reply is the model's (`reply_kind` llm) or a template.
    """
    if len(seeds) != len(merchants_products):
        raise ValueError(f"simulate_calls: {len(seeds)} seeds for {len(merchants_products)} calls")
    max_turns = max_turns or profile.doga.max_turns
    # agents see the merchant's dashboard only (`simulator.visible_merchant`); the customer and
    # the referee keep the whole profile
    views = [m.visible() for m, _ in merchants_products]
    agents = [
        agent_factory if isinstance(agent_factory, BaseAgent) else agent_factory(p, v)
        for (_, p), v in zip(merchants_products, views, strict=True)
    ]
    if not agents:
        return []
    tagger = tagger or getattr(agents[0], "tagger", None)
    act_tagger = act_tagger or getattr(agents[0], "act_tagger", None)
    if tagger is None or act_tagger is None:
        raise ValueError(
            "simulate_calls: the agent's own reply tagger and act tagger are needed "
            "(pass tagger=/act_tagger=, e.g. DogaParts.tagger/.act_tagger, or use make_agent)"
        )
    perception = perception or load_or_fit(profile)
    system = system or agents[0].name
    sims = [
        CustomerSimulator(m, p, seed=[int(s), 11], max_turns=max_turns)
        for (m, p), s in zip(merchants_products, seeds, strict=True)
    ]
    turns: list[list[Turn]] = [[] for _ in sims]
    own: list[list[str | None]] = [[] for _ in sims]  # the agent's own intent of each of its turns
    live = list(range(len(sims)))
    bar = tqdm(total=max_turns, desc=f"{system} calls", disable=not progress)
    rnd = 0
    while live:
        states = [
            AgentState(
                agent_view(turns[i], act_tagger, own[i]),
                merchants_products[i][1],
                views[i],
                seed=profile.seed + rnd,
            )
            for i in live
        ]
        outs = respond_all([agents[i] for i in live], states)
        replies = [o.reply for o in outs]
        own_tags = tagger.tag(replies)
        heard = perception.perceive(
            replies,
            [merchants_products[i][1] for i in live],
            [merchants_products[i][0] for i in live],
        )
        paired = _template_heard(perception, outs, [merchants_products[i] for i in live])
        for k, (i, out, tag, h) in enumerate(zip(live, outs, own_tags, heard, strict=True)):
            own[i].append(out.intent or tag)
            _play(sims[i], turns[i], out, tag, h, *merchants_products[i], paired.get(k))
        live = [i for i in live if not sims[i].done]
        rnd += 1
        bar.update(1)
    bar.close()
    return [
        Dialogue(
            f"{system}-{k:04d}",
            p.id,
            m,
            AgentProfile(system, agents[k].agent_name, "expert"),
            turns[k],
            sims[k].outcome or "failure",
        )
        for k, (m, p) in enumerate(merchants_products)
    ]


def _reply_kind(out: Any) -> str:
    """'template' when the guard (or a model-free agent) said a fallback line, else 'llm'."""
    guard = out.guard or {}
    keys = ("template", "empty", "no_model", "unnamed_opening")
    return "template" if any(guard.get(k) for k in keys) else "llm"


def _template_heard(
    perception: CustomerPerception, outs: Sequence[Any], cases: Sequence[tuple]
) -> dict[int, tuple[str, str]]:
    """The paired readings (issue 24), read only (the customer reacts to the actual reply): for
    each turn of a guarded agent that wrote a draft and had a fallback template
    (`AgentTurn.fallback`), the intents the referee's perception hears in that template and in the
    model's first draft (`AgentTurn.draft`, before the guard), in the same call (same product, same
    merchant), in one batch: {index in `outs`: (template intent, draft intent)}. The template
    reading on model-written turns gives `heard.paired_heard_table`; both readings on every such
    turn give `heard.draft_heard_table`, which the guard's choice does not select."""
    idx = [
        k
        for k, o in enumerate(outs)
        if getattr(o, "fallback", "")
        and getattr(o, "draft", "")
        and not (o.guard or {}).get("no_model")
    ]
    if not idx:
        return {}
    texts = [outs[k].fallback for k in idx] + [outs[k].draft for k in idx]
    heard = perception.perceive(
        texts, [cases[k][1] for k in idx] * 2, [cases[k][0] for k in idx] * 2
    )
    n = len(idx)
    return {k: (heard[j].intent, heard[n + j].intent) for j, k in enumerate(idx)}


def _play(
    sim: CustomerSimulator,
    turns: list[Turn],
    out: Any,
    own_tag: str,
    heard: Any,
    m,
    p,
    template_heard: tuple[str, str] | None = None,
):
    """One agent turn: the customer reacts to the reply as the referee's perception `heard` it;
    the agent turn keeps the referee's readings in `hidden` (with `template_referee_intent` and
    `draft_referee_intent`, the perception's readings of the turn's fallback template and of the
    model's first draft, on a guarded agent's turns; `_template_heard`)."""
    expert, script = sim.expert_intent(), sim.script_intent()
    guard_findings = fact_check(out.reply, p, m)
    act, text, _, _ = sim.step(
        heard.intent, heard.faithful, heard.adapted, is_expert_move=heard.intent == expert
    )
    hidden = {
        "quality": sim.last_quality,
        "expert_intent": expert,
        "script_intent": script,
        "planned_intent": out.intent,
        "agent_tag": own_tag,
        "referee_intent": heard.intent,
        "faithful": heard.faithful,
        "adapted": heard.adapted,
        "personalized": heard.adapted,
        "violations": [f.__dict__ for f in heard.findings],
        "guard_violations": [v.__dict__ for v in guard_findings],
        "reply_kind": _reply_kind(out),
        "guard": out.guard,
        "draft": getattr(out, "draft", "") or out.reply,  # the model's first reply, pre-guard
        "entry_id": out.entry_id,
        "outline": out.outline,
    }
    if template_heard is not None:
        hidden["template_referee_intent"], hidden["draft_referee_intent"] = template_heard
    turns.append(Turn("agent", out.reply, intent=heard.intent, hidden=hidden))
    turns.append(Turn("customer", text, act=act, objection_type=sim.last_objection_type))


def simulate_call(
    agent: BaseAgent,
    product: Product,
    merchant: MerchantProfile,
    seed: int,
    profile: Profile,
    **kwargs: Any,
) -> Dialogue:
    """One whole call (see `simulate_calls`)."""
    return simulate_calls(agent, [(merchant, product)], [seed], profile, **kwargs)[0]


# ---------------------------------------------------------------- summaries


DATA_MOVES = ("Business_Analysis", "Product_Introduction")  # adaptation = the store's data


def _rates(agent: Sequence[Turn]) -> dict[str, float]:
    """Rates over `agent`'s replies; nan (not 0) when there are none. `planned_heard_rate`: among
    the replies of an agent that plans its move (DOGA), the share in which the customer heard the
    planned move (`referee_intent` == `planned_intent`; the count is `planned_heard` of
    `planned_n`); nan for agents that plan none."""
    if not agent:
        return dict.fromkeys(
            [
                "adapted_rate",
                "adapted_rate_data_moves",
                "expert_move_rate",
                "referee_violations_per_100",
                "planned_heard_rate",
            ],
            float("nan"),
        ) | {"data_moves": 0, "planned_n": 0, "planned_heard": 0}
    n = len(agent)
    data = [t for t in agent if t.intent in DATA_MOVES]
    planned = [
        t for t in agent if t.hidden.get("planned_intent") and t.hidden.get("referee_intent")
    ]
    heard = sum(t.hidden["referee_intent"] == t.hidden["planned_intent"] for t in planned)
    return {
        "adapted_rate": sum(bool(t.hidden.get("adapted")) for t in agent) / n,
        "data_moves": len(data),
        "adapted_rate_data_moves": (
            sum(bool(t.hidden.get("adapted")) for t in data) / len(data) if data else float("nan")
        ),
        "expert_move_rate": sum(t.intent == t.hidden.get("expert_intent") for t in agent) / n,
        "referee_violations_per_100": 100
        * sum(len(t.hidden.get("violations", [])) for t in agent)
        / n,
        # does the reply carry the move the agent planned, as the CUSTOMER heard it (the referee's
        # perception, fitted on the held-out rep bank), not as the agent's own tagger read it
        "planned_n": len(planned),
        "planned_heard": heard,
        "planned_heard_rate": heard / len(planned) if planned else float("nan"),
    }


def summarize_calls(dialogues: Sequence[Dialogue], system: str) -> dict[str, Any]:
    """Conversion and hang-ups with 95% Wilson intervals (`stats.wilson_ci`); per reply: the
    referee's violations, the guard checker's flags and their disagreements, the agreement of the
    agent's own tagger with the customer's, and the model-written vs template replies."""
    n = len(dialogues)
    conv = sum(d.outcome == "success" for d in dialogues)
    hang = sum(d.outcome == "hangup" for d in dialogues)
    agent = [t for d in dialogues for t in d.turns if t.speaker == "agent"]
    turns_viol = sum(bool(t.hidden.get("violations")) for t in agent)
    guard_flag = [bool(t.hidden.get("guard_violations")) for t in agent]
    guard: Counter[str] = Counter()
    for t in agent:
        guard.update(t.hidden.get("guard", {}) or {})
    rate, lo, hi = wilson_ci(conv, n)
    h_rate, h_lo, h_hi = wilson_ci(hang, n)
    v_rate, v_lo, v_hi = wilson_ci(turns_viol, len(agent))
    tagged = [t for t in agent if t.hidden.get("agent_tag")]
    agree = sum(t.hidden["agent_tag"] == t.hidden.get("referee_intent", t.intent) for t in tagged)
    kinds = Counter(t.hidden.get("reply_kind", "llm") for t in agent)
    return {
        "system": system,
        "n": n,
        "conversions": conv,
        "rate": rate,
        "lo": lo,
        "hi": hi,
        "hangups": hang,
        "hangup_rate": h_rate,
        "hangup_lo": h_lo,
        "hangup_hi": h_hi,
        "agent_turns": len(agent),
        **_rates(agent),
        "violating_turns_per_100": 100 * v_rate,
        "violating_lo": 100 * v_lo,
        "violating_hi": 100 * v_hi,
        "guard_flagged_per_100": 100 * sum(guard_flag) / max(1, len(agent)),
        "guard_referee_disagree": sum(
            g != bool(t.hidden.get("violations")) for g, t in zip(guard_flag, agent, strict=True)
        ),
        "tagger_agreement": agree / len(tagged) if tagged else float("nan"),
        "tagger_n": len(tagged),
        "llm_replies": kinds["llm"],
        "template_replies": kinds["template"],
        "guard_regenerated": guard["regenerated"],
        "guard_template": guard["template"],
    }


def online_table(results: dict[str, Sequence[Dialogue]]) -> pd.DataFrame:
    """One row per system (see `summarize_calls`)."""
    return pd.DataFrame([summarize_calls(d, s) for s, d in results.items()])


def reply_kinds_table(results: dict[str, Sequence[Dialogue]]) -> pd.DataFrame:
    """Per system and reply kind (llm = the model's reply passed the guard; template = the guard's
    or an empty reply's fallback, or a model-free agent's line): replies, expert-move rate,
    referee violations per 100, the customer's adapted rate (all replies, and among the replies
    heard as Business_Analysis / Product_Introduction, where adaptation means the store's data),
    and the share of planned moves the customer heard (`planned_heard_rate`: an instrument apart
    from the guard, whose own tagger decided which model replies were kept), with its Wilson 95%
    interval; `share` is the kind's share of the system's replies (the model-written share)."""
    rows = []
    for system, dialogues in results.items():
        agent = [t for d in dialogues for t in d.turns if t.speaker == "agent"]
        for kind in ("llm", "template"):
            part = [t for t in agent if t.hidden.get("reply_kind", "llm") == kind]
            rates = _rates(part)
            _, lo, hi = wilson_ci(rates["planned_heard"], rates["planned_n"])
            rows.append(
                {
                    "system": system,
                    "kind": kind,
                    "replies": len(part),
                    "share": len(part) / len(agent) if agent else float("nan"),
                    **rates,
                    "planned_heard_lo": lo,
                    "planned_heard_hi": hi,
                }
            )
    return pd.DataFrame(rows)


FINDING_COLUMNS = ["system", "call_id", "turn", "reply_kind", "kind", "span", "reply"]
FINDING_COLUMNS += ["guard_flagged", "guard_kinds"]


def referee_findings_table(calls: dict[str, Sequence[Dialogue]]) -> pd.DataFrame:
    """One row per referee finding in an agent turn of the online calls (`_play` keeps them in
    `Turn.hidden`): system, call id, turn index (in `Dialogue.turns`), reply kind (llm = the
    model's reply passed the guard, template = a fallback), the finding's kind and span, the
    reply, and whether the agent's guard checker (`world.factcheck.fact_check`, in
    `hidden['guard_violations']`) flagged the same reply (`guard_flagged`, with its kinds; always
    False for a guarded agent's turn, whose final reply already passed that check: informative for
    unguarded agents such as `base_plain`). Empty input: an empty frame with these columns."""
    rows = []
    for system, dialogues in calls.items():
        for d in dialogues:
            for k, t in enumerate(d.turns):
                if t.speaker != "agent":
                    continue
                guard = t.hidden.get("guard_violations") or []
                for f in t.hidden.get("violations") or []:
                    rows.append(
                        {
                            "system": system,
                            "call_id": d.id,
                            "turn": k,
                            "reply_kind": t.hidden.get("reply_kind", "llm"),
                            "kind": f.get("kind"),
                            "span": f.get("span"),
                            "reply": t.text,
                            "guard_flagged": bool(guard),
                            "guard_kinds": ", ".join(sorted({g.get("kind", "") for g in guard})),
                        }
                    )
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


def detectable_difference_line(table: pd.DataFrame, alpha: float = 0.05, power: float = 0.8):
    """A sentence: the smallest conversion difference these calls could detect
    (`stats.min_detectable_difference` at the pooled observed rate, the smallest n per system)."""
    n = int(table["n"].min()) if len(table) else 0
    base = float(table["conversions"].sum() / max(1, table["n"].sum()))
    mdd = min_detectable_difference(n, base, alpha, power)
    return (
        f"With {n} calls per system and a pooled conversion rate of {base:.1%}, a two-sided "
        f"two-proportion test (alpha {alpha}, power {power}) detects a difference of "
        f"{mdd:.1%} or more; smaller differences between systems are not readable here."
    )


def online_cases(
    test_dialogues: Sequence[Dialogue], n: int, seed: int = 0
) -> tuple[list[tuple[MerchantProfile, Product]], list[int]]:
    """`n` (merchant, product) pairs from the held-out calls (distinct pairs first, then again with
    other seeds), and one customer seed per call."""
    pairs, seen = [], set()
    for d in test_dialogues:
        if (d.merchant.id, d.product_id) not in seen:
            seen.add((d.merchant.id, d.product_id))
            pairs.append((d.merchant, get_product(d.product_id)))
    if not pairs:
        raise ValueError("online_cases: no test dialogues")
    cases = [pairs[i % len(pairs)] for i in range(n)]
    return cases, [seed * 100_003 + i for i in range(n)]


# ---------------------------------------------------------------- parts and adapters


def transcript(dialogue: Dialogue, width: int = 110) -> str:
    """A readable call: agent lines with tagged (and planned) intent, customer lines with act."""
    import textwrap

    lines = [f"{dialogue.id}  product={dialogue.product_id}  outcome={dialogue.outcome}"]
    for t in dialogue.turns:
        if t.speaker == "agent":
            planned = t.hidden.get("planned_intent")
            tag = t.intent + (f" / planned {planned}" if planned and planned != t.intent else "")
            head = f"AGENT [{tag}]"
        else:
            head = f"MERCHANT [{t.act}{':' + t.objection_type if t.objection_type else ''}]"
        lines.append(textwrap.shorten(f"{head} {t.text}", width=width))
    return "\n".join(lines)
