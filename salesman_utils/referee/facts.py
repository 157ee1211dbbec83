"""The referee's faithfulness check of a rep's reply: stricter than the guard, written apart from it.

`check(text, product, merchant)` returns `Finding(kind, span, detail)`s; an empty list means the
reply states nothing the referee cannot ground. It shares no code with `world.factcheck.fact_check` (the
guard's checker, which agents use): a metric that reused the guard's code would score the guard
against itself. Rules:

* every number in the reply, in digits (``3``, ``1,100``, ``4.3``) or words (``three``,
  ``twenty-five``, ``two hundred``), must appear in the product's knowledge base
  (`Product.kb_text()`, which holds every plan, feature, term and FAQ) or in the merchant's
  VISIBLE data (its metrics and peer medians, as `simulator.fmt_metric` writes them: orders and
  page views as integers, rating and conversion to one decimal) -> ``number``;
* a price (``$39``, ``39 dollars``) must be a knowledge-base amount -> ``price``; said with a
  period (``$39 a month``), with a period the knowledge base gives that amount -> ``period``;
* a percentage (``50%``, ``fifty percent``, ``half price``) must be a knowledge-base percentage or
  the store's (or its peers') conversion -> ``percentage``. The store's gap to its peers as a
  percentage is NOT allowed: it is not in the visible data, and a model that computes one is often
  wrong (our choice; it costs precision on true gap statements, measured in notebook 04);
* a duration (``14-day``, ``3 months``, ``one week``, ``within a week``, ``a full month``) must appear in the
  knowledge base with the same number and unit (``two weeks`` for a 14-day trial is flagged: the
  referee checks words, not arithmetic) -> ``duration``;
* no guarantee, refund, "money back", "you have my word", promise, risk-free, "pays for itself" or
  "double your orders" style claim, unless negated (``I can't guarantee``, ``no guaranteed
  result``) -> ``claim``;
* a capitalized plan name (``the Premium plan``) must be one of the product's plans, or the
  product's own name (``your Spotlight Ads plan``) -> ``plan``;
* offers the knowledge base does not make (issue 24): a code (a word with both letters and digits
  such as ``B2B2B``, or the word after "code") -> ``code``; a named promotion, deal, bonus,
  package, bundle, programme or campaign (``our Summer Saver promotion``) or an offer word
  (trial, cashback, voucher, rebate, credits, bonus, waived, complimentary, gift card, setup
  fee, loyalty points) that the knowledge base's text does not have -> ``offer``; sums and products of numbers
  (``3 x 19``, ``2 times $39``, ``19 + 19``) -> ``arithmetic``. Decimals are numbers (above).

Not numbers (conversation, not product facts): ``one`` and ``a`` outside a unit (``one thing``),
minutes, seconds, hours, times of day (``at three``, ``3 pm``) and ``two-line``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

KINDS = ("number", "price", "period", "percentage", "duration", "claim", "plan", "code", "offer")
KINDS += ("arithmetic",)

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_WORD = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_SMALL = rf"(?:(?:{'|'.join(_TENS)})(?:[- ](?:{'|'.join(_UNITS[1:10])}))?|{'|'.join(_UNITS)})"
_WORDNUM = rf"{_SMALL}(?:[- ](?:hundred|thousand)(?:[- ](?:and[- ])?{_SMALL})?)?"
_NUM = re.compile(rf"\d[\d,]*(?:\.\d+)?|\b{_WORDNUM}\b", re.I)
_PERIOD = re.compile(r"^\s*(?:a|an|per|each|every|/)\s*(day|week|month|year)\b", re.I)
_MONEY_AFTER = re.compile(r"^\s*(?:dollars?|bucks)\b", re.I)
_PERCENT_AFTER = re.compile(r"^\s*(?:%|percent\b|per cent\b)", re.I)
_DURATION_AFTER = re.compile(r"^[- ]?(day|week|month|year)s?\b", re.I)
_CHAT_AFTER = re.compile(
    r"^[- ]?(?:minutes?|mins?|seconds?|hours?|hrs?|o'clock|am|pm|line)\b", re.I
)
_HALF = re.compile(r"\bhalf[- ](?:price|off)\b", re.I)
_A_DURATION = re.compile(
    r"\b(?:within|lasts?|full|whole)\s+(?:a|an)\s+(day|week|month|year)\b", re.I
)
_CLAIMS = re.compile(
    r"\b(?:guarantee[sd]?|guaranteeing|promise[sd]?|my word|refund(?:s|ed)?|money back|"
    r"cent back|risk[- ]free|no risk|pays? for itself|(?:double|triple)s? your)\b",
    re.I,
)
_NEGATION = re.compile(r"\b(?:not|no|never|nobody|cannot|can't|won't|don't|isn't|n't)\b", re.I)
_PLAN_NAME = re.compile(r"\b((?:[A-Z][a-z]+ ){1,2})plan\b")
_SENTENCE_START = {"The", "This", "That", "Our", "Your", "A", "My", "Which", "What", "Any"}
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_UNIT_SUFFIX = re.compile(r"\d+(?:st|nd|rd|th|am|pm|km|k|x|s|mo|yr|h|min)", re.I)
_CODE_AFTER = re.compile(r"\bcodes?\b(?:\s+is)?\W{0,3}([A-Za-z0-9]{3,})")
_PROMO_NAME = re.compile(
    r"(?:\b((?:[A-Z][A-Za-z']+ ){1,3})|[\"\u201c]([^\"\u201d]+)[\"\u201d] )"
    r"(?i:promotion|promo|offer|deal|sale|bonus|package|bundle|programme|program|campaign)s?\b"
)
_OFFER_WORDS = re.compile(
    r"\b(?:trials?|cash ?back|vouchers?|rebates?|credits?|bonus(?:es)?|waive[sd]?|gift cards?|"
    r"complimentary|"
    r"setup fees?|set-up fees?|loyalty points|bogo)\b",
    re.I,
)
_SUM = re.compile(r"\d[\d,]*(?:\.\d+)?\s*(?:[x\u00d7*+]|times)\s*\$?\d[\d,]*(?:\.\d+)?", re.I)


@dataclass
class Finding:
    """One statement the referee cannot ground: `kind` (one of `KINDS`), `span`, `detail`."""

    kind: str
    span: str
    detail: str


def _value(token: str) -> float:
    """A number written in digits or words."""
    t = token.lower().replace(",", "")
    if t[0].isdigit():
        return float(t)
    total, cur = 0, 0
    for w in re.split(r"[- ]+", t):
        if w == "and":
            continue
        if w == "hundred":
            cur = max(cur, 1) * 100
        elif w == "thousand":
            total, cur = total + max(cur, 1) * 1000, 0
        else:
            cur += _WORD[w]
    return float(total + cur)


@dataclass
class _Mention:
    kind: str  # number | price | percentage | duration
    value: float
    span: str
    unit: str | None = None  # period of a price, unit of a duration


def mentions(text: str) -> list[_Mention]:
    """Every number of `text` with what it is (price, percentage, duration or plain number);
    conversational numbers (see the module doc) are left out."""
    out: list[_Mention] = []
    text = text or ""
    for m in _NUM.finditer(text):
        token, after = m.group(0), text[m.end() : m.end() + 24]
        before = text[max(0, m.start() - 4) : m.start()]
        v = _value(token)
        if before.rstrip().endswith("$"):
            p = _PERIOD.match(after)
            out.append(_Mention("price", v, "$" + token, p.group(1).lower() if p else None))
        elif _MONEY_AFTER.match(after):
            p = _PERIOD.match(after[_MONEY_AFTER.match(after).end() :])
            out.append(_Mention("price", v, token + " dollars", p.group(1).lower() if p else None))
        elif _PERCENT_AFTER.match(after):
            out.append(_Mention("percentage", v, token + "%"))
        elif d := _DURATION_AFTER.match(after):
            out.append(_Mention("duration", v, token + d.group(0), d.group(1).lower()))
        elif _CHAT_AFTER.match(after) or token.lower() == "one":
            continue
        elif re.search(r"\bat\s+$", text[max(0, m.start() - 4) : m.start()], re.I) and v <= 12:
            continue  # a time of day ("call back at three")
        else:
            out.append(_Mention("number", v, token))
    out += [_Mention("percentage", 50.0, h.group(0)) for h in _HALF.finditer(text)]
    out += [
        _Mention("duration", 1.0, d.group(0), d.group(1).lower())
        for d in _A_DURATION.finditer(text)
    ]
    return out


@lru_cache(maxsize=64)
def _kb(kb_text: str) -> dict[str, Any]:
    found = mentions(kb_text)
    return {
        "values": {x.value for x in found},
        "prices": {x.value for x in found if x.kind == "price"},
        "priced": {(x.value, x.unit) for x in found if x.kind == "price" and x.unit},
        "percentages": {x.value for x in found if x.kind == "percentage"},
        "durations": {(x.value, x.unit) for x in found if x.kind == "duration"},
    }


def _merchant_values(merchant: Any) -> tuple[set[float], set[float]]:
    """(all visible numbers, the conversion percentages) of a merchant, as fmt_metric says them."""
    if merchant is None:
        return set(), set()
    values, pct = set(), set()
    for source in (merchant.metrics, merchant.peer_medians):
        for key, v in source.items():
            r = round(float(v), 1) if key in {"rating", "conversion"} else float(round(float(v)))
            values.add(r)
            if key == "conversion":
                pct.add(r)
    return values, pct


def _near(v: float, allowed: set[float]) -> bool:
    return any(abs(v - a) < 1e-6 for a in allowed)


def check(text: str, product: Any, merchant: Any = None) -> list[Finding]:
    """The referee's findings for one reply (see the module doc); [] = nothing ungrounded."""
    kb = _kb(product.kb_text())
    m_values, m_pct = _merchant_values(merchant)
    out: list[Finding] = []
    for x in mentions(text):
        if x.kind == "price":
            if not _near(x.value, kb["prices"]):
                out.append(Finding("price", x.span, f"{x.value:g} is no price of {product.name}"))
            elif x.unit and (x.value, x.unit) not in kb["priced"]:
                out.append(Finding("period", x.span, f"{x.value:g} is not charged per {x.unit}"))
        elif x.kind == "percentage":
            if not (_near(x.value, kb["percentages"]) or _near(x.value, m_pct)):
                out.append(Finding("percentage", x.span, f"{x.value:g}% is not in the KB/data"))
        elif x.kind == "duration":
            if (x.value, x.unit) not in kb["durations"]:
                out.append(Finding("duration", x.span, f"{x.value:g} {x.unit}(s) not in the KB"))
        elif not (_near(x.value, kb["values"]) or _near(x.value, m_values)):
            out.append(Finding("number", x.span, f"{x.value:g} is not in the KB or the data"))
    for c in _CLAIMS.finditer(text or ""):
        words_before = " ".join((text[: c.start()]).split()[-3:])
        if not _NEGATION.search(words_before):
            out.append(Finding("claim", c.group(0), "a promise the knowledge base does not make"))
    # the product's own name before "plan" ("your Spotlight Ads plan") names the product, no tier
    plans = {p["name"].lower() for p in product.plans} | {product.name.lower()}
    for p in _PLAN_NAME.finditer(text or ""):
        words = [w for w in p.group(1).split() if w not in _SENTENCE_START]
        if words and not any(" ".join(words).lower().endswith(n) for n in plans):
            out.append(Finding("plan", p.group(0), f"{product.name} has no such plan"))
    return out + _offers(text or "", product)


# the period an offer covers, after an offer word: "off the second month", "free for the next 2 weeks"
_SCOPE = re.compile(
    r"(?:% off|percent off|\bfree\b|\bwaived\b)(?:\s+\w+){0,4}?\s+(?:the|your)\s+"
    r"(first|second|third|fourth|fifth|sixth|next|last|1st|2nd|3rd|[4-9]th)"
    r"(?:\s+(?:\d+|two|three|four|five|six|twelve))?\s+(?:day|week|month|year)s?\b",
    re.IGNORECASE,
)


def _offers(text: str, product: Any) -> list[Finding]:
    """Codes, named promotions, offer words and arithmetic the knowledge base does not have."""
    kb = " ".join([product.kb_text(), product.name, *(p["name"] for p in product.plans)]).lower()
    out: list[Finding] = []
    seen: set[str] = set()
    for tok in [*_TOKEN.findall(text), *_CODE_AFTER.findall(text)]:
        has_both = any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok)
        after_code = tok in _CODE_AFTER.findall(text)
        if (has_both and not _UNIT_SUFFIX.fullmatch(tok)) or after_code:
            if tok.lower() not in kb and tok not in seen:
                seen.add(tok)
                out.append(Finding("code", tok, f"{product.name} has no code {tok}"))
    for m in _PROMO_NAME.finditer(text):
        name = (m.group(1) or m.group(2) or "").split()
        name = [w for w in name if w not in _SENTENCE_START]
        if name and " ".join(name).lower() not in kb:
            out.append(Finding("offer", m.group(0), f"{product.name} runs no such offer"))
    for m in _OFFER_WORDS.finditer(text):
        words_before = " ".join(text[: m.start()].split()[-3:])
        if m.group(0).lower() not in kb and not _NEGATION.search(words_before):
            out.append(Finding("offer", m.group(0), f"{product.name} has no {m.group(0)}"))
    out += [Finding("arithmetic", m.group(0), "a sum or product") for m in _SUM.finditer(text)]
    # the ordinal and the unit ("second month"); a wrong count is the duration check's finding
    counts = {"two", "three", "four", "five", "six", "twelve"}
    flat = " ".join(w.rstrip("s") for w in kb.split() if not w.isdigit() and w not in counts)
    for m in _SCOPE.finditer(text):
        words = m.group(0).lower().split()
        words = words[words.index(m.group(1).lower()) :]  # "second month", "first 4 months"
        period = " ".join(w.rstrip("s") for w in words if not w.isdigit() and w not in counts)
        if period not in flat:
            out.append(Finding("offer", m.group(0), f"{product.name}'s offer is not for {period}"))
    return out


def faithful(text: str, product: Any, merchant: Any = None) -> bool:
    """True when `check` finds nothing."""
    return not check(text, product, merchant)


def compare_on_corpus(dialogues: Any) -> dict[str, Any]:
    """The referee's check and the guard's (`world.factcheck.fact_check`) on every agent turn of
    `dialogues` (with hidden fields), against the simulator's hidden `faithful` label: precision
    and recall of each (a flag = "unfaithful"), and the turns where the two checkers disagree."""
    from salesman_utils.world.factcheck import fact_check
    from salesman_utils.world.knowledge import get_product

    rows = []
    for d in dialogues:
        p = get_product(d.product_id)
        for t in d.turns:
            if t.speaker == "agent" and "faithful" in t.hidden:
                rows.append(
                    (
                        not t.hidden["faithful"],
                        bool(check(t.text, p, d.merchant)),
                        bool(fact_check(t.text, p, d.merchant)),
                    )
                )

    def pr(col: int) -> dict[str, float]:
        tp = sum(r[0] and r[col] for r in rows)
        flagged, bad = sum(r[col] for r in rows), sum(r[0] for r in rows)
        return {
            "precision": tp / flagged if flagged else float("nan"),
            "recall": tp / bad if bad else float("nan"),
            "flagged": flagged,
        }

    return {
        "turns": len(rows),
        "unfaithful": sum(r[0] for r in rows),
        "referee": pr(1),
        "guard": pr(2),
        "only_referee_flags": sum(r[1] and not r[2] for r in rows),
        "only_guard_flags": sum(r[2] and not r[1] for r in rows),
    }
