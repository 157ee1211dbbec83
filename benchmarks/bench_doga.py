"""Per-turn latency of the DOGA agent on this machine: classify / retrieve / generate / guard.

    .venv/bin/python benchmarks/bench_doga.py [--profile smoke] [--calls 8] [--rounds 3]
        [--max-new-tokens 32]

Plays `--calls` simulated calls in lockstep for `--rounds` rounds with a fresh (uncached) LLM cache,
so generation is really paid, then prints the mean seconds per agent turn of each stage (generation
and guard are batch times divided by the batch size) and the same for a one-call-at-a-time run.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pandas as pd  # noqa: E402

from salesman_utils.agent.doga import DOGAAgent  # noqa: E402
from salesman_utils.agent.parts import build_parts, load_splits
from salesman_utils.arena.online import online_cases, simulate_calls
from salesman_utils.config import load_profile  # noqa: E402
from salesman_utils.llm import make_backend  # noqa: E402

STAGES = ["classify", "retrieve", "generate", "guard"]


def run(prof, parts, backend, calls: int, rounds: int, max_new_tokens: int) -> pd.DataFrame:
    from salesman_utils.agent import doga

    cases, seeds = online_cases(load_splits(prof)[0]["test"], calls)
    agent = DOGAAgent(
        backend,
        parts.library,
        parts.classifier,
        parts.fsm,
        profile=prof,
        tagger=parts.tagger,
        max_new_tokens=max_new_tokens,
    )
    rows: list[dict[str, float]] = []
    original = doga.respond_all

    def timed(agents, states):
        out = original(agents, states)
        rows.extend({**t.timings, "batch": len(states)} for t in out)
        return out

    doga.respond_all = timed
    import salesman_utils.arena.online as online

    online.respond_all = timed
    try:
        simulate_calls(agent, cases, seeds, prof, max_turns=rounds, progress=False)
    finally:
        doga.respond_all = online.respond_all = original
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    args = ap.parse_args()
    prof = load_profile(args.profile)
    t0 = time.perf_counter()
    splits, note = load_splits(prof)
    parts = build_parts(prof, splits)
    print(f"corpus: {note}; parts ready in {time.perf_counter() - t0:.1f}s ({parts.library_note})")
    with tempfile.TemporaryDirectory() as tmp:
        spec = {**vars(prof.models.policy), "adapter": None}
        results = {}
        for k, (label, calls) in enumerate(
            ((f"batched x{args.calls}", args.calls), ("one call", 1))
        ):
            # a fresh cache per run: the second run must not reuse the first run's replies
            backend = make_backend(spec, cache_path=Path(tmp) / f"llm-{k}.sqlite")
            t = time.perf_counter()
            df = run(prof, parts, backend, calls, args.rounds, args.max_new_tokens)
            wall = time.perf_counter() - t
            results[label] = {**df[STAGES].mean().to_dict(), "turns": len(df), "wall_s": wall}
    table = pd.DataFrame(results).T
    table["total_per_turn_s"] = table[STAGES].sum(axis=1)
    print(f"\nseconds per agent turn (max_new_tokens={args.max_new_tokens}, {os.cpu_count()} CPUs)")
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
