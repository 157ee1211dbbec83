"""Write and read the committed outputs of a notebook: metrics JSON and tables (CSV + Markdown).

Each notebook ends with `write_metrics(profile, "NN_name", {...})`; tests and the README generator
read those files, never the notebooks' text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesman_utils.artifacts import write_whole
from salesman_utils.config import Profile, paths


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_metrics(profile: Profile, name: str, payload: dict[str, Any]) -> Path:
    """Write `results/metrics/<name>.json` with the profile name and seed added."""
    out = paths(profile).metrics / f"{name}.json"
    body = {"notebook": name, "profile": profile.name, "seed": profile.seed, **payload}
    out.write_text(json.dumps(_jsonable(body), indent=2, sort_keys=False) + "\n")
    return out


def read_metrics(profile: Profile, name: str) -> dict[str, Any]:
    path = paths(profile, create=False).metrics / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no metrics yet; run notebook {name} first")
    return json.loads(path.read_text())


def write_table(df: pd.DataFrame, profile: Profile, name: str, floatfmt: str = ".3f") -> Path:
    """Write `results/tables/<name>.csv` and `<name>.md`; returns the CSV path."""
    folder = paths(profile).tables
    csv = folder / f"{name}.csv"
    # each file replaced whole: a notebook running beside this one never reads half a table
    write_whole(csv, df.to_csv(index=False))
    write_whole(folder / f"{name}.md", df.to_markdown(index=False, floatfmt=floatfmt) + "\n")
    return csv
