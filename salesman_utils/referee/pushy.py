"""Pushy merchants: does a policy stay faithful, and answer with the real price, under pressure?

`data/pushy_merchants.yaml` holds the developers' own pushy lines ("give me 80% off and I sign now"),
each with the product its call is about. `pushy_dataset` puts each line into a call (the rep's
opening, then the merchant's push) for a merchant from a corpus split, as the policy's own prompt
(`agent.prompts.build_prompt`); `pushy_report` scores the replies: replies with a number absent from the
knowledge base and the dashboard, and the share of price/discount pushes answered with the real
price or promotion (`answers.answers_with_kb_price`), with Wilson intervals. `score_systems` does
both for every policy, the same way for the development set and for the sealed one.

Two sets of lines: `PUSHY_FILE` is a DEVELOPMENT set (the agent's price-talk rule was adjusted on
it, and the corpus's harder pushes were written from a brief by someone who had read it);
`SEALED_FILE` was written blind (its writer read only `data/products.yaml`): choose nothing on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from salesman_utils.banks import (
    DATA_DIR,
    DataBankError,
    read_yaml,
    require,
    require_list,
    show_path,
)
from salesman_utils.referee.answers import answers_with_kb_price, invented_numbers
from salesman_utils.world.knowledge import get_product, load_products

PUSHY_FILE = DATA_DIR / "pushy_merchants.yaml"  # development set
SEALED_FILE = DATA_DIR / "pushy_merchants_sealed.yaml"  # written blind: scored, never tuned on
KINDS = ("price", "discount", "promise")


def load_pushy_cases(path: str | Path = PUSHY_FILE) -> list[dict[str, str]]:
    """The pushy lines: dicts with `product`, `kind` (one of `KINDS`) and `text`."""
    name = show_path(path)
    cases = require_list(require(read_yaml(path), ["cases"], name)["cases"], f"{name}: cases")
    products = load_products()
    for i, c in enumerate(cases):
        where = f"{name}: cases[{i}]"
        if not isinstance(c, dict) or c.get("kind") not in KINDS or not c.get("text"):
            raise DataBankError(f"{where}: needs a kind in {KINDS} and a text")
        if c.get("product") not in products:
            raise DataBankError(f"{where}: product {c.get('product')!r}: not in products.yaml")
    return cases


def pushy_dataset(dialogues: Sequence[Any], profile: Any, cases: Sequence[dict] | None = None):
    """One prompt per pushy case: the call so far is the rep's opening (the first agent turn of a
    corpus call about the same product, else a plain greeting) and the merchant's push; merchant
    and rep come from that call. Columns: prompt, product_id, merchant (visible, JSON), kind, text."""
    from datasets import Dataset

    from salesman_utils.agent.prompts import build_prompt
    from salesman_utils.world.corpus import AgentTurnContext, visible_merchant_facts, visible_turn
    from salesman_utils.world.simulator import Turn

    cases = list(cases or load_pushy_cases())
    by_product: dict[str, list[Any]] = {}
    for d in dialogues:
        by_product.setdefault(d.product_id, []).append(d)
    rows = []
    for i, c in enumerate(cases):
        calls = by_product.get(c["product"]) or list(dialogues)
        d = calls[i % len(calls)]
        opening = visible_turn(d.turns[0]) if d.turns and d.turns[0].speaker == "agent" else None
        opening = opening or Turn("agent", f"Hi, this is {d.agent.name} from Neighborly.", None)
        push = Turn("customer", c["text"], None, "objection")
        product = get_product(c["product"])
        ctx = AgentTurnContext(2, [opening, push], "objection", product)
        rows.append(
            {
                "prompt": build_prompt(ctx, d, profile),
                "product_id": c["product"],
                "merchant": json.dumps(visible_merchant_facts(d.merchant)),
                "kind": c["kind"],
                "text": c["text"],
            }
        )
    return Dataset.from_list(rows)


def pushy_report(replies: Sequence[str], dataset: Any) -> dict[str, Any]:
    """Scores of replies to `pushy_dataset`: `n`; `invented` (replies with a number absent from
    the knowledge base and the dashboard) with its share and Wilson interval (`invented_share`,
    `_lo`, `_hi`: one column each in a table); `price_answered` (price and discount pushes
    answered with a real plan price or the promotion) out of `n_price_pushes`, with its share and
    interval (`price_answered_share`, `_lo`, `_hi`; NaN without pushes)."""
    from salesman_utils.stats import wilson_ci

    if len(replies) != len(dataset):
        raise ValueError(f"pushy_report: {len(replies)} replies, {len(dataset)} cases")
    invented = answered = pushes = 0
    for reply, pid, merchant, kind in zip(
        replies, dataset["product_id"], dataset["merchant"], dataset["kind"], strict=True
    ):
        product = get_product(pid)
        invented += bool(invented_numbers(reply, product, merchant))
        if kind in ("price", "discount"):
            pushes += 1
            answered += answers_with_kb_price(reply, product)
    n = len(replies)
    inv, ans = wilson_ci(invented, n), wilson_ci(answered, pushes)  # NaNs when n = 0
    return {
        "n": n,
        "invented": invented,
        "invented_share": inv[0],
        "invented_share_lo": inv[1],
        "invented_share_hi": inv[2],
        "n_price_pushes": pushes,
        "price_answered": answered,
        "price_answered_share": ans[0],
        "price_answered_share_lo": ans[1],
        "price_answered_share_hi": ans[2],
    }


def score_systems(
    systems: Mapping[str, Any],
    dataset: Any,
    generate: Callable[..., Sequence[str]],
    label: str = "pushy",
) -> tuple[Any, dict[str, list[str]]]:
    """Every policy's replies to `pushy_dataset` and their `pushy_report`. `systems` maps a name to
    what `generate(dataset, adapter, desc=...)` takes (an adapter path, None for the base model),
    e.g. ``functools.partial(training.generate_replies, profile)``. Returns the table (one row per
    system, indexed by name; counts stay integers) and the replies per system."""
    import pandas as pd

    replies = {
        name: list(generate(dataset, adapter, desc=f"{label} {name}"))
        for name, adapter in systems.items()
    }
    reports = {name: pushy_report(said, dataset) for name, said in replies.items()}
    table = pd.DataFrame.from_dict(reports, orient="index")
    table.index.name = "system"
    return table, replies
