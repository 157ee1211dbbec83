"""Transparent checks of a reply against what the judge sees (the trained judge's rule half).

Everything here reads only the text of a judge item (`rubric.check_items`): the knowledge base as
rendered by `world.knowledge.product_facts_text`, the merchant dashboard line (`agent.prompts.merchant_text`),
the call so far and the reply. Nothing reads a hidden field, and nothing calls
`world.factcheck.fact_check`: DOGA's guard uses that checker, so a judge built on it would agree with the
guard by construction. These checks are our own, written for the judge:

- `kb_of(product_facts)`: the numbers (money, percentages, durations, other), plan names,
  product name and never-claims of a knowledge base given as text (any product, not only the
  corpus's: the hand-written validation pairs use products the corpus never saw);
- `reply_numbers(text)`: the numbers a reply states, typed by unit (number words read as digits);
  a bare number that reads as a dashboard metric (a decimal, or a digit next to a metric word
  such as rating, orders, views, reviews) must match the dashboard or the knowledge base whatever
  its size, while small counting words ("2 minutes", "one thing") stay fine;
- `never_overlap` / `denies`: a never-claim asserted by a sentence of the reply; a sentence that
  denies it ("we can't remove reviews") does not count;
- `check_reply(item)`: a dict of named, finite features (unsupported numbers of each kind, a plan
  the knowledge base does not have, unhedged promises, overlap with a never-claim, the merchant's
  own numbers and names, degenerate forms: empty, list or markup, meta text, a speaker label,
  an echo of the prompt, a monologue; pressure and rudeness words; length, questions).

Contract: `check_reply` never raises on text; every value is a float (counts, shares or 0/1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# ---------------------------------------------------------------- numbers

_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_WORD_VALUE = {w: i for i, w in enumerate(_UNIT_WORDS)}
_WORD_VALUE |= {w: 10 * (i + 2) for i, w in enumerate(_TENS_WORDS)}
_NUMBER_WORDS = re.compile(
    r"\b(?:(?:" + "|".join(_TENS_WORDS) + r")(?:[\s-](?:" + "|".join(_UNIT_WORDS[1:10]) + r"))?"
    r"|(?:" + "|".join(_UNIT_WORDS) + r"))(?:\s+hundred)?\b",
    re.I,
)
_NUM = r"\d[\d,]*(?:\.\d+)?"
_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
_MONEY = re.compile(rf"\$\s?({_NUM})|\b({_NUM})\s?(?:dollars|bucks|usd)\b", re.I)
_PERCENT = re.compile(rf"\b({_NUM})\s?(?:%|percent\b|per cent\b)", re.I)
_DURATION = re.compile(rf"\b({_NUM})[\s-]?(day|week|month|year)s?\b", re.I)
_ANY_NUMBER = re.compile(_NUM)
# words that make a bare number a dashboard metric (a rating, a count of orders or views...), as
# opposed to a small counting word ("2 minutes", "3 steps"); looked for a few words either side
_METRIC_WORDS = re.compile(
    r"\b(rating|rated|stars?|conversion|orders?|views?|exposure|visitors?|visits|reviews?"
    r"|customers?|sales|revenue|traffic|clicks?|impressions?|score|average)\b",
    re.I,
)


def _words_value(phrase: str) -> int:
    parts = re.split(r"[\s-]+", phrase.lower())
    total = sum(_WORD_VALUE.get(p, 0) for p in parts if p != "hundred")
    return total * 100 if "hundred" in parts else total


def normalize_numbers(text: str) -> str:
    """Number words as digits ("fourteen-day" -> "14-day"), "half price/off" as "50% off"."""
    text = re.sub(r"\bhalf[\s-](?:price|off)\b", "50% off", text, flags=re.I)
    text = re.sub(r"\b(a|one) and a half\b", "1.5", text, flags=re.I)
    return _NUMBER_WORDS.sub(lambda m: str(_words_value(m.group(0))), text)


def _value(s: str) -> float:
    return float(s.replace(",", ""))


@dataclass
class Numbers:
    """The numbers of a text by kind: money amounts, percentages, durations (in days), other."""

    money: set[float] = field(default_factory=set)
    percent: set[float] = field(default_factory=set)
    days: set[float] = field(default_factory=set)
    other: set[float] = field(default_factory=set)
    # the `other` numbers that read as a dashboard metric: a decimal ("4.2"), or a number next to
    # a metric word ("rating of 4", "9 reviews"); these must match the dashboard or the KB
    metric: set[float] = field(default_factory=set)

    def all(self) -> set[float]:
        return self.money | self.percent | self.other | {d for d in self.days}


def reply_numbers(text: str) -> Numbers:
    """Typed numbers of `text`; a number is counted once, under its most specific kind."""
    norm = normalize_numbers(text)
    digits = {_value(x) for x in _ANY_NUMBER.findall(text)}  # "one thing" is no metric
    out, taken = Numbers(), []
    for m in _MONEY.finditer(norm):
        out.money.add(_value(m.group(1) or m.group(2)))
        taken.append(m.span())
    for m in _PERCENT.finditer(norm):
        out.percent.add(_value(m.group(1)))
        taken.append(m.span())
    for m in _DURATION.finditer(norm):
        out.days.add(_value(m.group(1)) * _DAYS[m.group(2).lower()])
        taken.append(m.span())
    for m in _ANY_NUMBER.finditer(norm):
        if not any(a <= m.start() < b for a, b in taken):
            x = _value(m.group(0))
            out.other.add(x)
            near = norm[max(0, m.start() - 30) : m.end() + 25]
            if x != int(x) or (x in digits and _METRIC_WORDS.search(near)):
                out.metric.add(x)
    return out


# ---------------------------------------------------------------- the knowledge base as text


@dataclass(frozen=True)
class KB:
    product: str
    plans: frozenset[str]
    numbers: Numbers
    never: tuple[str, ...]
    text: str


@lru_cache(maxsize=256)
def kb_of(product_facts: str) -> KB:
    """What a knowledge base rendered by `world.knowledge.product_facts_text` allows."""
    lines = {
        ln.split(":", 1)[0]: ln.split(":", 1)[1] for ln in product_facts.splitlines() if ":" in ln
    }
    name = re.split(r"\s\(", lines.get("Product", "").strip(), maxsplit=1)[0]
    plans = frozenset(
        m.group(1).strip().lower()
        for part in lines.get("Plans", "").split(";")
        if (m := re.match(r"\s*([A-Za-z][\w +-]*?)\s+\$", part))
    )
    never = tuple(x.strip(" .") for x in lines.get("Never claim", "").split(";") if x.strip(" ."))
    return KB(name, plans, reply_numbers(product_facts), never, product_facts)


# ---------------------------------------------------------------- merchant data


@lru_cache(maxsize=1024)
def merchant_of(merchant_facts: str) -> tuple[frozenset[float], tuple[str, ...], frozenset[float]]:
    """(the dashboard's numbers, the store's and owner's names, the store's gaps to its peers in
    percent, as a rep would say them) from a `agent.prompts.merchant_text` line."""
    nums = [_value(x) for x in _ANY_NUMBER.findall(merchant_facts)]
    # `agent.prompts.merchant_text` starts "Dashboard: <store> (<category>, <city>), <owner>."; the
    # owner as "Mrs. Hartley" and as "Hartley"
    m = re.match(
        r"\s*(?:Merchant|Dashboard):\s*(.+?)\s*\(.*?\),\s*([^.]+(?:\.\s*\w+)?)\.", merchant_facts
    )
    names = tuple(x.strip() for x in m.groups()) if m else ()
    if len(names) == 2 and " " in names[1]:
        names += (names[1].split()[-1],)
    pairs = re.findall(rf"({_NUM})%?\s*\(peers\s*({_NUM})", merchant_facts)
    gaps: set[float] = set()
    for a, b in pairs:
        v, p = _value(a), _value(b)
        if v and p:
            for g in (100 * (1 - v / p), 100 * (p / v - 1), 100 * (v / p - 1), 100 * (1 - p / v)):
                if g > 0:
                    gaps |= {float(round(g)), float(round(g)) - 1, float(round(g)) + 1}
    return frozenset(nums), names, frozenset(gaps)


# ---------------------------------------------------------------- lexicons

# Unsubstantiated-claim words of sales compliance guides (not the simulator's line banks).
_PROMISE = re.compile(
    r"\b(guarantee[sd]?|promise[sd]?|my word|money[\s-]back|refund\w*|every (?:cent|penny)"
    r"|risk[\s-]free|no risk|can'?t lose|definitely|certainly|for sure|100%"
    r"|doubles?|triples?|pays? for itself|no catch|costs? (?:you )?nothing|on us|at no cost"
    r"|free of charge|no strings)\b",
    re.I,
)
_NEGATION = re.compile(
    r"\b(not|no(?!-)|never|cannot|can'?t|won'?t|don'?t|doesn'?t|isn'?t|aren'?t|nobody|nothing"
    r"|\w+n't)\b",
    re.I,
)
_PRESSURE = re.compile(
    r"\b(right now|today only|only today|last chance|before it'?s gone|act now|sign now"
    r"|decide (?:now|today|right)|immediately|hurry|you have to|you need to decide|don'?t think"
    r"|no time to|you'?d be (?:crazy|foolish|silly)|everyone else is|you'?ll regret|trust me"
    r"|stop (?:wasting|hesitating)|just sign|hear me out|let me finish|listen (?:to me )?now"
    r"|not taking no|lock (?:it|you) in|now or never)\b",
    re.I,
)
_RUDE = re.compile(
    r"\b(stupid|ridiculous|nonsense|wasting my time|whatever|obviously you|listen,? buddy"
    r"|calm down|you people|are you serious|clueless|lazy|buddy|pal|mate|sweetheart"
    r"|champ|don'?t be (?:cheap|stubborn|silly)|whining|peanuts)\b",
    re.I,
)
_META = re.compile(
    r"(\bas an ai\b|language model|\bassistant\b|here is (?:a|the|my) (?:reply|response)"
    r"|\b(?:plan|reply|response|output)\s*:|\[[^\]]*\]|\{[^}]*\}|<[^>]+>|\*\*|#)",
    re.I,
)
_SPEAKER = re.compile(r"^\s*(merchant|customer|owner|rep|agent|salesperson|user)\s*:", re.I)
_FIELD = re.compile(r"\w\s*=\s*[\w$-]")
_LIST = re.compile(r"(^|\n)\s*(?:[-*\u2022]|\d+[.)])\s+")
_STOP = frozenset(
    "a an the to of for in on and or your you we it is are be will with that this our at by "
    "from as any all more".split()
)


def sentences(text: str) -> list[str]:
    """Sentence-ish chunks (on . ! ? ; and line breaks), never empty strings."""
    parts = re.split(r"(?<=[.!?;])\s+|\n+", text.strip())
    return [p.strip() for p in parts if len(p.strip()) > 1]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9$%]+", text.lower())


def _content(text: str) -> set[str]:
    return {w[:5] for w in _words(text) if w not in _STOP and len(w) > 2}


def _ngram_share(reply: str, source: str, n: int = 4) -> float:
    w, s = _words(reply), _words(source)
    grams = {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}
    if not grams:
        return 0.0
    src = {tuple(s[i : i + n]) for i in range(len(s) - n + 1)}
    return len(grams & src) / len(grams)


def denies(sentence: str, claim: str) -> bool:
    """Whether `sentence` denies `claim` rather than asserting it: it has more negations than the
    claim itself, before the claim's last word it repeats ("We can't remove reviews" vs "bad
    reviews are removed"; "you'll never run out" vs "you will never run out of stock" is an
    assertion)."""
    own = len(_NEGATION.findall(claim))
    stems = _content(claim)
    ends = [
        m.end()
        for m in re.finditer(r"[A-Za-z0-9$%']+", sentence)
        if m.group(0).lower()[:5] in stems
    ]
    # the negation must come before the claim's last word the sentence repeats: "it places the
    # orders automatically, so you never have to think" asserts the claim
    head = sentence[: ends[-1]] if ends else sentence
    return len(_NEGATION.findall(head)) > own


def never_overlap(reply: str, never: tuple[str, ...]) -> float:
    """The largest share of a never-claim's content words that one sentence of `reply` asserts
    (a sentence that denies the claim does not count)."""
    best = 0.0
    for sent in sentences(reply):
        said = _content(sent)
        for c in never:
            if said and not denies(sent, c):
                best = max(best, len(_content(c) & said) / max(1, len(_content(c))))
    return best


def _promises(text: str) -> tuple[int, int]:
    """(unhedged promise words, hedged ones: 'I can't guarantee ...')."""
    hedged = plain = 0
    for m in _PROMISE.finditer(text):
        before = text[max(0, m.start() - 30) : m.start()]
        if m.group(0).lower() in {"no catch", "no risk", "no strings"}:
            plain += 1
        elif _NEGATION.search(before):
            hedged += 1
        else:
            plain += 1
    return plain, hedged


# ---------------------------------------------------------------- the features

CHECK_FEATURES = (
    "unsupported_money",
    "unsupported_percent",
    "unsupported_duration",
    "unsupported_other",
    "fake_plan",
    "promise",
    "hedged_promise",
    "never_claim_overlap",
    "merchant_numbers",
    "merchant_name",
    "product_name",
    "empty",
    "n_words",
    "long",
    "n_sentences",
    "question",
    "list_or_markup",
    "meta",
    "speaker_label",
    "echo_history",
    "echo_kb",
    "pressure",
    "rude",
)


def check_reply(item: Mapping[str, Any]) -> dict[str, float]:
    """The transparent features of one judge item's reply (see the module doc)."""
    reply = str(item.get("reply") or "")
    kb = kb_of(str(item.get("product_facts") or ""))
    mnums, names, gaps = merchant_of(str(item.get("merchant_facts") or ""))
    history = str(item.get("history") or "")
    said_in_call = reply_numbers(history).all()
    nums = reply_numbers(reply)
    kb_all = kb.numbers.all()
    merchant_ok = set(mnums) | set(gaps) | said_in_call
    money = {x for x in nums.money if x not in kb.numbers.money}
    percent = {x for x in nums.percent if x not in kb.numbers.percent | merchant_ok}
    days = {x for x in nums.days if x not in kb.numbers.days and x not in said_in_call}
    other = {
        x
        for x in nums.other
        # any size: a misstated 4.2 rating is as unfaithful as a misstated 1,240 orders; small
        # whole numbers that are not next to a metric word ("2 minutes", "3 steps") stay fine
        if x not in kb_all | merchant_ok and not 2000 <= x <= 2100 and (x > 12 or x in nums.metric)
    }
    plans = {
        m.group(1).lower() for m in re.finditer(r"\b([A-Z][a-z]+(?: [A-Z][a-z]+)?) plan\b", reply)
    }
    fake = {p for p in plans if p not in kb.plans and p.split()[-1] not in kb.plans}
    plain, hedged = _promises(reply)
    words = _words(reply)
    overlap = never_overlap(reply, kb.never)
    low = reply.lower()
    return {
        "unsupported_money": float(len(money)),
        "unsupported_percent": float(len(percent)),
        "unsupported_duration": float(len(days)),
        "unsupported_other": float(len(other)),
        "fake_plan": float(len(fake)),
        "promise": float(plain),
        "hedged_promise": float(hedged),
        "never_claim_overlap": float(overlap),
        # the dashboard's numbers in any form; the gaps to peers only as percentages
        "merchant_numbers": float(
            len({x for x in nums.all() if x in mnums} | {x for x in nums.percent if x in gaps})
        ),
        "merchant_name": float(any(n and n.lower() in low for n in names)),
        "product_name": float(bool(kb.product) and kb.product.lower() in low),
        "empty": float(not words),
        "n_words": float(min(len(words), 120)) / 40.0,
        "long": float(len(words) > 60),
        "n_sentences": float(min(len(sentences(reply)), 8)),
        "question": float("?" in reply),
        # a list, line breaks, or fields written as "key = value" (a data dump, not speech)
        "list_or_markup": float(
            bool(_LIST.search(reply)) or reply.count("\n") >= 2 or len(_FIELD.findall(reply)) >= 2
        ),
        "meta": float(bool(_META.search(reply))),
        "speaker_label": float(bool(_SPEAKER.search(reply))),
        "echo_history": _ngram_share(reply, history),
        "echo_kb": _ngram_share(reply, kb.text),
        "pressure": float(len(_PRESSURE.findall(reply))),
        "rude": float(len(_RUDE.findall(reply))),
    }


def findings(feats: Mapping[str, float]) -> str:
    """A short, human-readable list of what the checks found (the trained judge's rationale)."""
    keys = ("unsupported_money", "unsupported_percent", "unsupported_duration", "fake_plan")
    keys += ("promise", "list_or_markup", "meta", "speaker_label", "pressure", "rude", "empty")
    hits = [f"{k}={feats[k]:g}" for k in keys if feats.get(k)]
    if feats.get("echo_history", 0) > 0.5 or feats.get("echo_kb", 0) > 0.5:
        hits.append("echoes the prompt")
    return "; ".join(hits) or "no rule fired"
