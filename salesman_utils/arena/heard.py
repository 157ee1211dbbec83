"""How often the customer heard the move a guarded agent planned: its model-written turns against
its fallback templates, in four readings of the saved online calls (`online.simulate_calls`), each
less selected by the guard than the one before:

- `online.reply_kinds_table` (in `online`): the two kinds of turn as they fell, unpaired;
- `heard_by_intent_table` / `heard_matched`: the same, per planned move, and the template turns'
  rate weighted by the model-written turns' moves (like moves against like);
- `paired_heard_table`: on the SAME model-written turns, the reply against the template the guard
  would have said, read in the same call;
- `draft_heard_table`: on EVERY guarded turn, the model's first draft against the template,
  whatever the guard then did (the guard does not choose these turns).

All read the referee's perception as recorded in each agent turn's `hidden` by `online._play`;
this module reads saved calls only (arena side: it may import the referee's results, and no agent
module may import it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from salesman_utils.stats import paired_bootstrap_diff, wilson_ci
from salesman_utils.world.simulator import Dialogue

PAIRED_COLUMNS = ["system", "n", "reply_heard", "template_heard", "only_reply", "only_template"]
PAIRED_COLUMNS += ["reply_heard_rate", "reply_heard_lo", "reply_heard_hi"]
PAIRED_COLUMNS += ["template_heard_rate", "template_heard_lo", "template_heard_hi"]
PAIRED_COLUMNS += ["diff", "diff_lo", "diff_hi"]


def paired_heard_table(results: dict[str, Sequence[Dialogue]], seed: int = 0) -> pd.DataFrame:
    """The paired reading of `planned_heard_rate` (issue 24), per system over its model-written
    turns (reply_kind llm) that carry `template_referee_intent` (`_play`): n turns; in how many the
    referee's perception heard the planned move in the reply (`reply_heard`) and in the turn's
    fallback template read in the same context (`template_heard`), and the discordant pairs
    (`only_reply`, `only_template`); both rates with Wilson 95% intervals; `diff` = reply rate -
    template rate on the SAME turns, with a paired bootstrap 95% interval over turns
    (`stats.paired_bootstrap_diff`). Systems without such turns are left out."""
    rows = []
    for system, dialogues in results.items():
        pairs = [
            (
                t.hidden.get("referee_intent") == t.hidden["planned_intent"],
                t.hidden["template_referee_intent"] == t.hidden["planned_intent"],
            )
            for d in dialogues
            for t in d.turns
            if t.speaker == "agent"
            and t.hidden.get("reply_kind", "llm") == "llm"
            and t.hidden.get("planned_intent")
            and t.hidden.get("template_referee_intent")
        ]
        if pairs:
            rows.append({"system": system, **_paired_row(pairs, seed)})
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


DRAFT_COLUMNS = [c.replace("reply", "draft") for c in PAIRED_COLUMNS]


def draft_heard_table(results: dict[str, Sequence[Dialogue]], seed: int = 0) -> pd.DataFrame:
    """The unselected reading (issue 24): over EVERY turn of a guarded agent that carries both
    readings of `_template_heard` (whatever the guard then did), how often the referee's
    perception heard the planned move in the model's first draft (`draft_heard`) and in the turn's
    fallback template (`template_heard`), with the same statistics as `paired_heard_table`
    (`draft_*` in place of `reply_*`). The guard's tagger does not choose these turns, so this says
    whether what the model writes carries the plan as well as the template does. Systems without
    such turns are left out."""
    rows = []
    for system, dialogues in results.items():
        pairs = [
            (
                t.hidden["draft_referee_intent"] == t.hidden["planned_intent"],
                t.hidden["template_referee_intent"] == t.hidden["planned_intent"],
            )
            for d in dialogues
            for t in d.turns
            if t.speaker == "agent"
            and t.hidden.get("planned_intent")
            and t.hidden.get("draft_referee_intent")
            and t.hidden.get("template_referee_intent")
        ]
        if pairs:
            row = _paired_row(pairs, seed)
            rows.append(
                {"system": system, **{k.replace("reply", "draft"): v for k, v in row.items()}}
            )
    return pd.DataFrame(rows, columns=DRAFT_COLUMNS)


def _paired_row(pairs: list[tuple[bool, bool]], seed: int = 0) -> dict[str, Any]:
    """Counts, Wilson rates and the paired difference of (reply heard, template heard) pairs.
    Without a discordant pair the bootstrap's resamples are all equal, and an interval of width
    zero would read as a precise zero: the difference then has no interval (nan bounds)."""
    a, b = [float(x) for x, _ in pairs], [float(y) for _, y in pairs]
    n, k_a, k_b = len(pairs), int(sum(a)), int(sum(b))
    diff = paired_bootstrap_diff(a, b, seed=seed)
    if all(x == y for x, y in pairs):
        diff = (diff[0], float("nan"), float("nan"))
    return {
        "n": n,
        "reply_heard": k_a,
        "template_heard": k_b,
        "only_reply": sum(x and not y for x, y in pairs),
        "only_template": sum(y and not x for x, y in pairs),
        **dict(zip(_cols("reply_heard"), wilson_ci(k_a, n), strict=True)),
        **dict(zip(_cols("template_heard"), wilson_ci(k_b, n), strict=True)),
        **dict(zip(("diff", "diff_lo", "diff_hi"), diff, strict=True)),
    }


def _cols(name: str) -> tuple[str, str, str]:
    """The rate and interval columns of `name`: (name_rate, name_lo, name_hi)."""
    return f"{name}_rate", f"{name}_lo", f"{name}_hi"


INTENT_COLUMNS = ["system", "intent", "llm_n", "llm_heard", "template_n", "template_heard"]
INTENT_COLUMNS += ["llm_heard_rate", "template_heard_rate"]


def heard_by_intent_table(results: dict[str, Sequence[Dialogue]]) -> pd.DataFrame:
    """`planned_heard_rate` of the model-written (llm) and template turns, per system and planned
    move, for systems with both kinds of turn (the guarded DOGA agents). Rows per move, then one
    row ``all`` and one row ``all, template matched``: the template turns' rate per move weighted
    by how many model-written turns planned that move (direct standardization). The guard keeps
    model replies more often for some moves than others, and the customer hears some moves more
    easily than others, so the plain ``all`` comparison of the two kinds mixes the guard's choice
    of turns with the replies' quality; the matched row compares like moves. Rates are nan where
    a kind has no turn (and the matched row is nan when a move of the model-written turns has no
    template turn)."""
    rows = []
    for system, dialogues in results.items():
        counts: dict[str, dict[str, list[int]]] = {}  # intent -> kind -> [turns, heard]
        for d in dialogues:
            for t in d.turns:
                intent, kind = t.hidden.get("planned_intent"), t.hidden.get("reply_kind", "llm")
                if t.speaker != "agent" or not intent or kind not in ("llm", "template"):
                    continue
                c = counts.setdefault(intent, {"llm": [0, 0], "template": [0, 0]})
                c[kind][0] += 1
                c[kind][1] += int(t.hidden.get("referee_intent") == intent)
        total = {
            k: [sum(c[k][j] for c in counts.values()) for j in (0, 1)] for k in ("llm", "template")
        }
        if not (total["llm"][0] and total["template"][0]):
            continue
        weights = {i: c["llm"][0] for i, c in counts.items() if c["llm"][0]}
        matched = (
            sum(w * counts[i]["template"][1] / counts[i]["template"][0] for i, w in weights.items())
            / sum(weights.values())
            if all(counts[i]["template"][0] for i in weights)
            else float("nan")
        )
        cells = [(i, c["llm"], c["template"], None) for i, c in sorted(counts.items())]
        cells += [("all", total["llm"], total["template"], None)]
        # the matched row's template counts are blank: its rate is a weighted mean, not k / n
        cells += [("all, template matched", total["llm"], [None, None], matched)]
        rows += [_intent_row(system, *cell) for cell in cells]
    table = pd.DataFrame(rows, columns=INTENT_COLUMNS)
    counts = ["llm_n", "llm_heard", "template_n", "template_heard"]
    return table.astype(dict.fromkeys(counts, "Int64"))  # integers, blank where there is none


def _intent_row(
    system: str, intent: str, llm: list[int], tpl: list, tpl_rate: float | None
) -> dict[str, Any]:
    """One row of `heard_by_intent_table`: [turns, heard] of each kind; `tpl_rate` overrides the
    template turns' own rate (the matched row)."""
    own = tpl[1] / tpl[0] if tpl[0] else float("nan")
    return {
        "system": system,
        "intent": intent,
        "llm_n": llm[0],
        "llm_heard": llm[1],
        "template_n": tpl[0],
        "template_heard": tpl[1],
        "llm_heard_rate": llm[1] / llm[0] if llm[0] else float("nan"),
        "template_heard_rate": own if tpl_rate is None else tpl_rate,
    }


def heard_matched(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per system, from `heard_by_intent_table`: the model-written turns (`llm_n`, `llm_rate`), the
    template turns' rate as is (`template_rate`) and matched to the model-written turns' moves
    (`template_matched_rate`)."""
    out = {}
    for system, g in table.groupby("system", sort=False):
        g = g.set_index("intent")
        out[system] = {
            "llm_n": int(g.loc["all", "llm_n"]),
            "llm_rate": float(g.loc["all", "llm_heard_rate"]),
            "template_rate": float(g.loc["all", "template_heard_rate"]),
            "template_matched_rate": float(g.loc["all, template matched", "template_heard_rate"]),
        }
    return out
