"""Benchmark: simulate_corpus(2000, seed=0) wall time (target < 60 s on 2 cores) and determinism.

Run: `python benchmarks/bench_corpus.py [--n 2000] [--seed 0]`. Prints the time, whether two runs with
the same seed are identical, and the done-when statistics of the corpus.
"""

from __future__ import annotations

import argparse
import json
import time

from salesman_utils.world.corpus import corpus_stats, simulate_corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    first = simulate_corpus(args.n, seed=args.seed)
    elapsed = time.perf_counter() - t0
    second = simulate_corpus(args.n, seed=args.seed)
    stats = corpus_stats(first)
    conv = {k: round(v["rate"], 3) for k, v in stats["conversion_by_skill"].items()}
    print(
        f"simulate_corpus({args.n}, seed={args.seed}): {elapsed:.1f} s "
        f"({1000 * elapsed / args.n:.1f} ms/call), target < 60 s"
    )
    print(f"identical for the same seed: {first == second}")
    print(
        json.dumps(
            {
                "turns_per_call": round(stats["turns_per_call"], 2),
                "conversion_by_skill": conv,
                "good_in_failed": round(stats["good_in_failed"], 3),
                "bad_in_success": round(stats["bad_in_success"], 3),
                "intents": stats["intents"],
                "outcomes": stats["outcomes"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
