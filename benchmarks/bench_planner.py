"""Speed of the strategy planner's arena: simulated calls per second, GRPO updates per second.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_planner.py [--profile tutorial] [--updates 10]

Builds notebook 02's call worlds (`planner_experiment.build_worlds`: the agent's parts, the customer's ears,
the profile's merchants) and prints, on one thread (as each worker of the experiment runs):
- simulated calls per second of random moves on the training merchants, COLD (the worlds' caches
  empty: every new merchant line is embedded) and WARM (the same calls again);
- GRPO updates per second of the Bayesian arm from the imitation start, after the training pool
  was warmed as `planner_experiment.strategy_experiment` warms it, and the simulated calls per second
  that makes (`merchants_per_update` x `rollouts` calls an update).
Needs notebook 01's corpus (it simulates one if absent). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from salesman_utils.agent import bayes  # noqa: E402
from salesman_utils.agent.parts import build_parts, load_splits  # noqa: E402
from salesman_utils.agent.planner import Planner  # noqa: E402
from salesman_utils.arena import planner_experiment as px  # noqa: E402
from salesman_utils.arena import planner_rl as rl  # noqa: E402
from salesman_utils.config import load_profile  # noqa: E402
from salesman_utils.referee.perception import load_or_fit  # noqa: E402
from salesman_utils.world.corpus import without_hidden  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="tutorial")
    ap.add_argument("--updates", type=int, default=10)
    args = ap.parse_args()
    prof = load_profile(args.profile)
    splits, note = load_splits(prof)
    parts = build_parts(prof, splits)
    perception = load_or_fit(prof)
    model = bayes.load_model(prof, {k: without_hidden(v) for k, v in splits.items()})
    torch.set_num_threads(1)
    worlds = px.build_worlds(prof, splits, parts, perception)
    train = worlds["train"]
    n = 4 * len(train.cases)
    print(f"{prof.name}: corpus {note}; {len(train.cases)} training merchants; 1 thread")
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        ev = rl.evaluate(train, rl.random_policy(0), n)
        dt = time.perf_counter() - t0
        print(
            f"random moves, {label}: {n} calls ({ev['turns']:.1f} turns each) in {dt:.1f} s = "
            f"{n / dt:.0f} calls/s"
        )
    imitation = Planner.from_classifier(parts.classifier)
    rl.evaluate(
        train,
        rl.planner_policy(imitation, generator=torch.Generator().manual_seed(1)),
        8 * len(train.cases),
        seed=1,
    )
    settings = px.settings_from(prof)
    settings.updates, settings.eval_at = args.updates, ()
    t0 = time.perf_counter()
    rl.train_planner(train, worlds["validation"], imitation, "bayes", settings, seed=0, model=model)
    dt = time.perf_counter() - t0
    calls = args.updates * settings.merchants_per_update * settings.rollouts
    print(
        f"GRPO (bayes arm, imitation start): {args.updates} updates in {dt:.1f} s = "
        f"{args.updates / dt:.2f} updates/s, {calls / dt:.0f} simulated calls/s "
        f"(includes one evaluation of {settings.n_eval_calls} validation calls)"
    )


if __name__ == "__main__":
    main()
