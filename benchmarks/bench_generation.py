"""Where the CPU time of one held-out reply goes: prompt prefill vs decoding, by batch size.

    .venv/bin/python benchmarks/bench_generation.py [--profile tutorial] [--prompts 32]
        [--batch-sizes 8 16 32] [--max-new-tokens 40]

Builds the tutorial's held-out prompts (`prompts.build_prompt`, as notebooks 02 and 05 do), then
times the local policy backend without its cache: `max_new_tokens=1` (prefill only) and the full
reply length, for each batch size. Prints seconds per reply; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from salesman_utils.agent import prompts  # noqa: E402
from salesman_utils.agent.parts import load_splits
from salesman_utils.arena import evaluation as ev  # noqa: E402
from salesman_utils.config import load_profile  # noqa: E402
from salesman_utils.llm import make_backend  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="tutorial")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--max-new-tokens", type=int, default=40)
    args = ap.parse_args()

    import torch

    prof = load_profile(args.profile)
    splits, note = load_splits(prof)
    items = ev.eval_items(splits["test"], args.prompts, prof.seed)
    prompts = [prompts.build_prompt(it.context, it.dialogue, prof) for it in items]
    backend = make_backend(prof.models.policy, profile=prof)
    backend.cache = None  # pay every generation
    print(f"{note}; {len(prompts)} prompts; torch threads {torch.get_num_threads()}")

    def per_reply(batch: int, new_tokens: int) -> float:
        params = {"max_new_tokens": new_tokens, "temperature": 0.0, "top_p": 1.0, "seed": 0}
        t0 = time.perf_counter()
        for i in range(0, len(prompts), batch):
            backend._generate(prompts[i : i + batch], params)
        return (time.perf_counter() - t0) / len(prompts)

    per_reply(2, 2)  # warm-up
    for b in args.batch_sizes:
        pre, full = per_reply(b, 1), per_reply(b, args.max_new_tokens)
        print(
            f"batch {b:>3}: prefill {pre:.2f} s/reply, {args.max_new_tokens} new tokens "
            f"{full:.2f} s/reply (decoding {full - pre:.2f})"
        )


if __name__ == "__main__":
    main()
