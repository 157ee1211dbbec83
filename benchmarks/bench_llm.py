"""Local backend on this CPU: tokens/s one prompt at a time vs batches of 8, and a cached re-run.

    .venv/bin/python benchmarks/bench_llm.py [--prompts 16] [--max-new-tokens 48]

Prints figures; asserts nothing (targets belong in the closing notes, not in flaky timed tests).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from salesman_utils.llm import make_backend  # noqa: E402

OWNERS = ["a noodle shop", "a nail salon", "a bakery", "a flower shop", "a pizzeria", "a gym"]


def prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [
            {"role": "system", "content": "You are a sales rep of a local-services platform."},
            {
                "role": "user",
                "content": f"Hello, this is the owner of {OWNERS[i % 6]} (#{i}). "
                "Why are you calling me?",
            },
        ]
        for i in range(n)
    ]


def timed(backend, batch, max_new_tokens: int) -> tuple[float, int]:
    start = time.perf_counter()
    replies = backend.chat(batch, max_new_tokens=max_new_tokens, temperature=0.0)
    wall = time.perf_counter() - start
    tokens = sum(len(backend.tokenizer.encode(r, add_special_tokens=False)) for r in replies)
    return wall, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()
    batch = prompts(args.prompts)
    one = make_backend({"kind": "local", "batch_size": 1, "cache": False})
    eight = make_backend({"kind": "local", "batch_size": 8, "cache": False})
    timed(eight, batch[:2], 4)  # warm-up (first-call overheads)

    w1, t1 = timed(one, batch, args.max_new_tokens)
    w8, t8 = timed(eight, batch, args.max_new_tokens)
    print(
        f"torch threads: {__import__('torch').get_num_threads()}, prompts: {len(batch)}, "
        f"max_new_tokens: {args.max_new_tokens}"
    )
    print(f"one at a time : {t1 / w1:7.1f} tokens/s ({t1} tokens in {w1:.1f} s)")
    print(f"batches of 8  : {t8 / w8:7.1f} tokens/s ({t8} tokens in {w8:.1f} s)")
    print(f"batching speed-up: {(t8 / w8) / (t1 / w1):.1f}x")

    with tempfile.TemporaryDirectory() as tmp:
        cached = make_backend({"kind": "local", "batch_size": 8}, cache_path=Path(tmp) / "c.db")
        first, _ = timed(cached, batch, args.max_new_tokens)
        again, _ = timed(cached, batch, args.max_new_tokens)
    print(f"first run     : {first:8.3f} s")
    print(f"cached re-run : {again:8.3f} s  ({first / again:,.0f}x faster)")


if __name__ == "__main__":
    main()
