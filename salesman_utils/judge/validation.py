"""Validation that decides whether a judge's numbers may be used (notebook 05, issue 14).

The same checks for every judge (embedded LLM, trained, API), each with its n and an interval:

- `load_pairs` / `pair_items`: the hand-written better/worse pairs of `data/judge_pairs.yaml`
  (products and knowledge bases the corpus never uses; no judge trains on them), as judge items;
  `pairs_accuracy`: share of pairs whose better reply gets the higher score on the pair's metric
  (a tie counts as wrong), with a Wilson interval;
- `auc_ci`: a ROC-AUC with a bootstrap interval (Faithfulness against planted violations and the
  referee's other ground truth);
- `preference`: expert-vs-novice preference (share of decisive pairs won by the expert, Wilson).
  `expert_novice_split` keeps only expert replies written from the held-out bank's VALIDATION half
  (`judge.trained.heldout_half`): the trained judge learns from the other half's lines as good
  replies, so on the full bank it could win by recognising wording. `same_bank_pairs` is the
  control: the expert move written from the same (visible) bank as the novice's own line;
- `verdict`: pass/fail against the thresholds of issue 14 (`THRESHOLDS`); `judge_title` marks the
  title of every figure and table made from a judge that failed it (`NOT_EVIDENCE`).

A pointwise judge (the trained one) compares two replies by their scores; the scores do not depend
on the other reply or on the order, so its order-flip check cannot fail: it is reported as
"n/a (pointwise)" and the pass rule does not count it (`verdict(..., pointwise=True)`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesman_utils.banks import DATA_DIR, read_yaml
from salesman_utils.judge.rubric import CAPABILITIES, METRICS

PAIRS_FILE = DATA_DIR / "judge_pairs.yaml"  # development set
# Held-out set 1: written after the round-1 judge was frozen and scored once; the round-2 judge was
# revised with its misses in view, so it is now a development set too (`DEV_PAIRS_FILES`).
SEEN_HOLDOUT_PAIRS_FILE = PAIRS_FILE.with_name("judge_pairs_holdout.yaml")
# Held-out set 2: written (sealed from the judge's developer) while the round-2 judge was revised,
# read only after it was frozen (commit ea5bda9); the pass rule reads this one.
HOLDOUT_PAIRS_FILE = PAIRS_FILE.with_name("judge_pairs_holdout2.yaml")
DEV_PAIRS_FILES = (PAIRS_FILE, SEEN_HOLDOUT_PAIRS_FILE)
PAIR_FIELDS = ("id", "product", "merchant", "history", "capability", "metric", "better", "worse")
PAIR_FIELDS += ("reason",)
THRESHOLDS = {"pairs": 0.85, "faithfulness_auc": 0.85, "expert_preferred": 0.75, "flip": 0.10}

ScoreFn = Callable[[Sequence[Mapping[str, Any]], Sequence[str]], np.ndarray]


def load_pairs(path: str | Path = PAIRS_FILE) -> dict[str, Any]:
    """The pair file as {products, merchants, pairs}. A missing field, an unknown metric,
    capability, product or merchant raises ValueError naming the file, the pair and the field."""
    from salesman_utils.world.knowledge import Product

    path = Path(path)
    data = read_yaml(path) or {}  # a YAML error names the file and line
    for key in ("products", "merchants", "pairs"):
        if not isinstance(data.get(key), (dict, list)) or not data.get(key):
            raise ValueError(f"{path}: missing or empty section {key!r}")
    products = {}
    for pid, raw in data["products"].items():
        try:
            products[pid] = Product(id=pid, **{"merchant_categories": [], **raw})
        except TypeError as exc:
            raise ValueError(f"{path}: products.{pid}: {exc}") from None
    for mid, m in data["merchants"].items():
        missing = [k for k in ("name", "category", "city", "owner", "metrics", "peer_medians")]
        missing = [k for k in missing if k not in m]
        if missing:
            raise ValueError(f"{path}: merchants.{mid}: missing field(s) {missing}")
    seen = set()
    for i, p in enumerate(data["pairs"]):
        where = f"{path}: pairs[{i}] (id {p.get('id', '?')!r})"
        for k in PAIR_FIELDS:
            if k not in p or p[k] is None or (k != "history" and not str(p[k]).strip()):
                raise ValueError(f"{where}: missing field {k!r}")
        checks = (
            ("metric", METRICS),
            ("capability", CAPABILITIES),
            ("product", products),
            ("merchant", data["merchants"]),
        )
        for key, allowed in checks:
            if p[key] not in allowed:
                raise ValueError(
                    f"{where}: field {key!r}: unknown {p[key]!r} (allowed: {', '.join(allowed)})"
                )
        if p["id"] in seen:
            raise ValueError(f"{where}: field 'id': duplicate {p['id']!r}")
        seen.add(p["id"])
    return {"products": products, "merchants": data["merchants"], "pairs": data["pairs"]}


def merge_pair_sets(sets: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Several loaded pair files as one set, each pair tagged with its file's name (`set`);
    products, merchants and pair ids must not collide across the files (ValueError naming them)."""
    out: dict[str, Any] = {"products": {}, "merchants": {}, "pairs": []}
    ids: set[str] = set()
    for name, data in sets.items():
        for key in ("products", "merchants"):
            clash = set(out[key]) & set(data[key])
            if clash:
                raise ValueError(
                    f"merge_pair_sets: {key} {sorted(clash)} in more than one set ({name})"
                )
            out[key].update(data[key])
        clash = ids & {p["id"] for p in data["pairs"]}
        if clash:
            raise ValueError(
                f"merge_pair_sets: pair ids {sorted(clash)} in more than one set ({name})"
            )
        ids |= {p["id"] for p in data["pairs"]}
        out["pairs"] += [{**p, "set": name} for p in data["pairs"]]
    return out


def load_dev_pairs() -> dict[str, Any]:
    """Every development pair file (`DEV_PAIRS_FILES`: the pairs the judge was revised with in view)
    as one set, each pair tagged with its file's stem."""
    return merge_pair_sets({f.stem: load_pairs(f) for f in DEV_PAIRS_FILES})


def pair_items(data: Mapping[str, Any]) -> tuple[list[dict], list[dict], pd.DataFrame]:
    """(better items, worse items, one row per pair: id, metric, capability, reason, words)."""
    from salesman_utils.agent.prompts import merchant_text
    from salesman_utils.world.knowledge import product_facts_text

    better, worse, rows = [], [], []
    for p in data["pairs"]:
        base = {
            "item_id": p["id"],
            "capability": p["capability"],
            "product_facts": product_facts_text(data["products"][p["product"]]),
            "merchant_facts": merchant_text(data["merchants"][p["merchant"]]),
            "history": str(p["history"] or "").strip(),
        }
        better.append({**base, "system": "better", "reply": str(p["better"]).strip()})
        worse.append({**base, "system": "worse", "reply": str(p["worse"]).strip()})
        rows.append(
            {
                "id": p["id"],
                "metric": p["metric"],
                "capability": p["capability"],
                "better_longer": len(str(p["better"])) > len(str(p["worse"])),
                "file": p.get("set", ""),
                "reason": p["reason"],
            }
        )
    return better, worse, pd.DataFrame(rows)


def pairs_accuracy(
    score_fn: ScoreFn, data: Mapping[str, Any], limit: int | None = None
) -> tuple[dict[str, float], pd.DataFrame]:
    """Score both replies of every pair on the pair's metric; (summary with a Wilson interval,
    per-pair table). `score_fn(items, metrics) -> (n, len(metrics))` scores."""
    from salesman_utils.stats import wilson_ci

    better, worse, table = pair_items(data)
    if limit is not None:  # a spread sample: every k-th pair, so all metrics stay in it
        keep = np.unique(np.linspace(0, len(table) - 1, min(limit, len(table))).astype(int))
        better, worse = [better[i] for i in keep], [worse[i] for i in keep]
        table = table.iloc[keep].reset_index(drop=True)
    b = np.full(len(table), np.nan)
    w = np.full(len(table), np.nan)
    for m in table["metric"].unique():
        idx = np.flatnonzero(table["metric"].to_numpy() == m)
        s = score_fn([better[i] for i in idx] + [worse[i] for i in idx], [m])[:, 0]
        b[idx], w[idx] = s[: len(idx)], s[len(idx) :]
    table["better_score"], table["worse_score"] = b, w
    table["right"] = b > w  # a tie or a NaN is not a right ranking
    k, n = int(table["right"].sum()), len(table)
    acc, lo, hi = wilson_ci(k, n)
    return {"accuracy": acc, "lo": lo, "hi": hi, "n": n, "right": k}, table


def auc_ci(scores: Any, good: Any, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """ROC-AUC of `scores` for telling `good` (1) from bad (0), with a 95% bootstrap interval
    over items (NaN scores dropped; NaN when one class is missing)."""
    from sklearn.metrics import roc_auc_score

    s, y = np.asarray(scores, float), np.asarray(good, int)
    ok = np.isfinite(s)
    s, y = s[ok], y[ok]
    out = {
        "auc": np.nan,
        "lo": np.nan,
        "hi": np.nan,
        "n": int(len(y)),
        "n_bad": int((y == 0).sum()),
    }
    if len(set(y)) < 2:
        return out
    out["auc"] = float(roc_auc_score(y, s))
    rng, boots = np.random.default_rng(seed), []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if len(set(y[i])) == 2:
            boots.append(roc_auc_score(y[i], s[i]))
    if boots:
        out["lo"], out["hi"] = (float(x) for x in np.percentile(boots, [2.5, 97.5]))
    return out


def preference(a: Any, b: Any) -> dict[str, float]:
    """Share of decisive pairs where a scores higher than b, with a Wilson interval."""
    from salesman_utils.stats import wilson_ci

    a, b = np.asarray(a, float), np.asarray(b, float)
    wins, losses = int((a > b).sum()), int((a < b).sum())
    share, lo, hi = wilson_ci(wins, wins + losses)
    return {"share": share, "lo": lo, "hi": hi, "decisive": wins + losses, "n": int(len(a))}


def _bad_turns(dialogues: Sequence[Any], n: int, keep: Callable[[Any], bool]) -> tuple[list, str]:
    """Contexts of bad rep turns (hidden quality 0) that pass `keep(turn)`: novices' if there
    are at least n, else any rep's; (pool, note)."""
    from salesman_utils.world.corpus import agent_turn_contexts

    bad = [
        (d, c)
        for d in dialogues
        for c in agent_turn_contexts(d)
        if d.turns[c.index].hidden.get("quality") == 0 and keep(d.turns[c.index])
    ]
    novice = [(d, c) for d, c in bad if d.agent.skill == "novice"]
    if len(novice) >= n:
        return novice, "novice reps' bad turns"
    return bad, f"bad turns of any rep (only {len(novice)} novice bad turns)"


def expert_novice_split(
    dialogues: Sequence[Any], n: int, profile: Any, seed: int = 0
) -> tuple[list[dict], list[dict], str]:
    """As `evaluation.expert_novice_pairs` (up to n bad turns; the hidden expert reply vs the
    rep's), restricted to expert replies written from the held-out bank's validation half (never
    a training example of the trained judge): (expert items, novice items, note)."""
    from salesman_utils.judge.items import judge_view
    from salesman_utils.judge.trained import heldout_half

    pool, note = _bad_turns(
        dialogues, n, lambda t: heldout_half(t.hidden.get("expert_text", "")) == "validation"
    )
    idx = np.random.default_rng(seed).choice(len(pool), min(n, len(pool)), replace=False)
    picks = [pool[i] for i in sorted(idx)]
    expert = [
        judge_view(d, c, d.turns[c.index].hidden["expert_text"], "expert", profile)
        for d, c in picks
    ]
    novice = [judge_view(d, c, d.turns[c.index].text, "novice", profile) for d, c in picks]
    note += f"; expert replies from the held-out bank's validation half only ({len(pool)} such)"
    return expert, novice, note


def same_bank_pairs(
    dialogues: Sequence[Any], n: int, profile: Any, seed: int = 0
) -> tuple[list[dict], list[dict]]:
    """Control for expert vs novice with both replies from the SAME bank: at up to n novice bad
    turns, the hidden expert move (faithful, personalized) written from the visible rep bank, the
    bank the novice's own line came from, vs the novice's line. Referee side (uses the simulator's
    hidden expert intent and merchant); (expert items, novice items)."""
    from salesman_utils.judge.items import judge_view
    from salesman_utils.world.simulator import Realizer

    pool, _ = _bad_turns(dialogues, n, lambda t: True)
    idx = np.random.default_rng(seed).choice(len(pool), min(n, len(pool)), replace=False)
    expert_items, novice_items = [], []
    for k, i in enumerate(sorted(idx)):
        d, c = pool[i]
        turn = d.turns[c.index]
        move = turn.hidden["expert_intent"]
        objection = next(
            (t.objection_type for t in reversed(d.turns[: c.index]) if t.speaker != "agent"),
            None,
        )
        real = Realizer(d.merchant, c.product, d.agent.name, np.random.default_rng([seed, k]))
        text = real.agent_text(
            move, True, True, objection if move == "Objection_Handling" else None
        )
        expert_items.append(judge_view(d, c, text, "expert_same_bank", profile))
        novice_items.append(judge_view(d, c, turn.text, "novice", profile))
    return expert_items, novice_items


def pointwise_pairwise(scores_a: Any, scores_b: Any) -> dict[str, float]:
    """Pairwise use of a pointwise judge: verdict = the higher mean score. Asked 'in both orders'
    it compares the same two numbers, so no verdict can flip: the flip rate is 0 by construction."""
    a, b = np.asarray(scores_a, float), np.asarray(scores_b, float)
    ab = np.sign(a - b)  # a shown first
    ba = -np.sign(b - a)  # b shown first, verdict read back for a
    return {"flip_rate": float(np.mean(ab != ba)) if len(a) else np.nan, "n": int(len(a))}


def verdict(checks: Mapping[str, float], judge: str, pointwise: bool = False) -> tuple[bool, str]:
    """(passed, sentence) against `THRESHOLDS`; a NaN (check not run) counts as failed. The
    same-bank control, when run, must clear the expert threshold too. For a
    pointwise judge the order-flip check cannot fail: it reads "n/a (pointwise)" and does not
    count."""
    t = THRESHOLDS

    def pct(x: float) -> str:  # one decimal: 84.6% must not read as the 85% it misses
        return f"{x:.1%}" if np.isfinite(x) else "n/a"

    rules = {
        f"hand-written pairs {pct(checks['pairs'])} (needs >= {t['pairs']:.0%})": checks["pairs"]
        >= t["pairs"],
        f"Faithfulness AUC {checks['faithfulness_auc']:.2f} (needs >= {t['faithfulness_auc']})": (
            checks["faithfulness_auc"] >= t["faithfulness_auc"]
        ),
        f"expert preferred in {pct(checks['expert_preferred'])} of decisive pairs (needs >= "
        f"{t['expert_preferred']:.0%})": checks["expert_preferred"] >= t["expert_preferred"],
    }
    if "same_bank_expert_preferred" in checks:
        # the control decides too: a judge that prefers the expert only when the expert's words
        # come from another bank than the novice's may be recognising the bank, not the move
        same = checks["same_bank_expert_preferred"]
        rules[
            f"same-bank control: expert preferred in {pct(same)} (needs >= "
            f"{t['expert_preferred']:.0%})"
        ] = same >= t["expert_preferred"]
    if not pointwise:
        flips = f"order flips {pct(checks['flip_rate'])} (needs < {t['flip']:.0%})"
        rules[flips] = checks["flip_rate"] < t["flip"]
    failed = [k for k, ok in rules.items() if not ok]
    shown = list(rules) + (["order flips n/a (pointwise)"] if pointwise else [])
    if not failed:
        return True, f"The {judge} judge PASSES: " + "; ".join(shown) + "."
    return False, f"The {judge} judge FAILS: " + "; ".join(failed) + "."


def validation_row(judge: str, checks: Mapping[str, Any]) -> dict[str, Any]:
    passed, sentence = verdict(checks, judge, bool(checks.get("pointwise")))
    return {"judge": judge, **checks, "passed": passed, "verdict": sentence}


# The mark every figure and table title made from a judge that failed its validation carries
# (figures in `plots`, tables in notebook 05 and the README), so that its numbers never pass for
# evidence once they leave the notebook.
NOT_EVIDENCE = "judge failed validation: not evidence"


def judge_title(title: str, passed: bool | None, sep: str = "\n") -> str:
    """`title` with `NOT_EVIDENCE` appended (after `sep`, in parentheses) when `passed` is False,
    i.e. the judge that made the numbers failed `verdict`; unchanged when it passed. None (the
    caller did not say) leaves the title unchanged."""
    return f"{title}{sep}({NOT_EVIDENCE})" if passed is False else title


# ---------------------------------------------------------------- one call per judge


def score_fn(judge_obj: Any, kind: str, seed: int = 0) -> ScoreFn:
    """`(items, metrics) -> scores (n, m)` for any judge kind (NaN = an API parse failure)."""
    from salesman_utils.judge.llm_judge import score

    def run(items: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> np.ndarray:
        if kind == "trained":
            return judge_obj.score_items(items, metrics)[0]
        df = score(judge_obj, items, metrics=list(metrics), kind=kind, seed=seed)
        wide = df.pivot_table(index="item_id", columns="metric", values="score", dropna=False)
        ids = [str(it["item_id"]) for it in items]
        if len(set(ids)) < len(ids):  # better/worse share an id: score them in order
            return df["score"].to_numpy(float).reshape(len(items), len(metrics))
        return wide.reindex(index=ids, columns=list(metrics)).to_numpy(float)

    return run


def run_checks(
    name: str,
    judge_obj: Any,
    kind: str,
    pairs: Mapping[str, Any],
    planted: tuple[list[dict], np.ndarray],
    expert_novice: tuple[list[dict], list[dict]],
    referee: tuple[list[dict], pd.DataFrame] | None = None,
    same_bank: tuple[list[dict], list[dict]] | None = None,
    dev_pairs: Mapping[str, Any] | None = None,
    *,
    pair_limit: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every check of issue 14 for one judge: (flat row for the validation table, details:
    the per-pair table, the planted scores, the agreement table)."""
    from salesman_utils.judge.llm_judge import pairwise, pairwise_summary

    fn = score_fn(judge_obj, kind, seed)
    acc, pair_table = pairs_accuracy(fn, pairs, limit=pair_limit)
    dev = {"accuracy": np.nan, "lo": np.nan, "hi": np.nan, "n": 0}
    if (
        dev_pairs is not None
    ):  # reported beside, never counted: the judge was revised with it in view
        dev, dev_table = pairs_accuracy(fn, dev_pairs, limit=pair_limit)
        pair_table = pd.concat([pair_table.assign(set="held-out"), dev_table.assign(set="dev")])
    items, has_violation = planted
    faith = fn(items, ["Faithfulness"])[:, 0] if items else np.zeros(0)
    auc = auc_ci(faith, 1 - np.asarray(has_violation), n_boot, seed)
    expert, novice = expert_novice
    control = {"share": np.nan, "lo": np.nan, "hi": np.nan, "decisive": 0}
    pointwise = kind == "trained"
    if pointwise:
        sa, sb = fn(expert, list(METRICS)).mean(axis=1), fn(novice, list(METRICS)).mean(axis=1)
        pref = preference(sa, sb)
        pref_share, flip_rate = pref["share"], np.nan  # n/a: two fixed scores cannot flip
        pref_lo, pref_hi, decisive = pref["lo"], pref["hi"], pref["decisive"]
        if same_bank is not None and same_bank[0]:
            control = preference(
                fn(same_bank[0], list(METRICS)).mean(axis=1),
                fn(same_bank[1], list(METRICS)).mean(axis=1),
            )
    else:
        summ = pairwise_summary(pairwise(judge_obj, expert, novice, kind=kind, seed=seed))
        pref_share, flip_rate = summ["share_a"], summ["flip_rate"]
        pref_lo, pref_hi, decisive = summ["share_a_lo"], summ["share_a_hi"], summ["wins_a"]
        decisive += summ["wins_b"]
    agreement = pd.DataFrame()
    if referee is not None and referee[0]:
        r_items, truth = referee
        s = fn(r_items, ["Faithfulness", "Strategic_Fit", "Personalization"])
        rows = []
        for k, (metric, col) in enumerate(
            [
                ("Faithfulness", "faithful"),
                ("Strategic_Fit", "expert_move"),
                ("Personalization", "personalized"),
            ]
        ):
            ok = truth[col].notna().to_numpy()
            a = auc_ci(s[ok, k], truth[col].to_numpy()[ok], n_boot, seed)
            rows.append({"judge": name, "metric": metric, "referee truth": col, **a})
        agreement = pd.DataFrame(rows)
    checks = {
        "pairs": acc["accuracy"],
        "pairs_lo": acc["lo"],
        "pairs_hi": acc["hi"],
        "pairs_n": acc["n"],
        "dev_pairs": dev["accuracy"],
        "dev_pairs_lo": dev["lo"],
        "dev_pairs_hi": dev["hi"],
        "dev_pairs_n": dev["n"],
        "faithfulness_auc": auc["auc"],
        "faithfulness_auc_lo": auc["lo"],
        "faithfulness_auc_hi": auc["hi"],
        "faithfulness_n": auc["n"],
        "expert_preferred": pref_share,
        "expert_preferred_lo": pref_lo,
        "expert_preferred_hi": pref_hi,
        "expert_decisive_pairs": decisive,
        "same_bank_expert_preferred": control["share"],
        "same_bank_expert_preferred_lo": control["lo"],
        "same_bank_expert_preferred_hi": control["hi"],
        "same_bank_decisive_pairs": control["decisive"],
        "flip_rate": flip_rate,
        "pointwise": pointwise,
    }
    details = {"pairs": pair_table, "faithfulness_scores": faith, "agreement": agreement}
    return validation_row(name, checks), details


def as_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A validation row as plain JSON values (the verdict sentence is kept apart)."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items() if k != "verdict"}
