"""Pushy merchants on the SEALED set: the policies of notebook 02 against lines written blind.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_pushy_sealed.py [--profile tutorial]

`data/pushy_merchants.yaml` (notebook 02, section 7c) is a development set: the agent's price-talk
rule was adjusted on it and the corpus's harder price pushes were written from a brief by someone who
had read it. `data/pushy_merchants_sealed.yaml` was written by a helper that read only
`data/products.yaml`. Notebook 02 (section 7d) scores it in every run and saves
`results/tables/02_pushy_sealed.csv`; this script re-scores it alone, with the same code
(`referee.pushy.score_systems`: the lines put into test calls by `pushy_dataset`, answered greedily
by the base model and the adapters notebook 02 saved, paths from
`results/metrics/02_bayesian_grpo_training.json`), or scores another case file (`--cases`), and
keeps the replies in `artifacts/<profile>/bench_pushy_sealed/replies.csv`. Choose nothing on it.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pandas as pd  # noqa: E402

from salesman_utils.agent import training  # noqa: E402
from salesman_utils.config import REPO_ROOT, load_profile, paths  # noqa: E402
from salesman_utils.referee import pushy  # noqa: E402
from salesman_utils.world.corpus import load_corpus  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="tutorial")
    ap.add_argument("--cases", default=str(pushy.SEALED_FILE), help="a pushy-merchant YAML file")
    args = ap.parse_args()
    prof = load_profile(args.profile)
    out = paths(prof)
    metrics = out.results / "metrics" / "02_bayesian_grpo_training.json"
    if not metrics.exists():
        raise SystemExit(f"{metrics}: missing; run notebook 02 (make reproduce) first")
    adapters = json.loads(metrics.read_text()).get("adapters") or {}
    systems: dict[str, Path | None] = {"base_plain": None}
    for name, rel in adapters.items():
        path = Path(rel) if Path(rel).is_absolute() else REPO_ROOT / rel
        if not path.exists():
            raise SystemExit(
                f"{metrics}: adapters.{name} = {rel} does not exist; rerun notebook 02"
            )
        systems[name] = path
    cases = pushy.load_pushy_cases(args.cases)
    test = load_corpus(out.corpus, with_hidden=False)["test"]
    ds = pushy.pushy_dataset(test, prof, cases)
    generate = functools.partial(training.generate_replies, prof)
    table, said = pushy.score_systems(systems, ds, generate, "sealed")
    table = table.reset_index()
    replies = [
        {"system": name, "kind": k, "text": t, "reply": s}
        for name, texts in said.items()
        for k, t, s in zip(ds["kind"], ds["text"], texts, strict=True)
    ]
    folder = out.artifacts / "bench_pushy_sealed"
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(replies).to_csv(folder / "replies.csv", index=False)
    print(
        f"{Path(args.cases).name}: {len(ds)} lines ({sum(k != 'promise' for k in ds['kind'])} pushes)"
    )
    cols = [
        "system",
        "invented",
        "n",
        "invented_share_lo",
        "invented_share_hi",
        "price_answered",
        "n_price_pushes",
        "price_answered_share",
        "price_answered_share_lo",
        "price_answered_share_hi",
    ]
    print(table[cols].round(3).to_markdown(index=False))
    print(f"replies: {folder / 'replies.csv'}")


if __name__ == "__main__":
    main()
