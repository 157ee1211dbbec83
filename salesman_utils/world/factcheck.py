"""The visible fact check of a sales turn against the knowledge base (`world.knowledge`) and
the merchant's dashboard.

`fact_check(text, product, merchant)` lists the statements of a sales turn that contradict the knowledge base or are forbidden:

- money (``$39``, ``39 dollars``, ``thirty-nine dollars``, ``39/month``, ``39 a month``): the amount
  must be one of the product's amounts (``wrong_price``), said with one of its periods
  (``wrong_period``: ``$39 a year`` when the plan is ``$39 a month``);
- percentages in a discount/funding context (``50% off``, ``fifty percent``, ``half price``):
  ``wrong_discount`` unless in the knowledge base; other percentages are checked only when the
  merchant is given (they may be the store's own metrics), as ``wrong_number``;
- durations in days, weeks, months or years (``14-day``, ``two weeks``, ``3 months``):
  ``wrong_duration`` unless the knowledge base has the same length in the same unit (``3 months``
  is no term of a product whose only 90 is "kept for 90 days"; hours and minutes are small talk,
  not terms);
- promises (``guaranteed``, ``double your orders``, ``risk-free``, and the product's own
  `forbidden_claims`): ``forbidden_promise``;
- invented offers (issue 24), unless the knowledge base has them: a code (a word mixing letters
  and digits, ``B2B2B``, ``SAVE20``, or any word after "code"/"voucher") -> ``invented_code``; a
  named offer (a capitalized or quoted name before promotion, promo, offer, deal, sale, special,
  bonus, package, bundle, program, campaign, plan, tier, code, discount, pass or membership, such as
  ``the Summer Saver promotion``) -> ``invented_offer``; an offer term from `_OFFER_TERMS` (free
  trial, cashback, voucher, bundle, setup fee, ...) whose words the knowledge base does not hold
  -> ``invented_offer``;
- decimals (``2.2``) that are neither in the knowledge base nor the store's visible metrics
  (checked when the merchant is given, like other percentages) -> ``wrong_number``, and ``N x M``
  arithmetic (``3 x 19``, ``2 times $39``, ``19 + 19``): never on the dashboard or in the knowledge
  base -> ``invented_arithmetic``; a count of free or extra items (``14 free trials``, ``3 extra
  vouchers``) whose count and item the knowledge base does not state together (``two months
  free`` does; a ``14-day free trial`` is no ``14 free trials``) -> ``invented_offer``;
- any other number (``1587 orders``, ``for 2 nights``, ``the 4th of July``, ``You get 1``), in
  digits or words, when the merchant is given: it must be a number of the knowledge base or of the
  store's visible data (orders and page views as integers, rating and conversion to one decimal)
  -> ``wrong_number``. Not numbers here (conversation): the word ``one``, minutes, seconds, hours,
  times of day (``at three``, ``3 pm``), people (``the three of us``), and numbers inside money,
  percentages and durations (their own rules above).
Number words are read as numbers first, so paraphrases are checked like digits.

One module although long: every rule reads the same normalized text (number words as digits, with
a map back to the words said) and the same reading of the knowledge base, and a span one rule
flags is not flagged again by another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from salesman_utils.world.knowledge import Product, money


@dataclass
class Violation:
    """One fact-check finding: `kind` (see module doc), `span` (the words in the text), `detail`."""

    kind: str
    span: str
    detail: str


# ---------------------------------------------------------------- number words

_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
_UNITS += " fifteen sixteen seventeen eighteen nineteen"
_UNIT_VAL = {w: i for i, w in enumerate(_UNITS.split())}
_TENS_VAL = {
    w: 10 * (i + 2)
    for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())
}
_SCALE_VAL = {"hundred": 100, "thousand": 1000}
_NUMWORD = "|".join(sorted([*_UNIT_VAL, *_TENS_VAL, *_SCALE_VAL], key=len, reverse=True))
_NUMWORD_RE = re.compile(
    rf"\b(?:{_NUMWORD})(?:(?:[\s-]+(?:and[\s-]+)?)(?:{_NUMWORD}))*\b", re.IGNORECASE
)


def _words_to_int(phrase: str) -> int:
    total, current = 0, 0
    for w in re.split(r"[\s-]+", phrase.lower()):
        if w in _UNIT_VAL:
            current += _UNIT_VAL[w]
        elif w in _TENS_VAL:
            current += _TENS_VAL[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w == "thousand":
            total += max(current, 1) * 1000
            current = 0
    return total + current


def _normalize(text: str) -> tuple[str, list[int], list[int]]:
    """Number words -> digits, thousands separators dropped; maps each output char to its source."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for m in _NUMWORD_RE.finditer(text):
        for i in range(pos, m.start()):
            out.append(text[i])
            starts.append(i)
            ends.append(i + 1)
        digits = str(_words_to_int(m.group(0)))
        out.extend(digits)
        starts.extend([m.start()] * len(digits))
        ends.extend([m.end()] * len(digits))
        pos = m.end()
    for i in range(pos, len(text)):
        out.append(text[i])
        starts.append(i)
        ends.append(i + 1)
    norm = "".join(out)
    # 3,000 -> 3000 keeping the maps aligned
    for m in reversed(list(re.finditer(r"(?<=\d),(?=\d{3}\b)", norm))):
        i = m.start()
        norm = norm[:i] + norm[i + 1 :]
        del starts[i], ends[i]
    return norm, starts, ends


# ---------------------------------------------------------------- fact extraction

_NUM = r"(\d+(?:\.\d+)?)"
_PERIOD = r"(?:\s*(?:/|per|a|an|each|every)\s*(month|mo|year|yr|week|day|visit|order)s?\b)?"
_MONEY_RE = re.compile(
    rf"(?:\$\s?{_NUM}(?:\s*(?:dollars?|usd))?|\b{_NUM}\s*(?:dollars?|bucks|usd)\b){_PERIOD}",
    re.IGNORECASE,
)
_BARE_RATE_RE = re.compile(
    rf"(?<![\d.$])\b{_NUM}\s*(?:/|per|a)\s*(month|mo|year|yr)\b(?!\s*(?:minimum|term))",
    re.IGNORECASE,
)
_PCT_RE = re.compile(rf"{_NUM}\s*(?:%|percent\b|per cent\b)", re.IGNORECASE)
_HALF_RE = re.compile(r"\bhalf[\s-](?:off|price|the price)\b", re.IGNORECASE)
_DUR_RE = re.compile(rf"\b{_NUM}[\s-]*(day|week|month|year)s?\b", re.IGNORECASE)
_DISCOUNT_CTX = re.compile(
    r"\b(off|discount\w*|save|saving|cheaper|reduced|co-?fund\w*|funds?|pays?|paid|waived|rebate|"
    r"commission|member price|deposits?|cheaper)\b",
    re.IGNORECASE,
)
_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
_PERIOD_ALIAS = {"mo": "month", "yr": "year"}
_GENERIC_PROMISES = [
    r"\bguarantee[sd]?\b",
    r"\bguaranteeing\b",
    r"\b(?:double|triple|doubles|triples|doubling)\s+(?:your|the)\s+"
    r"(?:orders|sales|revenue|customers|bookings|business|traffic)\b",
    r"\brisk[\s-]free\b",
    r"\bno risk\b",
    r"\bcan(?:'|no)?t lose\b",
    r"\b100\s*(?:%|percent)\s+(?:sure|certain|guaranteed)\b",
    r"\bwill definitely (?:grow|increase|bring|get)\b",
]
_PROMISE_RE = re.compile("|".join(_GENERIC_PROMISES), re.IGNORECASE)
_STOP = {"your", "the", "for", "with", "from", "that", "this", "in", "of", "a", "to", "if", "do"}


@dataclass(frozen=True)
class Fact:
    """A checkable statement found in a text (used by the fact check and by the realizer)."""

    kind: str  # money | percent | duration
    value: float
    period: str | None  # a price's period
    start: int
    end: int
    unit: str | None = None  # a duration's unit as said (day, week, month, year)


def extract_facts(text: str) -> tuple[str, list[Fact]]:
    """Money, percentages and durations in `text` (offsets into the normalized text returned)."""
    norm, _, _ = _normalize(text)
    facts: list[Fact] = []
    taken: list[tuple[int, int]] = []
    for m in _MONEY_RE.finditer(norm):
        value = float(m.group(1) or m.group(2))
        period = m.group(3)
        period = _PERIOD_ALIAS.get(period.lower(), period.lower()) if period else None
        facts.append(Fact("money", value, period, m.start(), m.end()))
        taken.append((m.start(), m.end()))
    for m in _BARE_RATE_RE.finditer(norm):
        if any(a <= m.start() < b for a, b in taken):
            continue
        period = _PERIOD_ALIAS.get(m.group(2).lower(), m.group(2).lower())
        facts.append(Fact("money", float(m.group(1)), period, m.start(), m.end()))
        taken.append((m.start(), m.end()))
    for m in _PCT_RE.finditer(norm):
        facts.append(Fact("percent", float(m.group(1)), None, m.start(), m.end()))
    for m in _HALF_RE.finditer(norm):
        facts.append(Fact("percent", 50.0, None, m.start(), m.end()))
    for m in _DUR_RE.finditer(norm):
        if any(a <= m.start() < b for a, b in taken):
            continue
        days = float(m.group(1)) * _DAYS[m.group(2).lower()]
        facts.append(Fact("duration", days, None, m.start(), m.end(), m.group(2).lower()))
    return norm, sorted(facts, key=lambda f: f.start)


@dataclass(frozen=True)
class _KB:
    money: frozenset[float]
    money_periods: dict[float, frozenset[str]]
    percents: frozenset[float]
    durations: frozenset[tuple[float, str | None]]
    claims: tuple[tuple[str, tuple[str, ...]], ...]
    kb_lower: str


def _claim_words(claim: str) -> tuple[str, ...]:
    words = [w for w in re.findall(r"[a-z0-9]+", claim.lower()) if w not in _STOP and len(w) > 2]
    return tuple(w[:5] if len(w) > 4 else w for w in words)


@lru_cache(maxsize=64)
def _kb_facts_cached(key: str, text: str, claims: tuple[str, ...]) -> _KB:
    _, facts = extract_facts(text)
    periods: dict[float, set[str]] = {}
    for f in facts:
        if f.kind == "money" and f.period:
            periods.setdefault(f.value, set()).add(f.period)
    return _KB(
        money=frozenset(f.value for f in facts if f.kind == "money"),
        money_periods={k: frozenset(v) for k, v in periods.items()},
        percents=frozenset(f.value for f in facts if f.kind == "percent"),
        durations=frozenset((f.value, f.unit) for f in facts if f.kind == "duration"),
        claims=tuple((c, _claim_words(c)) for c in claims),
        kb_lower=text.lower(),
    )


def _kb(product: Product) -> _KB:
    return _kb_facts_cached(product.id, product.kb_text(), tuple(product.forbidden_claims))


def _sentences(norm: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in re.finditer(r"[.!?;](?:\s|$)", norm):
        spans.append((start, m.end()))
        start = m.end()
    if start < len(norm):
        spans.append((start, len(norm)))
    return spans


def _merchant_percents(merchant: Any) -> set[float]:
    metrics = getattr(merchant, "metrics", None) or {}
    peers = getattr(merchant, "peer_medians", None) or {}
    return {round(float(d["conversion"]), 1) for d in (metrics, peers) if "conversion" in d}


# ---------------------------------------------------------------- invented offers (issue 24)

# a word mixing letters and digits; ordinals, times, units and multipliers are not codes
_CODE_WORD = re.compile(r"(?<![\w$])(?=[A-Za-z0-9-]*[A-Za-z])(?=[A-Za-z0-9-]*\d)[A-Za-z0-9-]{2,}\b")
_NOT_CODE = re.compile(
    r"^(?:\d+(?:st|nd|rd|th|am|pm|km|mi|mo|yr|hr|hrs|min|mins|k|x|s)|\d+-[a-z]+(?:-[a-z]+)*|"
    r"[a-z]+-\d+)$",
    re.IGNORECASE,
)
_AFTER_CODE = re.compile(
    r"\b(?:code|voucher|coupon code|promo code)s?\s*(?:is|:)?\s*[\"'\u201c]?([A-Za-z0-9][\w-]{2,})",
    re.IGNORECASE,
)
_OFFER_NOUN = (
    r"(?:promotion|promo|offer|deal|sale|special|bonus|package|bundle|program|programme|campaign|"
    r"plan|tier|code|discount|pass|membership)s?"
)
_NAMED_OFFER = re.compile(
    rf"(?:[\"\u201c]([^\"\u201d]{{2,40}})[\"\u201d]\s+{_OFFER_NOUN}\b|"
    rf"\b((?:[A-Z][\w'-]*\s+){{1,3}}){_OFFER_NOUN}\b)"
)
_NAME_STOP = {"the", "this", "that", "our", "your", "a", "an", "my", "which", "what", "any", "i"}
_NAME_STOP |= {"and", "so", "but", "or", "if", "for", "with", "new", "great", "special", "one"}
# offer terms a rep may not bring in unless the knowledge base has them (every word, by stem)
_OFFER_TERMS = (
    "free trial",
    "trial period",
    "cashback",
    "cash back",
    "money back",
    "voucher",
    "gift card",
    "bundle",
    "buy one get one",
    "bogo",
    "loyalty points",
    "reward points",
    "referral bonus",
    "sign-up bonus",
    "signup bonus",
    "welcome bonus",
    "setup fee",
    "free setup",
    "no commission",
    "commission free",
    "lifetime discount",
    "price lock",
    "price match",
    "early bird",
    "limited time",
    "introductory price",
    "introductory rate",
    "free month",
    "months free",
    "month free",
    "complimentary",
    "bonus",
    "free ad credit",
    "ad credits",
    "free credits",
    "rebate",
    "coupon code",
    "promo code",
    "discount code",
)
_OFFER_TERM_RE = re.compile(
    r"\b(?:" + "|".join(re.escape(t).replace(r"\ ", r"[\s-]+") for t in _OFFER_TERMS) + r")\b",
    re.IGNORECASE,
)
_ARITHMETIC = re.compile(
    r"\$?\d[\d,]*(?:\.\d+)?\s*(?:x|\u00d7|\*|times|\+)\s*\$?\d[\d,]*(?:\.\d+)?(?![\w.]*\s*%)",
    re.IGNORECASE,
)
_DECIMAL = re.compile(r"(?<![\w.$])\d+\.\d+(?![\w.]|\s*%)")
# a count of offer items ("14 free trials", "3 extra vouchers", "two bonus months"): the count and
# the item must stand together in the knowledge base ("two months free" holds "2 month"; a
# "14-day free trial" holds no "14 trial")
_OFFER_COUNT = re.compile(
    r"\b(\d+)\s+(?:(?:free|extra|bonus|complimentary|additional)\s+)+([a-z]+?)s?\b"
    r"(?:[\s-]+(day|week|month|year)s?\b)?",
    re.IGNORECASE,
)


def _stem_set(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z0-9]+", text.lower())}


def _kb_names(product: Product) -> str:
    """Names a rep may say: the product, its plans, the platform, and all knowledge-base text."""
    names = [product.name, product.platform, *(p["name"] for p in product.plans)]
    return (" ".join(names) + " " + product.kb_text()).lower()


def _kb_decimals(product: Product, merchant: Any) -> set[float]:
    values = {float(x) for x in re.findall(r"\d+\.\d+|\d+", product.kb_text().replace(",", ""))}
    for source in (getattr(merchant, "metrics", None), getattr(merchant, "peer_medians", None)):
        values |= {round(float(v), 1) for v in (source or {}).values()}
    return values


_INTEGER = re.compile(r"(?<![\w.$,])(\d+)(?:st|nd|rd|th|s)?(?![\w%]|[.,]\d)", re.IGNORECASE)
_CHAT_UNIT = re.compile(
    r"^[\s-]*(?:minutes?|mins?|seconds?|secs?|hours?|hrs?|o'clock|a\.?m\b|p\.?m\b|-?line|"
    r"of (?:us|you|them)\b)",
    re.IGNORECASE,
)


@lru_cache(maxsize=64)
def _kb_normalized(text: str) -> str:
    """The knowledge-base text with number words as digits (`_normalize`), lower-cased; cached:
    the guard checks every reply against the same few products."""
    return _normalize(text)[0].lower()


@lru_cache(maxsize=64)
def _kb_numbers(text: str) -> frozenset[float]:
    """Every number of the knowledge-base text, digits and number words alike."""
    return frozenset(float(x) for x in re.findall(r"\d+(?:\.\d+)?", _kb_normalized(text)))


def _merchant_numbers(merchant: Any) -> set[float]:
    """The store's visible numbers as a rep says them (`simulator.fmt_metric`): counts as
    integers, rating and conversion to one decimal; and any number in its name or city."""
    out: set[float] = set()
    for source in (getattr(merchant, "metrics", None), getattr(merchant, "peer_medians", None)):
        for key, v in (source or {}).items():
            out.add(round(float(v), 1) if key in {"rating", "conversion"} else float(round(v)))
    for field_ in ("name", "city", "owner"):
        out |= {float(x) for x in re.findall(r"\d+", str(getattr(merchant, field_, "") or ""))}
    return out


def number_violations(text: str, product: Product, merchant: Any) -> list[Violation]:
    """Numbers outside money, percentages and durations that neither the knowledge base nor the
    store's visible data hold (see the module doc): ``wrong_number``."""
    text = text or ""
    return _number_violations(text, *_normalize(text), extract_facts(text)[1], product, merchant)


def _number_violations(
    text: str,
    norm: str,
    starts: list[int],
    ends: list[int],
    facts: list[Fact],
    product: Product,
    merchant: Any,
) -> list[Violation]:
    """`number_violations` on a text `fact_check` has already normalized and read."""
    allowed = _kb_numbers(product.kb_text()) | _merchant_numbers(merchant)
    out: list[Violation] = []
    for m in _INTEGER.finditer(norm):
        a, b = m.span(1)
        source = text[starts[a] : ends[b - 1]]
        if any(f.start <= a < f.end for f in facts) or source.lower() in {"one", "a"}:
            continue
        if _CHAT_UNIT.match(norm[m.end() :]):
            continue
        if re.search(r"\bat\s+$", norm[max(0, a - 4) : a], re.IGNORECASE) and int(m.group(1)) <= 12:
            continue  # a time of day: "call back at three"
        if float(m.group(1)) not in allowed:
            span = text[starts[m.start()] : ends[m.end() - 1]]
            out.append(
                Violation(
                    "wrong_number",
                    span,
                    f"{m.group(1)} is neither in the knowledge base nor the store's data",
                )
            )
    return out


# an offer's scope: "50% off the second month", "free for the next 2 months": the ordinal, count and
# unit must be the knowledge base's own ("the first month", "the first 3 months")
_OFFER_SCOPE = re.compile(
    r"\b(?:off|free|waived|discount\w*)\b[^.!?]{0,30}?\b(?:the|your)\s+"
    r"((?:first|second|third|fourth|fifth|sixth|next|last|1st|2nd|3rd|[4-9]th)\s+"
    r"(?:(?:\d+|two|three|four|five|six|twelve)\s+)?(?:day|week|month|year)s?)\b",
    re.IGNORECASE,
)
_COUNT_WORD = re.compile(r"\b(?:\d+|two|three|four|five|six|twelve)\b")


def _scope_words(text: str) -> str:
    """An offer period without its count and plural: "the first 3 months" -> "the first month"."""
    return " ".join(w.rstrip("s") for w in _COUNT_WORD.sub(" ", text.lower()).split())


@lru_cache(maxsize=64)
def _kb_scope_words(kb_text: str) -> str:
    return _scope_words(kb_text)


def offer_violations(text: str, product: Product, merchant: Any = None) -> list[Violation]:
    """Invented codes, named offers, offer terms, decimals and arithmetic (see the module doc)."""
    text = text or ""
    names = _kb_names(product) + " " + str(getattr(merchant, "name", "") or "").lower()
    kb_stems = _stem_set(names)
    out: list[Violation] = []
    codes = {m.group(0) for m in _CODE_WORD.finditer(text) if not _NOT_CODE.match(m.group(0))}
    codes |= {m.group(1) for m in _AFTER_CODE.finditer(text)}
    for code in sorted(codes):
        if code.lower() not in names:
            out.append(Violation("invented_code", code, f"{product.name} has no code {code!r}"))
    for m in _NAMED_OFFER.finditer(text):
        name = (m.group(1) or m.group(2) or "").strip()
        words = [w for w in name.split() if w.lower() not in _NAME_STOP]
        words = [w for k, w in enumerate(words) if k == 0 or w != words[k - 1]]  # "Growth Growth"
        if words and " ".join(words).lower() not in names:
            out.append(
                Violation("invented_offer", m.group(0), f"{product.name} has no offer {name!r}")
            )
    for m in _OFFER_TERM_RE.finditer(text):
        if not _stem_set(m.group(0)) <= kb_stems:
            out.append(Violation("invented_offer", m.group(0), f"not an offer of {product.name}"))
    for m in _ARITHMETIC.finditer(text):
        out.append(
            Violation(
                "invented_arithmetic", m.group(0), "arithmetic the knowledge base does not do"
            )
        )
    kb_norm = _kb_normalized(product.kb_text())
    norm, starts, ends = _normalize(text)
    for m in _OFFER_COUNT.finditer(norm):
        # "one free trial" is one offer (the offer-term rule checks the trial itself); in "14 free
        # trial days" the count is of days
        count, item = m.group(1), (m.group(3) or m.group(2)).lower()[:5]
        if count == "1":
            continue
        if not re.search(rf"\b{count}[\s-]+(?:\w+[\s-]+)?{re.escape(item)}", kb_norm):
            said = text[starts[m.start()] : ends[m.end() - 1]]
            out.append(Violation("invented_offer", said, f"{product.name} gives no {said!r}"))
    # counts are the duration rule's ("the first 6 months": wrong_duration); here the ordinal and
    # the unit: "the second month" where the knowledge base says "the first month"
    kb_text = _kb_scope_words(product.kb_text())
    for m in _OFFER_SCOPE.finditer(text):
        scope = _scope_words(m.group(1))
        if scope not in kb_text:
            out.append(
                Violation(
                    "invented_offer", m.group(0), f"{product.name}'s offer is not for {scope}"
                )
            )
    if merchant is not None:
        allowed = _kb_decimals(product, merchant)
        for m in _DECIMAL.finditer(text):
            if not any(abs(float(m.group(0)) - a) < 0.051 for a in allowed):
                out.append(
                    Violation(
                        "wrong_number",
                        m.group(0),
                        f"{m.group(0)} is neither in the knowledge base nor the store's data",
                    )
                )
    return out


def fact_check(text: str, product: Product, merchant: Any = None) -> list[Violation]:
    """Violations of the knowledge base in `text` (empty list = faithful). See the module doc.

    `merchant` (a MerchantProfile, optional) lets percentages that are the store's own metrics pass.
    """
    kb = _kb(product)
    norm, starts, ends = _normalize(text)
    _, facts = extract_facts(text)
    out: list[Violation] = []

    def span(a: int, b: int) -> str:
        return text[starts[a] : ends[b - 1]] if b > a else ""

    sentences = _sentences(norm)
    for f in facts:
        s = span(f.start, f.end)
        if f.kind == "money":
            if f.value not in kb.money:
                known = ", ".join(money(v) for v in sorted(kb.money))
                out.append(
                    Violation(
                        "wrong_price",
                        s,
                        f"{money(f.value)} is not a price of "
                        f"{product.name} (known amounts: {known})",
                    )
                )
            elif (
                f.period
                and f.value in kb.money_periods
                and f.period not in kb.money_periods[f.value]
            ):
                good = "/".join(sorted(kb.money_periods[f.value]))
                out.append(
                    Violation(
                        "wrong_period", s, f"{money(f.value)} is per {good}, not per {f.period}"
                    )
                )
        elif f.kind == "percent":
            a, b = next(((a, b) for a, b in sentences if a <= f.start < b), (0, len(norm)))
            if f.value in kb.percents:
                continue
            # the discount words must sit next to the number: "50% off", "co-funds 30% of"
            window = (
                re.split(r"[,:]", norm[max(a, f.start - 25) : f.start])[-1]
                + " "
                + re.split(r"[,:]", norm[f.end : min(b, f.end + 25)])[0]
            )
            if _DISCOUNT_CTX.search(window):
                out.append(
                    Violation(
                        "wrong_discount",
                        s,
                        f"{f.value:g}% is not a discount, share or deposit of {product.name}",
                    )
                )
            elif merchant is not None and round(f.value, 1) not in _merchant_percents(merchant):
                out.append(
                    Violation(
                        "wrong_number",
                        s,
                        f"{f.value:g}% is neither in the "
                        "knowledge base nor one of the store's metrics",
                    )
                )
        elif f.kind == "duration" and (f.value, f.unit) not in kb.durations:
            out.append(
                Violation(
                    "wrong_duration", s, f"{span(f.start, f.end)!r} is not a term of {product.name}"
                )
            )
    for m in _PROMISE_RE.finditer(norm):
        if m.group(0).lower() not in kb.kb_lower:
            out.append(
                Violation(
                    "forbidden_promise",
                    span(m.start(), m.end()),
                    "promises an outcome the knowledge base does not",
                )
            )
    for a, b in sentences:
        toks = re.findall(r"[a-z0-9]+", norm[a:b].lower())
        stems = {t[:5] if len(t) > 4 else t for t in toks}
        for claim, words in kb.claims:
            if (
                words
                and all(w in stems for w in words)
                and not any(
                    v.kind == "forbidden_promise" and starts[a] <= text.find(v.span) < ends[b - 1]
                    for v in out
                )
            ):
                out.append(
                    Violation(
                        "forbidden_promise",
                        span(a, b).strip(),
                        f"forbidden claim for {product.name}: {claim!r}",
                    )
                )
    taken = {v.span for v in out}
    out += [v for v in offer_violations(text, product, merchant) if v.span not in taken]
    if merchant is not None:
        taken = {v.span for v in out}
        inside = [v.span for v in out if v.kind in {"invented_code", "invented_arithmetic"}]
        out += [
            v
            for v in _number_violations(text, norm, starts, ends, facts, product, merchant)
            if v.span not in taken and not any(v.span in s for s in inside)
        ]
    return out
