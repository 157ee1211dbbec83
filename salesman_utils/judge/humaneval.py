"""Human-evaluation kit: a blind, shuffled pairwise sheet for raters, and the analysis of it.

`export_pairwise_sheet` writes two CSV files: the sheet raters see (row, item_id, capability,
context, reply_1, reply_2, an empty ``preference`` column, an optional ``comment``) and a private
key mapping each row's positions to systems. Rows are shuffled and the side of each system is
drawn per row, both from `seed`, so that raters cannot learn which position is which system.
Raters write ``1``, ``2`` or ``tie`` in ``preference``; blank rows count as not rated.
`analyse_sheet` joins the filled sheet with the key and reports the preference for system A with a
Wilson interval, ties, and agreement with the LLM judge's pairwise verdicts (Cohen's kappa).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesman_utils.judge.llm_judge import pair_items, render_context
from salesman_utils.stats import wilson_ci

SHEET_COLUMNS = [
    "row",
    "item_id",
    "capability",
    "context",
    "reply_1",
    "reply_2",
    "preference",
    "comment",
]
KEY_COLUMNS = ["row", "item_id", "system_a", "system_b", "a_position"]
_CHOICES = {"1": "1", "2": "2", "tie": "tie", "t": "tie", "=": "tie", "0": "tie"}


def default_key_path(sheet_path: str | Path) -> Path:
    p = Path(sheet_path)
    return p.with_name(f"{p.stem}.key.csv")


def export_pairwise_sheet(
    items_a: Sequence[Mapping[str, Any]],
    items_b: Sequence[Mapping[str, Any]],
    path: str | Path,
    seed: int = 0,
    key_path: str | Path | None = None,
) -> tuple[Path, Path]:
    """Write the blind sheet to `path` and the key beside it (``<stem>.key.csv``); returns both.

    Items are paired by ``item_id`` (the same context answered by two systems), as in
    `judge.pairwise`. Keep the key file away from the raters.
    """
    pairs = pair_items(items_a, items_b)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    a_first = rng.random(len(pairs)) < 0.5
    sheet, key = [], []
    for row, idx in enumerate(order, start=1):
        a, b = pairs[idx]
        first, second = (a, b) if a_first[idx] else (b, a)
        sheet.append(
            {
                "row": row,
                "item_id": a["item_id"],
                "capability": a["capability"],
                "context": render_context(a),
                "reply_1": first["reply"],
                "reply_2": second["reply"],
                "preference": "",
                "comment": "",
            }
        )
        key.append(
            {
                "row": row,
                "item_id": a["item_id"],
                "system_a": a["system"],
                "system_b": b["system"],
                "a_position": 1 if a_first[idx] else 2,
            }
        )
    path = Path(path)
    key_path = Path(key_path) if key_path else default_key_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(sheet, columns=SHEET_COLUMNS).to_csv(path, index=False)
    pd.DataFrame(key, columns=KEY_COLUMNS).to_csv(key_path, index=False)
    return path, key_path


def read_filled_sheet(filled_csv: str | Path, key_csv: str | Path) -> pd.DataFrame:
    """Per rated row: row, item_id, system_a, system_b, human ('a' | 'b' | 'tie').

    Unrated (blank) rows are dropped; an unreadable preference raises naming the file and row.
    """
    sheet = pd.read_csv(filled_csv, dtype={"preference": str, "item_id": str})
    key = pd.read_csv(key_csv, dtype={"item_id": str})
    for name, df, cols in (
        (filled_csv, sheet, ["row", "item_id", "preference"]),
        (key_csv, key, KEY_COLUMNS),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{name}: missing columns {missing}")
    merged = sheet[["row", "item_id", "preference"]].merge(
        key, on="row", how="left", suffixes=("", "_key"), validate="one_to_one"
    )
    bad = merged[merged["item_id"] != merged["item_id_key"]]
    if len(bad):
        raise ValueError(
            f"{filled_csv}: row {int(bad['row'].iloc[0])} does not match the key {key_csv} "
            "(a sheet from another export?)"
        )
    out = []
    for _, r in merged.iterrows():
        raw = "" if pd.isna(r["preference"]) else str(r["preference"]).strip().lower()
        if not raw:
            continue
        if raw not in _CHOICES:
            raise ValueError(
                f"{filled_csv}: row {int(r['row'])}: preference {r['preference']!r} "
                "(expected 1, 2 or tie)"
            )
        choice = _CHOICES[raw]
        human = "tie" if choice == "tie" else ("a" if int(choice) == r["a_position"] else "b")
        out.append(
            {
                "row": int(r["row"]),
                "item_id": r["item_id"],
                "system_a": r["system_a"],
                "system_b": r["system_b"],
                "human": human,
            }
        )
    return pd.DataFrame(out, columns=["row", "item_id", "system_a", "system_b", "human"])


def _judge_map(judge_verdicts: Any) -> dict[str, str]:
    if isinstance(judge_verdicts, pd.DataFrame):
        return dict(
            zip(judge_verdicts["item_id"].astype(str), judge_verdicts["verdict"], strict=True)
        )
    return {str(k): v for k, v in dict(judge_verdicts).items()}


def analyse_sheet(
    filled_csv: str | Path,
    key_csv: str | Path,
    judge_verdicts: pd.DataFrame | Mapping[str, str] | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Preference for system A among decisive ratings (Wilson interval), ties, and agreement with
    the judge (`judge.pairwise` output or {item_id: 'a'|'b'|'tie'}): raw agreement and Cohen's
    kappa over the items both rated (judge 'invalid' verdicts are left out). NaN when undefined."""
    from sklearn.metrics import cohen_kappa_score

    rated = read_filled_sheet(filled_csv, key_csv)
    counts = rated["human"].value_counts()
    wins_a, wins_b, ties = (int(counts.get(x, 0)) for x in ("a", "b", "tie"))
    share, lo, hi = wilson_ci(wins_a, wins_a + wins_b, alpha=alpha)
    n_rows = len(pd.read_csv(key_csv))
    result: dict[str, Any] = {
        "system_a": rated["system_a"].iloc[0] if len(rated) else None,
        "system_b": rated["system_b"].iloc[0] if len(rated) else None,
        "n_rows": n_rows,
        "n_rated": len(rated),
        "wins_a": wins_a,
        "wins_b": wins_b,
        "ties": ties,
        "share_a": share,
        "share_a_lo": lo,
        "share_a_hi": hi,
        "tie_rate": ties / len(rated) if len(rated) else float("nan"),
        "n_judge": 0,
        "judge_agreement": float("nan"),
        "judge_kappa": float("nan"),
    }
    if judge_verdicts is not None:
        jm = _judge_map(judge_verdicts)
        both = rated.assign(judge=rated["item_id"].map(jm))
        both = both[both["judge"].isin(["a", "b", "tie"])]
        result["n_judge"] = len(both)
        if len(both):
            result["judge_agreement"] = float((both["human"] == both["judge"]).mean())
        if len(both) >= 2 and len(set(both["human"]) | set(both["judge"])) > 1:
            kappa = cohen_kappa_score(both["human"], both["judge"], labels=["a", "b", "tie"])
            result["judge_kappa"] = float(kappa)
    return result
