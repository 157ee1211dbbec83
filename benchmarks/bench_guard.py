"""DOGA's guard measured on tutorial artifacts (issue 15): the reply tagger, online acceptance, pushy.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_guard.py --tagger
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_guard.py --acceptance
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_guard.py --online --calls 8 --variants ...

`--tagger`: the agent's reply tagger on corpus rep lines whose intent label is known (train,
validation, test splits): how often a labelled line is read off its intent (top tag, top 2), and
the probability cut chosen on the VALIDATION split (the lowest cut at which a line is accepted for
a move it does not carry on at most 1% of (line, other move) pairs).
`--acceptance` (issue 24): the guard's two acceptance cuts, chosen on the VALIDATION split. Positives:
validation rep lines, each read for its labelled move against DOGA's outline for that move in its
context (`DOGAAgent._outline`). Negatives: the agent's own lines of `data/guard_negatives.yaml`
(filler, off-topic, helpdesk), each read against every move, in a validation context whose rep
line carries that move. A line passes when the tagger gives the move p >= `intent_min_proba` and
its content-word overlap with the outline, the knowledge base and the dashboard
(`doga.outline_overlap`) is >= `outline_min_overlap`. Chosen on a 0.05 grid, among the pairs of cuts
that pass at most 1% of the (negative, move) pairs: the strictest intent cut whose pair passes
within 1 point of the most positives any pair passes, with the most lenient overlap cut there (the
model paraphrases, the corpus lines do not). No model generation; ~3-4 min on a busy 2-core CPU.
`--online`: DOGA (base model) in simulated calls, per guard variant, each with a fresh LLM cache
(generation really paid): the model-written share (first draft passing, final), the guard's
actions, seconds per turn, the referee's violations, and price pushes answered (referee's
`answers_with_kb_price`, read HERE only, never by the agent). `--pushy`: the same agent on the
referee's pushy-merchant set (evaluation data: read here, never by agent code).
`--contexts N`: DOGA on N held-out rep-turn contexts in ONE batch (+ retry rounds): the first
drafts read by HEAD's rule (top tag only, swap at once) and by the soft rule, the final replies,
the referee's findings on each rule's final replies. Variant `legacy` (the guard before issue 15)
runs only in a checkout of that commit, when the package was flat (`git worktree add /tmp/old
7e73f39~2`, then there `cp salesman_utils/doga.py salesman_utils/doga_legacy.py`).
Evaluation side: this script may read the referee; the agent it drives does not.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from salesman_utils.agent.intents import TextTagger  # noqa: E402
from salesman_utils.agent.parts import build_parts, load_splits  # noqa: E402
from salesman_utils.config import load_profile  # noqa: E402

CUT_FALSE_ACCEPT = 0.01
NEGATIVE_PASS = 0.01  # --acceptance: the most (negative line, move) pairs the guard may pass
POS_SLACK = 0.01  # --acceptance: rep lines the stricter intent cut may cost, at most
NEGATIVES_FILE = Path(__file__).resolve().parents[1] / "data" / "guard_negatives.yaml"


def acceptance_cuts(parts, splits, prof, max_lines: int = 800) -> dict:
    """The guard's `intent_min_proba` and `outline_min_overlap`, chosen on the validation split
    (see the module doc). Prints the pass rates at the chosen cuts and at a few others."""
    import yaml

    import salesman_utils.agent.doga as doga
    from salesman_utils.agent.intents import agent_examples
    from salesman_utils.world.corpus import without_hidden
    from salesman_utils.world.knowledge import get_product
    from salesman_utils.world.simulator import visible_merchant

    agent = make_doga(doga, parts, prof, None)
    val = without_hidden(splits["validation"])
    rows = []  # (history, intent, line, product, merchant)
    for d in val:
        hists, intents, _ = agent_examples([d])
        lines = [t.text for t in d.turns if t.speaker == "agent"]
        product, merchant = get_product(d.product_id), visible_merchant(d.merchant)
        rows += [
            (h, it, line, product, merchant)
            for h, it, line in zip(hists, intents, lines, strict=True)
        ]
    keep = np.random.default_rng(1).permutation(len(rows))[:max_lines]
    rows = [rows[i] for i in sorted(keep)]

    def reference(h, intent, product, merchant) -> str:
        _, steps, line = agent._outline(intent, h, product, merchant)
        plan = {"intent": intent, "outline": [*steps, f"Say something like: {line}"]}
        return doga.outline_reference({**plan, "template": line}, product, merchant, agent.library)

    refs = [reference(h, it, p, m) for h, it, _, p, m in rows]
    classes, proba = parts.tagger.proba([r[2] for r in rows])
    pos_p = np.array([proba[k, classes.index(r[1])] for k, r in enumerate(rows)])
    pos_o = np.array([doga.outline_overlap(r[2], ref) for r, ref in zip(rows, refs, strict=True)])
    negs = [s for lines in yaml.safe_load(NEGATIVES_FILE.read_text()).values() for s in lines]
    _, neg_proba = parts.tagger.proba(negs)
    by_move = {c: [k for k, r in enumerate(rows) if r[1] == c] for c in classes}
    neg_p, neg_o = [], []
    for j, text in enumerate(negs):
        for ci, c in enumerate(classes):
            if not by_move[c]:
                continue
            k = by_move[c][j % len(by_move[c])]  # a validation context planned for this move
            neg_p.append(neg_proba[j, ci])
            neg_o.append(doga.outline_overlap(text, refs[k]))
    neg_p, neg_o = np.array(neg_p), np.array(neg_o)
    grid = np.round(np.arange(0.0, 1.0001, 0.05), 2)
    table = [
        (
            float(c1),
            float(c2),
            float(np.mean((pos_p >= c1) & (pos_o >= c2))),
            float(np.mean((neg_p >= c1) & (neg_o >= c2))),
        )
        for c1 in grid
        for c2 in grid
    ]
    ok = [r for r in table if r[3] <= NEGATIVE_PASS]
    top = max(r[2] for r in ok)
    # the strictest intent cut whose best pair stays within POS_SLACK of the most rep lines
    # passed, then the most lenient overlap cut there
    near = [r for r in ok if r[2] >= top - POS_SLACK]
    c1 = max(r[0] for r in near)
    best = min((r for r in near if r[0] == c1), key=lambda r: r[1])
    for c in grid[::2]:
        row = max((r for r in ok if r[0] == c), key=lambda r: r[2], default=None)
        if row:
            print(f"  intent cut {c:.2f}: best overlap cut {row[1]:.2f}, rep lines {row[2]:.3f}")

    def rates(c1: float, c2: float) -> str:
        pos = np.mean((pos_p >= c1) & (pos_o >= c2))
        neg = np.mean((neg_p >= c1) & (neg_o >= c2))
        return f"p>={c1:.2f} overlap>={c2:.2f}: rep lines pass {pos:.3f}, negatives pass {neg:.3f}"

    print(f"validation rep lines n={len(rows)}; negatives {len(negs)} x moves = {len(neg_p)} pairs")
    print("tagger only   " + rates(0.2, 0.0) + " (the rule before issue 24: p>=0.20)")
    print("tagger only   " + rates(best[0], 0.0))
    print("overlap only  " + rates(0.0, best[1]))
    for c1, c2 in [(0.3, 0.5), (0.5, 0.5), (0.5, 0.6), (0.6, 0.6)]:
        print("              " + rates(c1, c2))
    print(
        f"CHOSEN (negatives <= {NEGATIVE_PASS:.0%}, rep lines within {POS_SLACK:.0%} of the most): "
        + rates(best[0], best[1])
    )
    return {"intent_min_proba": best[0], "outline_min_overlap": best[1]}


def tagger_report(parts, splits) -> float:
    tg = parts.tagger
    cut = 1.0
    for name in ("train", "validation", "test"):
        texts, labels = TextTagger._examples(splits[name], "agent", 1500, seed=1)
        classes, proba = tg.proba(texts)
        li = np.array([classes.index(lab) for lab in labels])
        top = proba.argmax(1)
        rank = np.argsort(np.argsort(-proba, 1), 1)[np.arange(len(li)), li]
        other = np.ones_like(proba, dtype=bool)
        other[np.arange(len(li)), li] = False
        top_other = (np.arange(proba.shape[1])[None, :] == top[:, None])[other]
        p_other, top2_other = proba[other], (np.argsort(np.argsort(-proba, 1), 1) <= 1)[other]

        def false_accept(c: float, top_other=top_other, p_other=p_other) -> float:
            return float(np.mean(top_other | (p_other >= c)))

        line = (
            f"{name}: n={len(li)} read off intent (top tag) {np.mean(top != li):.3f}, "
            f"outside top 2 {np.mean(rank > 1):.3f}; wrong move accepted: top tag "
            f"{np.mean(top_other):.3f}, top 2 {np.mean(top2_other):.3f}"
        )
        if name == "validation":
            grid = np.round(np.arange(0.05, 1.0001, 0.01), 2)
            ok = [c for c in grid if false_accept(c) <= CUT_FALSE_ACCEPT]
            cut = float(min(ok)) if ok else 1.0
            line += f"; cut (false accept <= {CUT_FALSE_ACCEPT:.0%}) = {cut:.2f}"
        line += "; at cut: " + ", ".join(
            f"{c:.2f}->{false_accept(c):.3f}" for c in (0.1, 0.15, 0.2, 0.25, 0.3)
        )
        print(line)
    return cut


def make_doga(module, parts, prof, backend, **kw):
    return module.DOGAAgent(
        backend,
        parts.library,
        parts.classifier,
        parts.fsm,
        profile=prof,
        tagger=parts.tagger,
        **kw,
    )


def variant_agent(prof, parts, variant: str, cache: Path):
    """(agent, its doga module, its backend) for one `--variants` entry, on the base policy with
    its own response cache: `legacy` = the guard before issue 15 (`salesman_utils/doga_legacy.py`, not committed), or
    `CUT/RETRIES` = the current guard with that `intent_min_proba` and `guard_retries`."""
    import salesman_utils.agent.doga as doga
    from salesman_utils.llm import make_backend

    module, kw = doga, {}
    if variant.startswith("legacy"):
        try:
            import salesman_utils.doga_legacy as module  # the old guard (uncommitted copy)
        except ImportError:
            raise SystemExit(
                "variant 'legacy' runs in a checkout of 7e73f39~2 (flat package) with "
                "salesman_utils/doga_legacy.py copied from salesman_utils/doga.py there"
            ) from None
    else:
        cut, retries = variant.split("/")
        kw = {"intent_min_proba": float(cut), "guard_retries": int(retries)}
    backend = make_backend({**vars(prof.models.policy), "adapter": None}, cache_path=cache)
    return make_doga(module, parts, prof, backend, **kw), module, backend


def online_run(prof, parts, splits, variant: str, calls: int, max_turns: int, cache: Path):
    import salesman_utils.agent.doga as doga
    import salesman_utils.arena.online as online
    from salesman_utils.referee.answers import answers_with_kb_price

    agent, module, backend = variant_agent(prof, parts, variant, cache)
    agent.act_tagger = parts.act_tagger
    rows = []
    original = online.respond_all

    def traced(agents, states):
        out = module.respond_all(agents, states)
        for s, t in zip(states, out, strict=True):
            words = doga.merchant_last_words(s.history)
            rows.append((s, t, doga.asks_about_price(words)))
        return out

    online.respond_all = traced
    cases, seeds = online.online_cases(splits[EVAL_SPLIT], calls)
    t0 = time.perf_counter()
    try:
        dialogues = online.simulate_calls(
            lambda p, m: agent, cases, seeds, prof, max_turns=max_turns, progress=False
        )
    finally:
        online.respond_all = original
    wall = time.perf_counter() - t0
    agent_turns = [t for d in dialogues for t in d.turns if t.speaker == "agent"]
    n = len(rows)
    llm = sum(t.hidden["reply_kind"] == "llm" for t in agent_turns)
    viol = sum(bool(t.hidden["violations"]) for t in agent_turns)
    price = [(s, t) for s, t, ask in rows if ask]
    post = sum(answers_with_kb_price(t.reply, s.product) for s, t in price)
    draft = sum(
        answers_with_kb_price(getattr(t, "draft", "") or doga.clean_reply(t.raw), s.product)
        for s, t in price
    )
    model_ans = sum(
        answers_with_kb_price(t.reply, s.product) and not t.guard.get("template") for s, t in price
    )
    c = Counter(agent.counters)
    return {
        "variant": variant,
        "turns": n,
        "model_written": f"{llm}/{len(agent_turns)} = {llm / max(1, len(agent_turns)):.2f}",
        "referee_violation_turns": viol,
        "wall_s": round(wall, 1),
        "s_per_turn": round(wall / max(1, n), 2),
        "generated": backend.stats["generated"],
        "price_pushes": len(price),
        "price_answered_post_guard": post,
        "price_answered_model_written": model_ans,
        "price_answered_first_draft": draft,
        "guard": dict(c),
    }


def pushy_run(prof, parts, splits, variant: str, cache: Path):
    import salesman_utils.agent.doga as doga
    from salesman_utils.referee.answers import answers_with_kb_price, invented_numbers
    from salesman_utils.referee.pushy import load_pushy_cases
    from salesman_utils.world.simulator import Turn, visible_merchant

    agent, module, backend = variant_agent(prof, parts, variant, cache)
    from salesman_utils.world.knowledge import get_product

    by_product: dict = {}
    for d in splits["test"]:
        by_product.setdefault(d.product_id, []).append(d)
    states = []
    cases = load_pushy_cases()
    for i, c in enumerate(cases):
        calls = by_product.get(c["product"]) or splits["test"]
        d = calls[i % len(calls)]
        product = get_product(c["product"])
        opening = Turn("agent", d.turns[0].text, None)
        push = Turn("customer", c["text"], None, "objection")
        states.append(
            module.AgentState(
                [opening, push], product, visible_merchant(d.merchant), seed=prof.seed
            )
        )
    t0 = time.perf_counter()
    out = module.respond_all([agent] * len(states), states)
    wall = time.perf_counter() - t0
    pushes = [i for i, c in enumerate(cases) if c["kind"] in ("price", "discount")]
    inv = sum(
        bool(invented_numbers(t.reply, s.product, s.merchant))
        for s, t in zip(states, out, strict=True)
    )
    inv_draft = sum(
        bool(
            invented_numbers(
                getattr(t, "draft", "") or doga.clean_reply(t.raw), s.product, s.merchant
            )
        )
        for s, t in zip(states, out, strict=True)
    )
    post = sum(answers_with_kb_price(out[i].reply, states[i].product) for i in pushes)
    draft = sum(
        answers_with_kb_price(
            getattr(out[i], "draft", "") or doga.clean_reply(out[i].raw), states[i].product
        )
        for i in pushes
    )
    model = [i for i in range(len(out)) if not out[i].guard.get("template")]
    model_ans = sum(
        answers_with_kb_price(out[i].reply, states[i].product) for i in pushes if i in model
    )
    return {
        "variant": variant,
        "n": len(out),
        "price_pushes": len(pushes),
        "answered_post_guard": post,
        "answered_model_written": model_ans,
        "answered_first_draft": draft,
        "model_written": f"{len(model)}/{len(out)}",
        "model_written_on_pushes": sum(i in model for i in pushes),
        "invented_post_guard": inv,
        "invented_first_draft": inv_draft,
        "wall_s": round(wall, 1),
        "guard": dict(agent.counters),
    }


def contexts_run(
    prof, parts, splits, cut: float, retries: int, n: int, cache: Path, offset: int = 0
):
    """DOGA (base model) on `n` held-out rep-turn contexts (one per test call, a seeded turn, as
    the agent hears the call: `agent_view_histories`), ONE batch + the guard's retry rounds. From
    the same run: the rule of HEAD (top tag only; an off-intent draft is swapped at once) read on
    the first drafts, the soft rule on the drafts, and the final replies with retries; the
    referee's findings (`referee.facts.check`, read here only) on each rule's final replies."""
    import salesman_utils.agent.doga as doga
    from salesman_utils.agent.intents import agent_view_histories
    from salesman_utils.llm import make_backend
    from salesman_utils.referee.answers import answers_with_kb_price
    from salesman_utils.referee.facts import check
    from salesman_utils.world.simulator import visible_merchant

    rng = np.random.default_rng(0)
    states = []
    for d in splits[EVAL_SPLIT][offset : offset + n]:
        hists = agent_view_histories([d], parts.act_tagger)
        k = int(rng.integers(0, len(hists)))
        states.append(
            doga.AgentState(
                hists[k], get_product_(d.product_id), visible_merchant(d.merchant), seed=prof.seed
            )
        )
    backend = make_backend({**vars(prof.models.policy), "adapter": None}, cache_path=cache)
    agent = make_doga(doga, parts, prof, backend, intent_min_proba=cut, guard_retries=retries)
    t0 = time.perf_counter()
    out = doga.respond_all([agent] * len(states), states)
    wall = time.perf_counter() - t0
    plans = [{"intent": t.intent} for t in out]
    drafts = [t.draft for t in out]
    read = doga._planned_proba(parts.tagger, drafts, [t.intent for t in out])
    price = [doga.asks_about_price(doga.merchant_last_words(s.history)) for s in states]
    clean = [
        not doga.fact_check(t.draft, s.product, s.merchant)
        for s, t in zip(states, out, strict=True)
    ]
    head_ok = [
        c and bool(d) and (tag == pl["intent"])
        for c, d, (tag, _), pl in zip(clean, drafts, read, plans, strict=True)
    ]
    soft_ok = [
        c
        and bool(d)
        and (doga.states_price(d, s.product) if pr else (tag == pl["intent"] or p >= cut))
        for c, d, (tag, p), pl, pr, s in zip(clean, drafts, read, plans, price, states, strict=True)
    ]
    final_model = [not t.guard.get("template") for t in out]
    # HEAD's final reply: the draft if clean and on its top tag, else the filled template
    fallback = [t.outline[-1].removeprefix("Say something like: ") for t in out]
    ref_head = sum(
        bool(check(d if ok else fb, s.product, s.merchant))
        for d, ok, fb, s in zip(drafts, head_ok, fallback, states, strict=True)
    )
    ref_new = sum(
        bool(check(t.reply, s.product, s.merchant)) for s, t in zip(states, out, strict=True)
    )
    pushes = [i for i in range(len(states)) if price[i]]
    return {
        "contexts": len(states),
        "accepted_head_rule_first_draft": sum(head_ok),
        "accepted_soft_rule_first_draft": sum(soft_ok),
        "model_written_final": sum(final_model),
        "referee_flagged_final_head_rule": ref_head,
        "referee_flagged_final_new": ref_new,
        "price_pushes": len(pushes),
        "price_answered_first_draft": sum(
            answers_with_kb_price(drafts[i], states[i].product) for i in pushes
        ),
        "price_answered_final": sum(
            answers_with_kb_price(out[i].reply, states[i].product) for i in pushes
        ),
        "generated": backend.stats["generated"],
        "wall_s": round(wall, 1),
        "s_per_context": round(wall / max(1, len(states)), 2),
        # per turn: the first generation, and the guard (its retry rounds included)
        "s_generate_per_turn": round(out[0].timings["generate"], 2) if out else None,
        "s_guard_per_turn": round(out[0].timings["guard"], 2) if out else None,
        "guard": dict(agent.counters),
    }


def get_product_(pid):
    from salesman_utils.world.knowledge import get_product

    return get_product(pid)


EVAL_SPLIT = "validation"  # --split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="tutorial")
    ap.add_argument("--tagger", action="store_true")
    ap.add_argument("--acceptance", action="store_true", help="choose the guard's cuts")
    ap.add_argument("--online", action="store_true")
    ap.add_argument("--pushy", action="store_true")
    ap.add_argument("--contexts", type=int, default=0, help="held-out rep-turn contexts")
    ap.add_argument("--offset", type=int, default=0, help="first call of --contexts")
    ap.add_argument(
        "--split",
        default="validation",
        choices=["validation", "test"],
        help="calls for --contexts and --online (validation: settings are chosen off the test split "
        "that notebooks 04-05 report on; this stop's first measurements used test, see README)",
    )
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--max-turns", type=int, default=8)
    ap.add_argument("--variants", default="legacy,1.0/1,0.2/1", help="legacy or CUT/RETRIES")
    args = ap.parse_args()
    global EVAL_SPLIT
    EVAL_SPLIT = args.split
    prof = load_profile(args.profile)
    splits, note = load_splits(prof)
    parts = build_parts(prof, splits)
    print(f"corpus: {note}; {parts.library_note}")
    if args.tagger:
        tagger_report(parts, splits)
    if args.acceptance:
        print(acceptance_cuts(parts, splits, prof))
    with tempfile.TemporaryDirectory() as tmp:
        if args.contexts:
            cut, retries = args.variants.split(",")[0].split("/")
            res = contexts_run(
                prof,
                parts,
                splits,
                float(cut),
                int(retries),
                args.contexts,
                Path(tmp) / "c.sqlite",
                args.offset,
            )
            print(res, flush=True)
        for k, v in enumerate(args.variants.split(",")):
            if args.pushy:
                print(pushy_run(prof, parts, splits, v, Path(tmp) / f"p{k}.sqlite"), flush=True)
            if args.online:
                print(
                    online_run(
                        prof,
                        parts,
                        splits,
                        v,
                        args.calls,
                        args.max_turns,
                        Path(tmp) / f"o{k}.sqlite",
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
