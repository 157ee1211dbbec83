"""Benchmark one GRPO variant: seconds per optimizer step and peak memory (prints, not a test).

Runs `training.train_grpo` with a profile's GRPO settings (tutorial by default) on prompts built
from a small simulated corpus, in a throwaway artifacts folder, for a few steps:

    .venv/bin/python benchmarks/bench_grpo.py --profile tutorial --steps 4 [--threads 2]

Reported per optimizer step (steps that generate and steps that reuse a generated batch, when
`num_iterations` > 1): wall seconds and CPU seconds of the process. On a machine shared with other
jobs the wall time inflates; the CPU time does not, and on an idle 2-core machine the wall time is
about CPU time / (threads x ~0.85). Also peak resident memory (model, embedder, optimizer,
activations) and, on CUDA, peak GPU memory.

Beside it, a bare TRL `GRPOTrainer` with the same `GRPOConfig`, LoRA, model and prompts, but one
trivial reward (reply length) instead of ours, times the same number of steps: the ratio of the two
per-step times is what our rewards (embeddings, fact check, format) and callbacks add over TRL.
`--skip-bare` leaves it out.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class _StepClock:
    """Trainer callback: wall and process CPU seconds of every optimizer step."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Clock(TrainerCallback):
            steps: dict[int, tuple[float, float]] = {}

            def on_step_begin(self, args, state, control, **kwargs):
                self._t = (time.time(), time.process_time())

            def on_step_end(self, args, state, control, **kwargs):
                w, c = self._t
                self.steps[state.global_step] = (time.time() - w, time.process_time() - c)

        return Clock()


def _bare_trl_step_times(prof, data, tmp: str) -> list[tuple[float, float]]:
    """Per generating step (wall, CPU) of a bare TRL `GRPOTrainer` with our `GRPOConfig` and
    LoRA on the same prompts, with one trivial reward (completion length) and no callbacks but
    the clock."""
    from trl import GRPOTrainer

    from salesman_utils.agent.training import grpo_config, lora_config, policy_model_id

    def length_reward(prompts, completions, **kw):
        return [float(len(str(c))) / 100.0 for c in completions]

    clock = _StepClock()
    trainer = GRPOTrainer(
        model=policy_model_id(prof),
        reward_funcs=[length_reward],
        args=grpo_config(prof, f"{tmp}/bare", [1.0]),
        train_dataset=data.select_columns(["prompt"]),
        peft_config=lora_config(prof),
        callbacks=[clock],
    )
    trainer.train()
    logged = {h["step"] for h in trainer.state.log_history if "reward" in h}
    return [clock.steps[s] for s in sorted(logged) if s in clock.steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tutorial")
    parser.add_argument("--variant", default="grpo_bayes", choices=["grpo_sim", "grpo_bayes"])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--skip-bare", action="store_true", help="no bare TRL GRPOTrainer run")
    args = parser.parse_args()

    import numpy as np
    import torch

    from salesman_utils.agent.bayes import fit_turn_quality
    from salesman_utils.agent.datasets import build_grpo_dataset
    from salesman_utils.agent.training import train_grpo
    from salesman_utils.config import load_profile
    from salesman_utils.world.corpus import simulate_corpus, split

    if args.threads:
        torch.set_num_threads(args.threads)
    prof = load_profile(args.profile)
    g = prof.training.grpo
    g.max_steps = args.steps
    g.save_steps = args.steps + 1  # no checkpoint writes inside the timed steps
    with tempfile.TemporaryDirectory() as tmp:
        prof.paths.artifacts = prof.paths.results = tmp
        splits = split(simulate_corpus(80, seed=0), seed=0)
        model = fit_turn_quality(splits["train"])
        n_prompts = args.steps * g.batch_size // g.num_generations
        data = build_grpo_dataset(
            splits["train"], model.posterior(splits["train"]), prof, n=max(n_prompts, 8)
        )
        clock = _StepClock()
        t0 = time.time()
        _, history = train_grpo(prof, args.variant, data, callbacks=[clock])
        wall = time.time() - t0
        bare = None if args.skip_bare else _bare_trl_step_times(prof, data, tmp)
    steps = [h for h in history if "step_time" in h]
    generating = {h["step"] for h in steps if "reward" in h}
    gen = [clock.steps[s] for s in sorted(generating)]
    reuse = [clock.steps[s] for s in sorted(clock.steps) if s not in generating]
    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"profile={args.profile} variant={args.variant} steps={args.steps} "
        f"threads={torch.get_num_threads()} device={'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    print(
        f"completions/step={g.batch_size} num_generations={g.num_generations} "
        f"max_completion_length={g.max_completion_length} num_iterations={g.num_iterations}"
    )
    for label, rows in (("generating", gen), ("reusing a batch", reuse)):
        if rows:
            w, c = np.mean(rows, axis=0)
            print(f"per step ({label}, n={len(rows)}): wall {w:.1f} s, CPU {c:.1f} s")
    print(f"load average during the run: {os.getloadavg()[1]:.1f} (5 min)")
    print(
        f"wall incl. model load: {wall:.0f} s; mean completion length "
        f"{np.mean([h['completions/mean_length'] for h in steps if 'reward' in h]):.0f} tokens"
    )
    print(f"peak RSS: {rss_gib:.2f} GiB")
    if bare is not None and gen and bare:
        (ow, oc), (bw, bc) = np.mean(gen, axis=0), np.mean(bare, axis=0)
        print(
            f"bare TRL GRPOTrainer, same config, trivial reward (n={len(bare)}): wall {bw:.1f} s, "
            f"CPU {bc:.1f} s per step; ours / bare = {ow / bw:.2f} (wall), {oc / bc:.2f} (CPU)"
        )


if __name__ == "__main__":
    main()
