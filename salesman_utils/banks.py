"""The hand-written data banks of `data/`: where they live, how one is read, and the checks that
name the file, the entry and the field of a bank error (`DataBankError`, one line).

`DATA_DIR` is the repository's `data/`, or the folder the environment variable `SALESMAN_DATA_DIR`
names (read once, at import): to try an edited copy of the banks without touching the committed
files, e.g. ``SALESMAN_DATA_DIR=/tmp/mydata python -m salesman_utils.agent.chat --product ...``.

- `read_yaml(path)`: the parsed file; a YAML syntax error is ``data/products.yaml: line 18,
  column 5: mapping values are not allowed here`` (no chained traceback).
- `require(node, keys, where)` / `require_list(node, where)`: a missing entry or an empty list is
  ``data/customer_templates.yaml: missing hangup (required: [...])``.
- `check_simulator_banks(banks, files, uses)`: the required entries of the five banks
  `simulator.load_banks` reads, derived from what the simulator looks up (`simulator.bank_uses()`:
  every intent's variants, every customer act and question topic, every objection type and
  decision style, every persona field).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DATA_DIR = Path(os.environ.get("SALESMAN_DATA_DIR") or REPO_DATA_DIR)


class DataBankError(ValueError):
    """A data bank cannot be read or lacks a required entry or field; the message is one line
    naming the file and the line, or the entry and the field."""


def show_path(path: str | Path) -> str:
    """`path` relative to the repository (``data/products.yaml``) when inside it, else as given."""
    p = Path(path).resolve()
    root = REPO_DATA_DIR.parent
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(path)


def read_yaml(path: str | Path) -> Any:
    """The parsed YAML file; an unreadable file or a syntax error raises `DataBankError` naming
    the file and the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataBankError(f"{show_path(path)}: cannot read it ({exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = ": ".join(
            str(x) for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x
        )
        raise DataBankError(
            f"{show_path(path)}: {where}not valid YAML: {what or type(exc).__name__}"
        ) from None


def require(node: Any, keys: Iterable[str], where: str) -> Mapping[str, Any]:
    """`node` as a mapping holding every key of `keys` (`where` names the file and the entry)."""
    keys = list(keys)
    if not isinstance(node, Mapping):
        raise DataBankError(f"{where}: expected a mapping with {keys}, got {type(node).__name__}")
    missing = [k for k in keys if k not in node]
    if missing:
        raise DataBankError(f"{where}: missing {', '.join(map(str, missing))} (required: {keys})")
    return node


def require_list(node: Any, where: str, size: int | None = None) -> list[Any]:
    """`node` as a non-empty list (of exactly `size` items when given)."""
    if not isinstance(node, list) or not node:
        raise DataBankError(f"{where}: expected a non-empty list, got {node!r:.60}")
    if size is not None and len(node) != size:
        raise DataBankError(f"{where}: expected {size} items, got {len(node)}")
    return node


def _lines(bank: Mapping[str, Any], keys: Iterable[str], where: str) -> None:
    """Every key of `keys` in `bank` is a non-empty list of lines."""
    keys = list(keys)
    require(bank, keys, where)
    for k in keys:
        require_list(bank[k], f"{where}.{k}" if ": " in where else f"{where}: {k}")


def check_simulator_banks(
    banks: Mapping[str, Any], files: Mapping[str, Path], uses: Mapping[str, Sequence[str]]
) -> None:
    """The entries the simulator looks up in each bank (`files`: bank name -> its file; `uses`:
    the simulator's names, `simulator.bank_uses()`), checked across banks (every objection type of
    the personas has customer and rep lines, every decision style its cues, ...)."""

    def at(name: str) -> str:
        return show_path(files[name])

    personas = check_personas(banks["personas"], files["personas"], uses)
    types = [str(t) for t in personas["objection_types"]]
    styles = sorted(set(personas["decision_styles"]) | set(uses["styles"]))
    variants = {  # the keys `Realizer._templates` reads per intent
        "Opening": ["brief", "warm"],
        "Needs_Discovery": ["any"],
        "Business_Analysis": ["personalized"],
        "Product_Introduction": ["personalized", "generic"],
        "Objection_Handling": [*types, "generic"],
        "Operational_Guidance": ["any"],
    }
    for name in ("agent_templates", "agent_templates_heldout"):
        bank = require(banks[name], uses["intents"], at(name))
        for intent in uses["intents"]:
            _lines(bank[intent], variants[intent], f"{at(name)}: {intent}")
    cust, where = banks["customer_templates"], at("customer_templates")
    plain = [a for a in uses["acts"] if a not in ("question", "objection")]
    require(cust, ["question", "objection", "objection_soft", "style_cues", *plain], where)
    _lines(cust, plain, where)
    _lines(cust["question"], uses["topics"], f"{where}: question")
    for group in ("objection", "objection_soft"):
        _lines(cust[group], types, f"{where}: {group}")
    _lines(cust["style_cues"], styles, f"{where}: style_cues")
    forms, where = banks["unfaithful_forms"], at("unfaithful_forms")
    require(forms, ["fake_plans", "subtle", "suspicious"], where)
    require_list(forms["fake_plans"], f"{where}: fake_plans")
    _lines(forms["subtle"], ["any"], f"{where}: subtle")
    _lines(forms["suspicious"], ["any", "gap"], f"{where}: suspicious")


def check_personas(bank: Any, path: Path, uses: Mapping[str, Sequence[str]]) -> Mapping[str, Any]:
    """The personas bank: categories (three, each with its peer medians and name parts), metric
    labels, pain points, objection types, decision styles (with their act weights), budget levels
    (three), owners, cities and the reps' names and skills (`uses`: as in `check_simulator_banks`)."""
    metrics, skills = list(uses["metrics"]), list(uses["skills"])
    where = show_path(path)
    keys = ["categories", "metrics", "pain_points", "objection_types", "decision_styles"]
    keys += ["budget_sensitivity", "owners", "cities", "agents"]
    require(bank, keys, where)
    cats = require(bank["categories"], [], f"{where}: categories")
    if len(cats) != 3:  # `sample_merchant` draws them with three fixed shares
        raise DataBankError(f"{where}: categories: expected 3 categories, got {len(cats)}")
    for name, c in cats.items():
        w = f"{where}: categories.{name}"
        require(c, ["noun", "plural", "name_first", "name_second", "peer", "extra_pains"], w)
        require(c["peer"], metrics, f"{w}.peer")
        _lines(c, ["name_first", "name_second"], w)
    labels = require(bank["metrics"], metrics, f"{where}: metrics")
    for k in metrics:
        require(labels[k], ["label"], f"{where}: metrics.{k}")
    for k, p in require(bank["pain_points"], [], f"{where}: pain_points").items():
        require(p, ["metric", "rep", "customer"], f"{where}: pain_points.{k}")
        require_list(p["customer"], f"{where}: pain_points.{k}.customer")
    require_list(bank["objection_types"], f"{where}: objection_types")
    styles = require(bank["decision_styles"], uses["styles"], f"{where}: decision_styles")
    for k, s in styles.items():  # the act weights `CustomerSimulator._draw_act` reads
        require(s, ["question", "objection", "positive", "hangup"], f"{where}: decision_styles.{k}")
    require_list(bank["budget_sensitivity"], f"{where}: budget_sensitivity", size=3)
    require_list(bank["owners"], f"{where}: owners")
    require_list(bank["cities"], f"{where}: cities")
    agents = require(bank["agents"], ["names", "skills"], f"{where}: agents")
    require_list(agents["names"], f"{where}: agents.names")
    rates = require(agents["skills"], skills, f"{where}: agents.skills")
    for s in skills:
        require(rates[s], ["share", *uses["agent_fields"]], f"{where}: agents.skills.{s}")
    return bank
