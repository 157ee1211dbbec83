"""The judge's rubric and its questions: six capabilities and seven metrics (DESIGN.md section 7),
each with a 1-10 scale written as five anchored bands, and the prompts and answer parsers built on it.

- `CAPABILITIES`, `METRICS` (name -> `Criterion`), `COMPLEX_CAPABILITIES`, `rubric_markdown()`;
- items (`check_items`) and what a judge or a human rater sees of one (`render_context`: the
  knowledge base, the visible merchant data and the call so far; never the move the corpus rep
  made or the capability the item is filed under, which is a grouping key for tables only);
- prompts: `local_prompt` (one metric, answered by a score token), `api_prompt` (all metrics,
  answered in JSON), `pairwise_prompt`; `pair_items` aligns two systems' items;
- answer parsers for the API judge: `parse_scores`, `parse_winner` (None = malformed).

`salesman_utils.judge.llm_judge` re-exports all of this and runs the judges.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# ---------------------------------------------------------------- rubric (data)

# "[Name] definition" then the anchors of the bands 1-2, 3-4, 5-6, 7-8, 9-10, one line each; the
# prompts show them verbatim. Capabilities say what a turn of that intent must achieve; metrics are
# the seven qualities every turn is graded on (DESIGN.md section 7).
CAPABILITY_TEXT = """
[Opening] introduce yourself and the platform, say why you call, earn the right to continue
1-2: no introduction or purpose, or an immediate hard pitch
3-4: introduces, but the purpose is unclear or the opening is long-winded
5-6: introduction and purpose given with a generic hook
7-8: clear introduction and purpose with a reason this merchant should keep listening
9-10: brief, warm, personalized hook ending in an easy question to continue
[Needs_Discovery] ask about the merchant's goals, pain points and operations before pitching
1-2: asks nothing, or pitches instead of asking
3-4: a closed or generic question that teaches little
5-6: one relevant open question
7-8: a targeted open question that builds on what the merchant said
9-10: a sharp question that uncovers the key pain point, linked to the merchant's data
[Business_Analysis] diagnose the store's metrics against peers; name the gap the product closes
1-2: no analysis, or wrong numbers
3-4: generic claims about the business without its data
5-6: mentions one metric without a comparison or a conclusion
7-8: compares the merchant's metric with the peer median correctly and names the gap
9-10: correct, concise diagnosis linking the gap to a cause and to what the product changes
[Product_Introduction] present the product: what it is, price and terms, benefit for this merchant
1-2: no product information, or wrong information
3-4: a feature list without relevance to the merchant
5-6: correct description with a generic benefit
7-8: correct description, price and terms as in the knowledge base, benefit tied to a need
9-10: all of 7-8, concise, and ends by inviting the merchant's reaction
[Objection_Handling] acknowledge the objection and answer it with facts; keep the call open
1-2: ignores or argues with the objection, or caves with an invented discount
3-4: acknowledges the objection but does not address it
5-6: addresses it with a generic argument
7-8: acknowledges and answers the specific objection with knowledge-base facts
9-10: empathetic, specific, factual answer that turns the concern into a reason to proceed
[Operational_Guidance] close: walk the merchant through activation and agree concrete next steps
1-2: no next step, or wrong activation steps
3-4: a vague next step ('think about it', 'call us sometime')
5-6: a correct next step without the details needed to act on it
7-8: clear activation steps and a concrete commitment (an action and a time)
9-10: clear, correct step-by-step guidance, confirms agreement and sets a follow-up
"""

METRIC_TEXT = """
[Faithfulness] states only knowledge-base facts; no invented price, number, discount or promise
1-2: a wrong price, discount or number, or a promise the knowledge base does not support
3-4: one unsupported or exaggerated claim, or a key fact distorted
5-6: no false fact, but vague claims that could mislead ('huge boost')
7-8: every fact is in the knowledge base; only minor imprecision of wording
9-10: every price, number and condition exactly as in the knowledge base; no extra promise
[Persuasiveness] gives this merchant a reason to move toward trying the product
1-2: no reason to continue, or a reply that pushes the merchant away
3-4: generic benefit claims not tied to the merchant
5-6: one relevant reason, weakly argued
7-8: a clear benefit tied to the merchant's goal or pain point, with a next step
9-10: compelling and evidence-backed (the merchant's own numbers), easy next step
[Strategic_Fit] the right move for this moment of the call, given the history and the last utterance
1-2: the wrong move: ignores what the merchant just said, pitches after a refusal
3-4: related to the call but premature or late (e.g. price before any need is known)
5-6: an acceptable move, but a clearly better one was available
7-8: the right kind of move for this stage, answering the last utterance
9-10: exactly what an expert rep would do now; advances the call toward the goal
[Personalization] uses this merchant's data (business, metrics vs peers, pain points), accurately
1-2: fully generic; could be said to any merchant
3-4: mentions only the business type or name
5-6: uses one of the merchant's facts, but not to make a point
7-8: uses the merchant's own data to support the point
9-10: built around this merchant's data and pain points, all of it accurate
[Coherence] consistent with itself and with the call so far; follows from the last turn
1-2: contradicts itself or the history, or is unrelated to the conversation
3-4: loosely related; repeats earlier content or jumps topics
5-6: follows the conversation with a gap or an awkward transition
7-8: logically consistent and follows from the last turn
9-10: tightly connected to the history; every sentence builds on the previous one
[Naturalness] sounds like a concise spoken phone turn, not written text
1-2: not speakable: lists, markup, meta text ('As an AI'), or far too long
3-4: stiff, written style, or a long monologue
5-6: understandable spoken language, somewhat wordy or formulaic
7-8: sounds like a real rep on the phone; concise
9-10: fluent, one to three sentences, conversational and easy to answer
[Professionalism] polite and respectful; respects a refusal; no pressure tactics or fake urgency
1-2: rude or manipulative, ignores a refusal, fake urgency or pressure
3-4: pushy or overly familiar; talks over the merchant's concern
5-6: polite, but presses on after hesitation without acknowledging it
7-8: polite and respectful of the merchant's time and concerns
9-10: courteous throughout; accepts a refusal gracefully and leaves the door open
"""

BANDS = ("1-2", "3-4", "5-6", "7-8", "9-10")


@dataclass(frozen=True)
class Criterion:
    """A named criterion with a definition and a 1-10 scale written as five anchored bands."""

    name: str
    definition: str
    anchors: tuple[tuple[str, str], ...]  # (("1-2", "..."), ("3-4", "..."), ...)

    def scale_text(self) -> str:
        return "\n".join(f"{band}: {text}" for band, text in self.anchors)


def _criteria(text: str) -> dict[str, Criterion]:
    """Parse a rubric block; a malformed block fails at import, naming the criterion."""
    out: dict[str, Criterion] = {}
    for block in re.split(r"\n(?=\[)", text.strip()):
        head, *lines = block.splitlines()
        m = re.fullmatch(r"\[(\w+)\] (.+)", head)
        anchors = tuple(tuple(x.split(": ", 1)) for x in lines)
        if not m or tuple(a[0] for a in anchors) != BANDS:
            raise ValueError(f"rubric: malformed criterion {head!r} (bands {BANDS} expected)")
        out[m.group(1)] = Criterion(m.group(1), m.group(2), anchors)  # type: ignore[arg-type]
    return out


CAPABILITIES: dict[str, Criterion] = _criteria(CAPABILITY_TEXT)
METRICS: dict[str, Criterion] = _criteria(METRIC_TEXT)
COMPLEX_CAPABILITIES = ("Business_Analysis", "Objection_Handling", "Operational_Guidance")
SCORE_LABELS = tuple(str(k) for k in range(1, 11))


def rubric_markdown() -> str:
    """The rubric as Markdown (quoted in the README): capabilities, then metrics, with anchors."""
    out = []
    for title, table in (("Capabilities", CAPABILITIES), ("Metrics", METRICS)):
        out.append(f"#### {title}\n")
        out.append("| name | definition | 1-2 | 3-4 | 5-6 | 7-8 | 9-10 |")
        out.append("|---|---|---|---|---|---|---|")
        for c in table.values():
            cells = [c.name.replace("_", " "), c.definition, *(t for _, t in c.anchors)]
            out.append("| " + " | ".join(x.replace("|", "/") for x in cells) + " |")
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- items and prompts

_ITEM_TEXT = ("product_facts", "merchant_facts", "history")


def check_items(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate and normalise items; errors name the item index and the field."""
    out = []
    for i, it in enumerate(items):
        for key in ("item_id", "capability", "reply"):
            if key not in it:
                raise ValueError(f"items[{i}]: missing field {key!r}")
        if it["capability"] not in CAPABILITIES:
            raise ValueError(
                f"items[{i}].capability: unknown {it['capability']!r} "
                f"(allowed: {', '.join(CAPABILITIES)})"
            )
        norm = {k: str(it.get(k) or "") for k in _ITEM_TEXT}
        out.append(
            {
                **it,
                **norm,
                "item_id": str(it["item_id"]),
                "reply": str(it["reply"]),
                "system": str(it.get("system") or "unknown"),
            }
        )
    return out


def render_context(item: Mapping[str, Any]) -> str:
    """The judge's (and the human rater's) view of the moment of the call."""
    return (
        f"## Product knowledge base\n{item.get('product_facts') or '(none)'}\n\n"
        f"## Merchant facts the salesperson can see\n{item.get('merchant_facts') or '(none)'}\n\n"
        f"## Call so far\n{item.get('history') or '(the call starts now)'}"
    )


_SYSTEM = (
    "You are a strict, fair judge of telemarketing calls in which a platform's sales rep calls a "
    "merchant. You grade one salesperson reply at a time against a written rubric."
)


LOCAL_SPLIT = "\n\n## Criterion:"  # what precedes it is shared by an item's seven prompts


def local_prompt(item: Mapping[str, Any], metric: str) -> list[dict[str, str]]:
    """One metric per prompt, answered by the score alone (read as token probabilities)."""
    m = METRICS[metric]
    user = (
        f"{render_context(item)}\n\n"
        f"## Salesperson's reply to grade\n{item['reply'].strip() or '(silence)'}"
        f"{LOCAL_SPLIT} {metric}: {m.definition}\n{m.scale_text()}\n\n"
        f"Grade the reply on {metric} only. Answer with one integer from 1 to 10."
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def api_prompt(item: Mapping[str, Any], metrics: Sequence[str]) -> list[dict[str, str]]:
    """All metrics in one prompt; the answer is a JSON object."""
    blocks = "\n\n".join(
        f"### {name}: {METRICS[name].definition}\n{METRICS[name].scale_text()}" for name in metrics
    )
    example = json.dumps({"scores": dict.fromkeys(metrics, 7), "rationale": "one sentence"})
    user = (
        f"{render_context(item)}\n\n"
        f"## Salesperson's reply to grade\n{item['reply']}\n\n## Rubric (1 worst, 10 best)\n"
        f"{blocks}\n\nAnswer with a JSON object only, integers from 1 to 10, like: {example}"
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


# ---------------------------------------------------------------- pairwise

_PAIR_QUESTION = (
    "Which reply is better for this moment of the call: faithful to the knowledge base, the right "
    "move, personalized, natural on the phone and professional?"
)


def pairwise_prompt(item: Mapping[str, Any], reply_a: str, reply_b: str, kind: str) -> list[dict]:
    answer = (
        "Answer with one letter: A or B."
        if kind == "local"
        else 'Answer with a JSON object only: {"winner": "A" or "B", "rationale": "one sentence"}'
    )
    user = (
        f"{render_context(item)}\n\n## Reply A\n{reply_a}\n\n"
        f"## Reply B\n{reply_b}\n\n{_PAIR_QUESTION} {answer}"
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def pair_items(items_a: Sequence[Mapping], items_b: Sequence[Mapping]) -> list[tuple[dict, dict]]:
    a, b = check_items(items_a), check_items(items_b)
    by_id = {it["item_id"]: it for it in b}
    missing = [it["item_id"] for it in a if it["item_id"] not in by_id]
    if missing:
        raise ValueError(f"items_b: no item for item_id {missing[:5]} of items_a")
    return [(it, by_id[it["item_id"]]) for it in a]


# ---------------------------------------------------------------- JSON parsing (API judge)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def _json_object(text: str) -> dict[str, Any] | None:
    m = _FENCE.search(text)
    body = m.group(1) if m else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(body[start : end + 1])
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _as_score(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and 1 <= value <= 10 else None


def _norm_key(key: str) -> str:
    return re.sub(r"[\s_-]+", "", key).lower()


def parse_scores(text: str, metrics: Sequence[str]) -> tuple[dict[str, int], str] | None:
    """``({metric: 1..10}, rationale)`` from a judge's JSON answer, or None if any metric is
    missing or invalid (the caller retries, then records a parse failure)."""
    obj = _json_object(text)
    if obj is None or not isinstance(obj.get("scores"), dict):
        return None
    given = {_norm_key(str(k)): v for k, v in obj["scores"].items()}
    scores = {m: _as_score(given.get(_norm_key(m))) for m in metrics}
    if any(v is None for v in scores.values()):
        return None
    return scores, str(obj.get("rationale", ""))  # type: ignore[return-value]


def parse_winner(text: str) -> tuple[str, str] | None:
    """``("A"|"B", rationale)`` from a pairwise JSON answer, or None if malformed."""
    obj = _json_object(text)
    winner = str(obj.get("winner", "")).strip().upper() if obj else ""
    if winner not in {"A", "B"}:
        return None
    return winner, str(obj.get("rationale", ""))  # type: ignore[union-attr]
