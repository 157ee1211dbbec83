"""Price-answer SFT rows (issue 15) measured on the VALIDATION split's price pushes.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_price_sft.py --runs 0/0 6/0 24/0.5 40/0 40/0.5

Each run `STEPS/SHARE` trains the profile's SFT variant with `training.sft.max_steps = STEPS` and
`training.sft.price_share = SHARE` (notebook 02's `prepare_datasets`, so the same rows) into a
scratch folder (`--out`, kept: a rerun reuses an adapter of the same config; the profile's own
setting uses notebook 02's own `sft` folder: its adapter when the config hash matches, else trained
there as notebook 02 would), then greedily answers
every validation-split context in which the merchant pushed on the price (DOGA's own
`pricing.asks_about_price`; 48 in the tutorial corpus) and prints, read by the REFEREE here only:
replies that state a real plan price or the promotion (`answers_with_kb_price`), among them the
contexts where the corpus rep did (`pricing.states_price` of the rep's turn), replies with a number
absent from the knowledge base and dashboard (`invented_numbers`), and R_format problems; Wilson
95% intervals. `--runs 0/0` is the base model. The tutorial's `price_share` and `max_steps` were
chosen from these validation figures; the pushy-merchant set (notebook 02) was not read.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from salesman_utils.agent import training  # noqa: E402
from salesman_utils.agent.datasets import _visible_row
from salesman_utils.agent.pricing import price_push_contexts, states_price  # noqa: E402
from salesman_utils.agent.rewards import format_problems  # noqa: E402
from salesman_utils.config import load_profile, paths  # noqa: E402
from salesman_utils.stats import wilson_ci  # noqa: E402
from salesman_utils.world.corpus import get_product, load_corpus  # noqa: E402


def cell(k: int, n: int) -> str:
    _, lo, hi = wilson_ci(k, n)
    return f"{k}/{n} ({k / max(1, n):.0%} [{lo:.0%}, {hi:.0%}])"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="tutorial")
    ap.add_argument(
        "--runs", nargs="+", default=["0/0", "6/0", "24/0.5", "40/0", "40/0.5"], help="STEPS/SHARE"
    )
    ap.add_argument("--out", default="artifacts/bench_price_sft")
    args = ap.parse_args()
    from salesman_utils.referee.answers import answers_with_kb_price, invented_numbers

    base = load_profile(args.profile)
    out = Path(args.out) / base.name
    own = training.variant_dir  # the profile's own setting reuses notebook 02's adapter (same hash)

    def scratch_dir(p, v):
        s, b = p.training.sft, base.training.sft
        if (s.max_steps, s.price_share) == (b.max_steps, b.price_share):
            return own(p, v)
        return out / f"{v}-{s.max_steps}-{s.price_share}"

    training.variant_dir = scratch_dir
    training._write_log = lambda *a, **k: None  # results/ belongs to the notebooks
    from datasets import Dataset

    validation = load_corpus(paths(base).corpus, with_hidden=False)["validation"]
    val = Dataset.from_list(
        [_visible_row(ctx, d, base) for d, ctx in price_push_contexts(validation)]
    )
    rep_answered = [
        states_price(r, get_product(p))
        for r, p in zip(val["reference"], val["product_id"], strict=True)
    ]
    print(
        f"{len(val)} validation price pushes; the corpus rep answered {sum(rep_answered)} with a price"
    )
    for run in args.runs:
        steps, share = run.split("/")
        prof = copy.deepcopy(base)
        prof.training.sft.max_steps, prof.training.sft.price_share = int(steps), float(share)
        t0 = time.time()
        adapter = None
        if int(steps):
            data = training.prepare_datasets(prof)
            adapter, _ = training.train_sft(prof, data["sft"])
        t_train = time.time() - t0
        replies = training.generate_replies(prof, val, adapter, desc=f"sft {run}")
        products = [get_product(p) for p in val["product_id"]]
        ans = [answers_with_kb_price(r, p) for r, p in zip(replies, products, strict=True)]
        inv = [
            bool(invented_numbers(r, p, m))
            for r, p, m in zip(replies, products, val["merchant"], strict=True)
        ]
        bad = [bool(format_problems(r, q)) for r, q in zip(replies, val["prompt"], strict=True)]
        n, n_rep = len(replies), sum(rep_answered)
        both = sum(a and e for a, e in zip(ans, rep_answered, strict=True))
        print(
            json.dumps(
                {
                    "run": run,
                    "train_s": round(t_train, 1),
                    "answered": cell(sum(ans), n),
                    "answered_where_rep_did": cell(both, n_rep),
                    "invented": cell(sum(inv), n),
                    "format_problems": cell(sum(bad), n),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
