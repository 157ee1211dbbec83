"""Training and scoring time of the trained judge (`salesman_utils.judge.trained`) on this machine.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_judge.py [--calls 2000] [--contexts 1500]
        [--systems 7] [--items 100] [--save judge.pkl]

Simulates `--calls` calls (seed 0), splits them as notebook 01 does, trains the judge on the
training split (never from the cache), then scores `--systems` x `--items` held-out replies on the
seven metrics with a cold embedding cache, as notebook 05 does. Prints both timings against the
budgets of issue 14 (train <= 5 min, score 7 x 100 x 7 <= 2 min on 2 CPU cores) and the machine's
load average, since other processes slow both. Also prints the process CPU time (all threads): on a
loaded machine the wall time says little, and CPU time / 2 is a floor for the wall time on 2 idle
cores. Asserts nothing.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_judge.py --checks tutorial

With `--checks PROFILE`, instead: trains the judge on that profile's corpus (notebook 01's
`artifacts/<profile>/corpus`) as notebook 05 does and prints notebook 05's checks of the trained judge
(both pair files, Faithfulness AUC, expert vs novice, same-bank control) and the misses per pair.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from salesman_utils.judge.items import judge_view  # noqa: E402
from salesman_utils.judge.llm_judge import score  # noqa: E402
from salesman_utils.judge.trained import Encoder, JudgeSettings, save_judge, train_judge
from salesman_utils.models import load_embedder  # noqa: E402
from salesman_utils.world.corpus import agent_turn_contexts, simulate_corpus, split  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--contexts", type=int, default=1500)
    ap.add_argument("--systems", type=int, default=7)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--save", default=None, help="also save the trained judge to this file")
    ap.add_argument("--checks", metavar="PROFILE", default=None, help="run notebook 05's checks")
    args = ap.parse_args(argv)
    if args.checks:
        return checks(args.checks)
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


def checks(profile: str, seed: int = 0) -> None:
    """Notebook 05's checks of the trained judge on `profile`'s corpus (section 4b)."""
    from salesman_utils.agent.parts import load_splits
    from salesman_utils.arena import evaluation as ev
    from salesman_utils.config import load_profile
    from salesman_utils.judge import validation as jv

    prof = load_profile(profile, seed=seed)
    splits, _ = load_splits(prof)
    t0 = time.perf_counter()
    settings = JudgeSettings(max_contexts=prof.eval.judge_max_contexts, seed=seed)
    judge = train_judge(splits["train"], settings)
    print(f"trained in {time.perf_counter() - t0:.0f} s ({judge.train_note})")
    test, n = splits["test"], prof.eval.n_planted
    pairs, dev = jv.load_pairs(jv.HOLDOUT_PAIRS_FILE), jv.load_dev_pairs()
    expert, novice, _ = jv.expert_novice_split(test, n, prof, seed)
    row, details = jv.run_checks(
        "trained",
        judge,
        "trained",
        pairs,
        ev.faithfulness_probe(test, n, prof, seed),
        (expert, novice),
        None,
        jv.same_bank_pairs(test, n, prof, seed),
        dev,
        n_boot=prof.eval.n_bootstrap,
        seed=seed,
    )
    for k in ("pairs", "dev_pairs", "faithfulness_auc", "expert_preferred"):
        print(f"{k}: {row[k]:.3f} [{row[k + '_lo']:.3f}, {row[k + '_hi']:.3f}]")
    print(f"pairs right: {round(row['pairs'] * row['pairs_n'])}/{row['pairs_n']} ({pairs_name()})")
    print(f"dev pairs right: {round(row['dev_pairs'] * row['dev_pairs_n'])}/{row['dev_pairs_n']}")
    print(f"expert decisive pairs: {row['expert_decisive_pairs']}")
    print(
        f"same-bank control: {row['same_bank_expert_preferred']:.3f} "
        f"(decisive {row['same_bank_decisive_pairs']})"
    )
    print(row["verdict"])
    table = details["pairs"]
    print(
        table.loc[~table["right"], ["set", "file", "id", "metric", "better_score", "worse_score"]]
    )


def pairs_name() -> str:
    from salesman_utils.judge.validation import HOLDOUT_PAIRS_FILE

    return HOLDOUT_PAIRS_FILE.name


if __name__ == "__main__":
    main()
