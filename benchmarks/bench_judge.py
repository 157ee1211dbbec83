"""Training and scoring time of the trained judge (`salesman_utils.judge_model`) on this machine.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_judge.py [--calls 2000] [--contexts 1500]
        [--systems 7] [--items 100] [--save judge.pkl]

Simulates `--calls` calls (seed 0), splits them as notebook 01 does, trains the judge on the
training split (never from the cache), then scores `--systems` x `--items` held-out replies on the
seven metrics with a cold embedding cache, as notebook 05 does. Prints both timings against the
budgets of issue 14 (train <= 5 min, score 7 x 100 x 7 <= 2 min on 2 CPU cores) and the machine's
load average, since other processes slow both. Also prints the process CPU time (all threads): on a
loaded machine the wall time says little, and CPU time / 2 is a floor for the wall time on 2 idle
cores. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from salesman_utils.corpus import agent_turn_contexts, simulate_corpus, split  # noqa: E402
from salesman_utils.evaluation import judge_view  # noqa: E402
from salesman_utils.judge import score  # noqa: E402
from salesman_utils.judge_model import (  # noqa: E402
    Encoder,
    JudgeSettings,
    save_judge,
    train_judge,
)
from salesman_utils.models import load_embedder  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--contexts", type=int, default=1500)
    ap.add_argument("--systems", type=int, default=7)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--save", default=None, help="also save the trained judge to this file")
    args = ap.parse_args(argv)
    load_embedder()  # model load is paid once per process, outside both timings
    splits = split(simulate_corpus(args.calls, seed=0), seed=0)
    t0, c0 = time.perf_counter(), time.process_time()
    judge = train_judge(splits["train"], JudgeSettings(max_contexts=args.contexts))
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    if args.save:
        save_judge(judge, args.save)
    ctxs = [(d, c) for d in splits["test"] for c in agent_turn_contexts(d)][: args.items]
    # seven "systems": distinct replies to the same contexts (the rep's, the expert's, swaps...)
    pool = [d.turns[c.index] for d, c in ctxs]
    items = []
    for s in range(args.systems):
        for k, (d, c) in enumerate(ctxs):
            t = pool[(k + s) % len(pool)]
            reply = t.hidden["expert_text"] if s % 2 else t.text
            items.append(judge_view(d, c, reply, f"system{s}", None, f"{d.id}:{c.index}"))
    judge.encoder = Encoder(judge.settings.embedder)  # cold cache: every text embedded again
    t0, c0 = time.perf_counter(), time.process_time()
    df = score(judge, items, kind="trained")
    score_s, score_cpu = time.perf_counter() - t0, time.process_time() - c0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f}")
    print(
        f"train: {train_s:.0f} s wall, {train_cpu:.0f} s CPU (all threads) on "
        f"{len(splits['train'])} training calls, "
        f"{args.contexts} contexts (budget 300 s) | {judge.train_note}"
    )
    print(
        f"score: {score_s:.1f} s wall, {score_cpu:.1f} s CPU for {args.systems} systems x "
        f"{len(ctxs)} items x 7 metrics "
        f"= {len(df)} scores (budget 120 s)"
    )


if __name__ == "__main__":
    main()
