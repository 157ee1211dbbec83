"""The latent-state telemarketing simulator behind the corpus (docs/DESIGN.md §2): schemas, personas,
the customer's dynamics (`CustomerSimulator`) and `simulate_corpus`.

Latent dynamics, shared by corpus generation and by later agents (DOGA, students) that talk to the
simulated customer with free text:

- `CustomerSimulator(merchant, product, seed)` keeps the hidden state of one call: interest in [0, 1]
  (starts at the merchant's latent interest, higher when the product solves one of its pain points),
  patience, which stages the rep has covered (opened, needs discovered, store data analyzed, product
  introduced), the open objection, if any, and the last customer act.
- `.expert_intent()` is the expert's move in that state: Opening first; Objection_Handling while an
  objection is open; Product_Introduction to answer a question; else the first uncovered stage of
  Needs_Discovery -> Business_Analysis -> Product_Introduction; then Operational_Guidance (the close)
  once the merchant is warm, else another Product_Introduction.
- `.step(agent_intent, faithful, personalized, is_expert_move=None)` applies one rep turn and returns
  the merchant's reply `(act, text, done, outcome)`. A turn is good when it is the expert move (by
  default: `agent_intent == expert_intent()`), faithful to the knowledge base, and personalized where
  the intent calls for it (Business_Analysis, Product_Introduction). Good turns raise interest, bad ones
  lower it and spend patience, both with noise; the act is drawn from the state, so the next act is a
  noisy signal of the turn's quality (good -> positive/question more often; bad -> neutral, objection,
  refusal, hang-up). A close (Operational_Guidance) is accepted with a probability rising with interest.
  `outcome` is None until `done`, then success | failure | hangup.

Customer acts are the plain strings of `ACTS`; an objection's type (one of `OBJECTION_TYPES`) is the
visible field `Turn.objection_type` (the merchant says it aloud), never folded into `act`.

One module although long: the schemas, the text banks, the realizer and the customer's dynamics
share one latent state and its seeded random streams; split apart, each part would reach into the
others' internals.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import FrozenInstanceError, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from salesman_utils.banks import DATA_DIR, check_personas, check_simulator_banks, read_yaml
from salesman_utils.world.factcheck import fact_check
from salesman_utils.world.knowledge import Product, load_products

INTENTS = [
    "Opening",
    "Needs_Discovery",
    "Business_Analysis",
    "Product_Introduction",
    "Objection_Handling",
    "Operational_Guidance",
]
ACTS = ["question", "objection", "positive", "neutral", "refusal", "hangup", "agreement"]
OUTCOMES = ["success", "failure", "hangup"]
SKILLS = ["novice", "intermediate", "expert"]
PERSONALIZATION_DUE = frozenset({"Business_Analysis", "Product_Introduction"})  # data lines exist
# The opening register that fits each decision style (agent_templates.yaml: Opening.brief/.warm).
OPENING_REGISTER = {
    "busy": "brief",
    "analytical": "brief",
    "impulsive": "brief",
    "relational": "warm",
    "skeptical": "warm",
}
METRICS = ["monthly_orders", "rating", "exposure", "conversion"]


@dataclass
class _Dashboard:
    """The fields a rep sees of a merchant (its dashboard); shared by the profile and its view."""

    id: str
    name: str
    owner: str
    category: str
    city: str
    metrics: dict[str, float]
    peer_medians: dict[str, float]


@dataclass
class MerchantProfile(_Dashboard):
    """A merchant. `LATENT_MERCHANT_FIELDS` are hidden (never shown to a rep, model or reward)."""

    pain_points: list[str] = field(default_factory=list)
    budget_sensitivity: str = "medium"
    decision_style: str = "relational"
    objection_repertoire: list[str] = field(default_factory=list)
    initial_interest: float = 0.4
    patience: float = 5.0

    def visible(self) -> VisibleMerchant:
        """The dashboard view an agent gets (`visible_merchant`)."""
        return visible_merchant(self)


LATENT_MERCHANT_FIELDS = (
    "pain_points",
    "budget_sensitivity",
    "decision_style",
    "objection_repertoire",
    "initial_interest",
    "patience",
)


@dataclass
class VisibleMerchant(_Dashboard):
    """What a rep sees of a merchant (the dashboard): the visible fields of `MerchantProfile` only.
    Every agent-side code path gets this view (`visible_merchant`); reading a latent field from it
    raises AttributeError, and it is read-only (a sibling of `MerchantProfile`, not a parent: a
    full profile is never an instance of it)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sealed", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_sealed", False):
            raise FrozenInstanceError(f"VisibleMerchant is read-only: cannot set {name!r}")
        object.__setattr__(self, name, value)

    def visible(self) -> VisibleMerchant:
        return self


def visible_merchant(merchant: MerchantProfile | VisibleMerchant) -> VisibleMerchant:
    """The dashboard view of a merchant (a copy of its visible fields; metrics copied too)."""
    if isinstance(merchant, VisibleMerchant):
        return merchant
    return VisibleMerchant(
        merchant.id,
        merchant.name,
        merchant.owner,
        merchant.category,
        merchant.city,
        dict(merchant.metrics),
        dict(merchant.peer_medians),
    )


@dataclass
class AgentProfile:
    """A sales rep; `skill` is visible, the three rates are latent."""

    id: str
    name: str
    skill: str
    right_move: float = 0.7
    personalize: float = 0.7
    faithful: float = 0.9


LATENT_AGENT_FIELDS = ("right_move", "personalize", "faithful")


@dataclass
class Turn:
    """One utterance. Agent turns set `intent`, customer turns `act` (and `objection_type` for an
    objection). `hidden` is ground truth for evaluation only (agent: quality, expert_intent,
    expert_text, violations, ...)."""

    speaker: str
    text: str
    intent: str | None = None
    act: str | None = None
    hidden: dict[str, Any] = field(default_factory=dict)
    objection_type: str | None = None


@dataclass
class Dialogue:
    id: str
    product_id: str
    merchant: MerchantProfile
    agent: AgentProfile
    turns: list[Turn]
    outcome: str


BANK_FILES = (
    "personas",
    "agent_templates",
    "agent_templates_heldout",
    "customer_templates",
    "unfaithful_forms",
)


@lru_cache(maxsize=8)
def load_bank(name: str) -> Any:
    """One bank of data/ (read once); a YAML error names the file and line (`banks.read_yaml`).
    The personas bank is checked here, the others with it in `load_banks`."""
    path = DATA_DIR / f"{name}.yaml"
    data = read_yaml(path)
    return check_personas(data, path, bank_uses()) if name == "personas" else data


@lru_cache(maxsize=1)
def load_banks() -> dict[str, Any]:
    """The persona and template banks of data/ (read once), checked for every entry the simulator
    looks up (`banks.check_simulator_banks`: a missing act, variant or field is a `DataBankError`
    naming the file and the entry). `agent_templates_heldout` is the held-out rep bank: only the
    hidden expert reference and the referee's perception use it."""
    banks = {name: load_bank(name) for name in BANK_FILES}
    files = {name: DATA_DIR / f"{name}.yaml" for name in BANK_FILES}
    check_simulator_banks(banks, files, bank_uses())
    return banks


def bank_uses() -> dict[str, Any]:
    """The names the simulator looks up in the banks, for `banks.check_simulator_banks`."""
    return {
        "intents": INTENTS,
        "acts": ACTS,
        "topics": list(QUESTION_MOVES),
        "styles": list(OPENING_REGISTER),
        "metrics": METRICS,
        "skills": SKILLS,
        "agent_fields": LATENT_AGENT_FIELDS,
    }


# ---------------------------------------------------------------- personas


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def metric_ratios(merchant: MerchantProfile) -> dict[str, float]:
    """Store metric / peer median (rating as a difference scaled to a comparable ratio)."""
    m, p = merchant.metrics, merchant.peer_medians
    out = {k: m[k] / p[k] for k in ("monthly_orders", "exposure", "conversion")}
    out["rating"] = 1.0 + (m["rating"] - p["rating"]) / 1.5
    return out


def sample_merchant(rng: np.random.Generator, idx: int) -> MerchantProfile:
    bank = load_banks()["personas"]
    cat = str(rng.choice(list(bank["categories"]), p=[0.45, 0.25, 0.30]))
    c = bank["categories"][cat]
    peer = {k: float(v) * float(rng.lognormal(0, 0.08)) for k, v in c["peer"].items()}
    peer["rating"] = round(min(4.9, c["peer"]["rating"] + float(rng.normal(0, 0.05))), 1)
    metrics = {k: peer[k] * float(rng.lognormal(0, 0.35)) for k in ("monthly_orders", "exposure")}
    metrics["conversion"] = peer["conversion"] * float(rng.lognormal(0, 0.3))
    metrics["rating"] = round(float(np.clip(peer["rating"] + rng.normal(-0.1, 0.3), 3.5, 5.0)), 1)
    for d in (metrics, peer):
        d["monthly_orders"] = float(round(d["monthly_orders"]))
        d["exposure"] = float(round(d["exposure"], -2))
        d["conversion"] = round(d["conversion"], 1)
    m = MerchantProfile(
        id=f"m{idx:05d}",
        name=f"{rng.choice(c['name_first'])} {rng.choice(c['name_second'])}",
        owner=str(rng.choice(bank["owners"])),
        category=cat,
        city=str(rng.choice(bank["cities"])),
        metrics=metrics,
        peer_medians=peer,
    )
    by_metric = {v["metric"]: k for k, v in bank["pain_points"].items() if v["metric"]}
    ratios = metric_ratios(m)
    lagging = sorted((r, k) for k, r in ratios.items() if r < 0.9)
    pains = [by_metric[k] for _, k in lagging]
    pains += [p for p in c["extra_pains"] if rng.random() < 0.4]
    if rng.random() < 0.3:
        pains.append("few_repeat_customers")
    m.pain_points = list(dict.fromkeys(pains)) or [by_metric[min(ratios, key=ratios.get)]]
    m.budget_sensitivity = str(rng.choice(bank["budget_sensitivity"], p=[0.25, 0.45, 0.30]))
    m.decision_style = str(rng.choice(list(bank["decision_styles"])))
    types = list(bank["objection_types"])
    w = np.array([3.0 if t == "price" and m.budget_sensitivity == "high" else 1.0 for t in types])
    k = int(rng.integers(2, 5))
    m.objection_repertoire = [
        str(t) for t in rng.choice(types, size=k, replace=False, p=w / w.sum())
    ]
    m.initial_interest = round(float(rng.beta(2.2, 3.0)), 3)
    m.patience = round(float(rng.uniform(3.0, 8.0)) - (1.5 if m.decision_style == "busy" else 0), 2)
    return m


def sample_agent(rng: np.random.Generator, idx: int) -> AgentProfile:
    bank = load_banks()["personas"]["agents"]
    skills = bank["skills"]
    skill = str(rng.choice(SKILLS, p=[skills[s]["share"] for s in SKILLS]))
    rates = {
        k: float(np.clip(skills[skill][k] + rng.normal(0, 0.04), 0.05, 0.99))
        for k in LATENT_AGENT_FIELDS
    }
    return AgentProfile(id=f"a{idx:03d}", name=str(rng.choice(bank["names"])), skill=skill, **rates)


def product_fit(merchant: MerchantProfile, product: Product) -> bool:
    return bool(set(merchant.pain_points) & set(product.solves))


def eligible_products(merchant: MerchantProfile, products: dict[str, Product]) -> list[Product]:
    return [p for p in products.values() if merchant.category in p.merchant_categories]


# ---------------------------------------------------------------- text realization

_FILLERS = ["uh", "um", "you know", "like", "I mean", "so"]
_PROMISES = [
    "I can guarantee your orders will go up.",
    "Honestly, it will double your orders.",
    "And it's completely risk-free for you.",
    "You will definitely get more customers, I guarantee it.",
]


def disfluent(text: str, rng: np.random.Generator) -> str:
    """ASR-like noise: a filler or a repeated word, lower case, dropped final period. Never touches
    a number or the word after it, so the facts survive."""
    words = text.split()
    safe = [
        i
        for i in range(1, len(words))
        if words[i][:1].isalpha() and not any(ch.isdigit() for ch in words[i - 1])
    ]
    if safe:
        i = int(rng.choice(safe))
        if rng.random() < 0.6:
            words.insert(i, str(rng.choice(_FILLERS)) + ",")
        elif words[i].isalpha() and len(words[i]) <= 6:
            words.insert(i, words[i])
    out = " ".join(words)
    if rng.random() < 0.5:
        out = out[:1].lower() + out[1:]
    return out.rstrip(".") if rng.random() < 0.5 else out


def fmt_metric(key: str, value: float) -> str:
    """A merchant metric the way reps say it (and the way the corpus, the script library and the
    DOGA prompts write it): rating in stars, conversion in percent, counts with thousands commas."""
    if key == "rating":
        return f"{value:.1f} stars"
    if key == "conversion":
        return f"{value:.1f}%"
    return f"{int(round(value)):,}"


class _Slots(dict):
    def __missing__(self, key: str) -> str:  # an unknown slot is a bank error: say which
        raise KeyError(f"template slot {{{key}}} is not defined (see data/agent_templates.yaml)")


class Realizer:
    """Fills the template banks for one call: agent turns (with planted generic/unfaithful
    variants) and customer replies."""

    def __init__(
        self,
        merchant: MerchantProfile,
        product: Product,
        agent_name: str = "Alex",
        rng: np.random.Generator | None = None,
    ):
        self.merchant, self.product = merchant, product
        self.rng = rng if rng is not None else np.random.default_rng(0)
        banks = load_banks()
        self.agent_bank, self.customer_bank = banks["agent_templates"], banks["customer_templates"]
        self.heldout_bank, self.forms = banks["agent_templates_heldout"], banks["unfaithful_forms"]
        self.personas = banks["personas"]
        self.plan = product.plans[int(self.rng.integers(len(product.plans)))]
        cat = self.personas["categories"][merchant.category]
        ratios = metric_ratios(merchant)
        gap = self._gap = min(ratios, key=ratios.get)
        m, p = merchant.metrics, merchant.peer_medians
        label = self.personas["metrics"]
        self.base = {
            "owner": merchant.owner,
            "store": merchant.name,
            "agent": agent_name,
            "platform": product.platform,
            "noun": cat["noun"],
            "plural": cat["plural"],
            "product": product.name,
            "summary": product.summary,
            "plan": self.plan["name"],
            "price": f"${self.plan['price']:g}",
            "period": self.plan["period"],
            "promo": product.promotion["headline"],
            "promo_terms": product.promotion["terms"],
            "eligibility": product.eligibility[0],
            "pain": self.personas["pain_points"][merchant.pain_points[0]]["rep"],
            "gap_label": label[gap]["label"],
            "gap_value": fmt_metric(gap, m[gap]),
            "gap_peer": fmt_metric(gap, p[gap]),
            "orders": fmt_metric("monthly_orders", m["monthly_orders"]),
            "peer_orders": fmt_metric("monthly_orders", p["monthly_orders"]),
            **{k: fmt_metric(k, m[k]) for k in ("rating", "exposure", "conversion")},
            **{f"peer_{k}": fmt_metric(k, p[k]) for k in ("rating", "exposure", "conversion")},
        }

    def _templates(
        self, intent: str, personalized: bool, objection: str | None, heldout: bool = False
    ) -> list[str]:
        bank = self.heldout_bank[intent] if heldout else self.agent_bank[intent]
        if intent == "Business_Analysis":  # off-target: the same lines about another metric
            lines = bank["personalized"]
            return lines if personalized else [t.replace("{gap_", "{other_") for t in lines]
        if intent == "Product_Introduction":
            return bank["personalized" if personalized else "generic"]
        if intent == "Opening":  # the register that fits the merchant, or the other one
            right = OPENING_REGISTER[self.merchant.decision_style]
            return bank[right if personalized else ({"brief", "warm"} - {right}).pop()]
        if intent == "Objection_Handling":
            if objection:  # the answer to this objection, or a stock reply
                return bank[objection] if personalized else bank["generic"]
            # no open objection: answers a concern nobody raised (a wrong-moment turn), most often
            # one this merchant might have
            return (
                bank["generic"]
                if self.rng.random() < 0.25
                else bank[str(self.rng.choice(self.merchant.objection_repertoire))]
            )
        return bank["any"]

    def _wrong(self, slots: dict[str, str], template: str) -> None:
        """Plant one subtly wrong number in the slots the template uses."""
        kb_money = {float(p["price"]) for p in self.product.plans}
        if "{price}" in template and ("{promo}" not in template or self.rng.random() < 0.6):
            base = float(self.plan["price"])
            options = [v for v in (base + 10, base - 10, base + 20, base + 5) if v not in kb_money]
            slots["price"] = f"${float(self.rng.choice(options)):g}"
        elif "{promo}" in template:
            head = self.product.promotion["headline"]
            nums = [m for m in re.finditer(r"\d+", head)]
            m = nums[int(self.rng.integers(len(nums)))]
            n = int(m.group(0))
            if head[m.end() : m.end() + 1] == "%":
                new = n + int(self.rng.choice([-10, 10]))
            elif head[max(0, m.start() - 1) : m.start()] == "$":
                new = n + 50
            else:  # a duration: one more month, or a longer trial
                new = n + 1 if n < 10 else {14: 30}.get(n, 2 * n)
            slots["promo"] = head[: m.start()] + str(new) + head[m.end() :]

    def _pick(self, lines: list[str]) -> str:
        return lines[int(self.rng.integers(len(lines)))]

    def _gap_pct(self) -> int:
        m, p = self.merchant.metrics[self._gap], self.merchant.peer_medians[self._gap]
        return max(1, int(round(100 * (1 - m / p)))) if p else 1

    def agent_line(
        self,
        intent: str,
        personalized: bool = True,
        faithful: bool = True,
        objection: str | None = None,
        *,
        heldout: bool = False,
        subtle_share: float = 0.0,
        suspicious_rate: float = 0.0,
    ) -> tuple[str, str | None]:
        """One rep utterance and how it is unfaithful (None when faithful).

        Unfaithful turns take one of three forms: ``number`` (a wrong price/promotion number in the
        template), ``promise`` (a forbidden promise appended, when the template carries no number to
        get wrong), or, with probability `subtle_share`, ``subtle`` (a misstatement from
        data/unfaithful_forms.yaml that a rule-based checker tends to miss). A faithful turn that
        states facts or store data carries a true but checker-tripping line with probability
        `suspicious_rate` (form ``suspicious``). `heldout` draws from the held-out bank."""
        templates = self._templates(intent, personalized, objection, heldout)
        subtle = not faithful and self.rng.random() < subtle_share
        if not faithful and not subtle:
            with_facts = [t for t in templates if "{price}" in t or "{promo}" in t]
            templates = with_facts or templates
        template = self._pick(templates)
        slots = _Slots(self.base)
        feats = self.product.features + self.plan.get("features", [])
        slots["feature"] = feats[int(self.rng.integers(len(feats)))]
        if "{other_" in template:
            other = self._pick([k for k in METRICS if k != self._gap])
            label = self.personas["metrics"][other]["label"]
            m, p = self.merchant.metrics, self.merchant.peer_medians
            slots["other_label"] = label
            slots["other_value"] = fmt_metric(other, m[other])
            slots["other_peer"] = fmt_metric(other, p[other])
        if not faithful and not subtle:
            self._wrong(slots, template)
        text = template.format_map(slots)
        text = text[:1].upper() + text[1:]
        forms = self.forms
        form: str | None = None
        if subtle:
            lines = forms["subtle"]["any"] + forms["subtle"].get(self.product.id, [])
            fake = [
                n for n in forms["fake_plans"] if n not in {p["name"] for p in self.product.plans}
            ]
            extra = self._pick(lines).format(fake_plan=self._pick(fake))
            text, form = f"{text} {extra}", "subtle"
        elif not faithful:
            form = "number"
            if not fact_check(text, self.product, self.merchant):
                text, form = f"{text} {self._pick(_PROMISES)}", "promise"
        elif suspicious_rate and self.rng.random() < suspicious_rate:
            if "{gap_value}" in template or "{gap_label}" in template:
                extra = self._pick(forms["suspicious"]["gap"]).format(
                    gap_pct=self._gap_pct(), plural=self.base["plural"]
                )
                text, form = f"{text} {extra}", "suspicious"
            elif "{price}" in template or "{promo}" in template:
                text, form = f"{text} {self._pick(forms['suspicious']['any'])}", "suspicious"
        return text, form

    def agent_text(
        self,
        intent: str,
        personalized: bool = True,
        faithful: bool = True,
        objection: str | None = None,
        *,
        heldout: bool = False,
    ) -> str:
        """One rep utterance (see `agent_line`; detectable unfaithful forms only)."""
        return self.agent_line(intent, personalized, faithful, objection, heldout=heldout)[0]

    def customer_text(
        self,
        rng: np.random.Generator,
        act: str,
        objection_type: str | None,
        after_discovery: bool = False,
        *,
        topic: str | None = None,
        soft: bool = False,
        cue: bool = False,
    ) -> str:
        """The merchant's words for `act`. A question is worded by its `topic` (product | process |
        proof), an objection by its type and by whether it is `soft`; `cue` opens the reply with a
        line that shows the merchant's decision style. None of these is labelled in the corpus."""
        cb = self.customer_bank
        if act == "objection" and objection_type:
            bank = cb["objection_soft" if soft else "objection"][objection_type]
        elif act == "question":
            bank = cb["question"][topic or "product"]
        else:
            bank = cb[act if act != "objection" else "neutral"]
        slots = {
            "price": self.base["price"],
            "product": self.product.name,
            "store": self.merchant.name,
            "agent": self.base["agent"],
            "platform": self.product.platform,
        }
        text = bank[int(rng.integers(len(bank)))].format_map(slots)
        if after_discovery and act in {"positive", "neutral", "question"}:
            pain = self.merchant.pain_points[int(rng.integers(len(self.merchant.pain_points)))]
            said = self.personas["pain_points"][pain]["customer"]
            line = said[int(rng.integers(len(said)))]
            text = f"{line[:1].upper()}{line[1:]}. {text}"
        if cue:
            cues = cb["style_cues"][self.merchant.decision_style]
            text = f"{cues[int(rng.integers(len(cues)))]} {text}"
        return text


# ---------------------------------------------------------------- customer dynamics


# What each decision style needs to hear before the pitch, in order (the expert's stage plan), and
# the by-the-book plan a rep follows when not reading the merchant (the same for everyone).
STAGE_PLANS: dict[str, tuple[str, ...]] = {
    "analytical": ("Needs_Discovery", "Business_Analysis", "Product_Introduction"),
    "skeptical": ("Business_Analysis", "Needs_Discovery", "Product_Introduction"),
    "impulsive": ("Needs_Discovery", "Product_Introduction"),
    "busy": ("Product_Introduction",),
    "relational": (
        "Needs_Discovery",
        "Needs_Discovery",
        "Business_Analysis",
        "Product_Introduction",
    ),
}
SCRIPT_PLAN = STAGE_PLANS["analytical"]
# A question's topic (said, never labelled) -> the move that answers it.
QUESTION_MOVES = {
    "product": "Product_Introduction",
    "process": "Operational_Guidance",
    "proof": "Business_Analysis",
}
# The style that needs its own numbers in a pitch (for the others a plain pitch is good).
DATA_STYLES = frozenset({"analytical"})


class CustomerSimulator:
    """One simulated merchant on one call (see the module doc for the dynamics)."""

    def __init__(
        self,
        merchant: MerchantProfile,
        product: Product,
        seed: int | Any = 0,
        *,
        max_turns: int = 12,
        disfluency: float = 0.0,
    ):
        self.merchant, self.product = merchant, product
        self.rng = np.random.default_rng(seed)
        self.max_turns = max_turns
        self.disfluency = disfluency
        self.style = load_banks()["personas"]["decision_styles"][merchant.decision_style]
        self.interest = float(
            np.clip(
                merchant.initial_interest + (0.12 if product_fit(merchant, product) else -0.05),
                0,
                1,
            )
        )
        self.patience = float(merchant.patience)
        self.stages: Counter[str] = Counter()  # stages covered (Business_Analysis: personalized)
        self.pending: str | None = None
        self.pending_soft = False
        self.topic: str | None = None
        self.last_act: str | None = None
        self.raised: list[str] = []
        self.n_agent_turns = 0
        self.refusals = 0
        self.done = False
        self.outcome: str | None = None
        self.last_objection_type: str | None = None
        self.last_quality: int | None = None
        self._realizer = Realizer(merchant, product, rng=np.random.default_rng(0))

    @property
    def introduced(self) -> bool:
        return self.stages["Product_Introduction"] > 0

    def _next_stage(self, plan: tuple[str, ...]) -> str | None:
        left = Counter(self.stages)
        for stage in plan:
            if left[stage] > 0:
                left[stage] -= 1
            else:
                return stage
        return None

    def _plan_intent(self, plan: tuple[str, ...], reads_merchant: bool) -> str:
        if self.n_agent_turns == 0:
            return "Opening"
        if self.pending:
            if reads_merchant and self.pending_soft:  # a warm merchant testing: move forward
                return "Operational_Guidance" if self.introduced else "Product_Introduction"
            return "Objection_Handling"
        if self.last_act == "question":
            return (
                QUESTION_MOVES[self.topic or "product"]
                if reads_merchant
                else "Product_Introduction"
            )
        stage = self._next_stage(plan)
        if stage:
            return stage
        if self.interest >= 0.5 or self.last_act == "positive":
            return "Operational_Guidance"
        data_style = self.merchant.decision_style in DATA_STYLES
        return "Business_Analysis" if reads_merchant and data_style else "Product_Introduction"

    def expert_intent(self, history: list[Turn] | None = None) -> str:
        """The expert's move now, a function of the hidden state (`history` is accepted for
        symmetry; the state is kept internally):

        1. Opening on the first turn.
        2. An open objection: Objection_Handling, unless it is soft (a warm merchant testing the
           rep, said in softer words): then move forward (Product_Introduction before the pitch,
           Operational_Guidance after it).
        3. A question: answer its topic (product -> Product_Introduction, process ->
           Operational_Guidance, proof -> Business_Analysis).
        4. The next stage of the merchant's style's plan (`STAGE_PLANS`: busy merchants want the
           pitch at once, skeptical ones the numbers first, relational ones a second round of
           discovery, impulsive ones no analysis).
        5. Then the close (Operational_Guidance) once the merchant is warm (interest >= 0.5 or a
           positive reply), else more numbers for data-minded styles, another pitch for the rest.

        The decision style, the softness of an objection and a question's topic show only in the
        merchant's words; the visible intent/act sequence does not determine this move."""
        return self._plan_intent(STAGE_PLANS[self.merchant.decision_style], reads_merchant=True)

    def script_intent(self) -> str:
        """The by-the-book move of a rep who follows one script for every merchant (discovery,
        analysis, pitch, close; every objection answered, every question with the pitch): the
        best rule over the visible sequence, and the mistake a rep makes by not listening."""
        return self._plan_intent(SCRIPT_PLAN, reads_merchant=False)

    def personalization_due(self, intent: str) -> bool:
        """Must this move be adapted to the merchant? Business_Analysis always states the store's
        numbers; a pitch must for data-minded merchants (`DATA_STYLES`), a plain pitch is fine for
        the others; an Opening must take the register that fits the style (`OPENING_REGISTER`)."""
        if intent in {"Business_Analysis", "Opening"}:
            return True
        return intent == "Product_Introduction" and self.merchant.decision_style in DATA_STYLES

    def is_good(
        self,
        agent_intent: str,
        faithful: bool,
        personalized: bool,
        is_expert_move: bool | None = None,
    ) -> bool:
        right = agent_intent == self.expert_intent() if is_expert_move is None else is_expert_move
        return bool(
            right and faithful and (personalized or not self.personalization_due(agent_intent))
        )

    def step(
        self,
        agent_intent: str,
        faithful: bool = True,
        personalized: bool = True,
        is_expert_move: bool | None = None,
    ) -> tuple[str, str, bool, str | None]:
        """Apply one rep turn; return the merchant's (act, text, done, outcome)."""
        if self.done:
            raise RuntimeError("the call is over; create a new CustomerSimulator")
        if agent_intent not in INTENTS:
            raise ValueError(f"agent_intent {agent_intent!r} is not one of {INTENTS}")
        expert = self.expert_intent()
        right = agent_intent == expert if is_expert_move is None else bool(is_expert_move)
        due = self.personalization_due(agent_intent)
        good = right and faithful and (personalized or not due)
        self.last_quality = int(good)
        rng = self.rng
        ignored = (
            self.pending
            if self.pending and not self.pending_soft and agent_intent != "Objection_Handling"
            else None
        )
        # stage bookkeeping: a stage counts as covered once done, even at the wrong moment
        if agent_intent != "Business_Analysis" or personalized:
            self.stages[agent_intent] += 1
        if self.pending:
            if agent_intent == "Objection_Handling":
                if rng.random() < (0.8 if good else 0.3 if not self.pending_soft else 0.6):
                    self.pending = None
            elif self.pending_soft and right:
                self.pending = None
        delta = float(rng.normal(0, 0.05))
        if good:
            delta += 0.07 + (0.03 if due else 0.0)
        elif not right:
            delta -= 0.09 if ignored or agent_intent == "Operational_Guidance" else 0.06
        elif due and not personalized:
            delta -= 0.04
        self.interest = float(np.clip(self.interest + delta, 0, 1))
        self.patience -= 0.4 if good else 1.0
        self.n_agent_turns += 1
        act = self._draw_act(agent_intent, good, ignored)
        return self._apply_act(act, ignored, agent_intent)

    def _draw_act(self, intent: str, good: bool, ignored: str | None) -> str:
        s, i = self.style, self.interest
        fresh = [t for t in self.merchant.objection_repertoire if t not in self.raised]
        can_object = bool(fresh) and intent in {
            "Business_Analysis",
            "Product_Introduction",
            "Operational_Guidance",
        }
        w = {
            "hangup": s["hangup"]
            * (
                0.02
                + (0.3 if self.patience <= 0 else 0.0)
                + (0.05 if not good else 0.0)
                + 0.15 * max(0.0, 0.3 - i)
            ),
            "refusal": 0.03 + 0.4 * max(0.0, 0.4 - i) + (0.07 if not good else 0.0),
            "objection": s["objection"]
            * ((0.22 + (0.12 if not good else 0.0)) if can_object else 0.0)
            + (0.35 if ignored else 0.0),
            "positive": s["positive"] * ((0.3 + 0.5 * i) if good else (0.08 + 0.2 * i)),
            "question": s["question"] * (0.22 if good else 0.12),
            "neutral": 0.25 if good else 0.45,
            "agreement": 0.0,
        }
        if intent == "Operational_Guidance":
            p = (
                _sigmoid((i - 0.6) * 10)
                * (1.0 if good else 0.5)
                * (1.0 if self.introduced else 0.3)
            )
            w["agreement"] = 3.0 * p
        keys = list(w)
        probs = np.array([w[k] for k in keys])
        return keys[int(self.rng.choice(len(keys), p=probs / probs.sum()))]

    def _apply_act(
        self, act: str, ignored: str | None, intent: str
    ) -> tuple[str, str, bool, str | None]:
        rng = self.rng
        self.last_objection_type = None
        soft = False
        if act == "objection":
            fresh = [t for t in self.merchant.objection_repertoire if t not in self.raised]
            kind = ignored if ignored and (not fresh or rng.random() < 0.6) else None
            if kind is None:
                p = np.array(
                    [
                        2.0 if t == "price" and self.merchant.budget_sensitivity == "high" else 1.0
                        for t in fresh
                    ]
                )
                kind = str(rng.choice(fresh, p=p / p.sum())) if fresh else "no_need"
            self.raised.append(kind)
            # a warm merchant's objection is a test, not a wall (high budget sensitivity keeps
            # a price objection firm)
            firm_price = kind == "price" and self.merchant.budget_sensitivity == "high"
            soft = self.interest >= 0.5 and not firm_price
            self.pending, self.pending_soft = kind, soft
            self.last_objection_type = kind
        elif act == "refusal":
            self.refusals += 1
            if self.interest < 0.3 or self.refusals >= 2:
                self.done, self.outcome = True, "failure"
            else:
                self.pending, self.pending_soft = "no_need", False  # a soft no to answer
        elif act == "hangup":
            self.done, self.outcome = True, "hangup"
        elif act == "agreement":
            self.done, self.outcome = True, "success"
        if act == "question":
            w = {"product": 0.3, "process": 0.45, "proof": 0.25} if self.introduced else None
            w = w or {"product": 0.5, "process": 0.2, "proof": 0.3}
            if self.merchant.decision_style in DATA_STYLES:
                w["proof"] *= 2
            keys = list(w)
            probs = np.array([w[k] for k in keys])
            self.topic = keys[int(rng.choice(len(keys), p=probs / probs.sum()))]
        else:
            self.topic = None
        if not self.done and self.n_agent_turns >= self.max_turns:
            self.done, self.outcome = True, "failure"
        self.last_act = act
        cue = act in {"question", "objection", "positive", "neutral"} and rng.random() < (
            0.75 if self.n_agent_turns == 1 else 0.2
        )
        text = self._realizer.customer_text(
            rng,
            act,
            self.last_objection_type,
            after_discovery=intent == "Needs_Discovery",
            topic=self.topic,
            soft=soft,
            cue=cue,
        )
        if self.disfluency and rng.random() < self.disfluency:
            text = disfluent(text, rng)
        return act, text, self.done, self.outcome


# ---------------------------------------------------------------- rep policy and corpus

_MISTAKES = {  # expert move -> the realistic wrong moves and their weights
    # pitching too early, closing too early, asking one question too many, lecturing with numbers
    # and answering objections nobody raised are all common; none of them dominates
    "Opening": {"Product_Introduction": 0.5, "Needs_Discovery": 0.3, "Operational_Guidance": 0.2},
    "Needs_Discovery": {
        "Product_Introduction": 0.35,
        "Operational_Guidance": 0.3,
        "Business_Analysis": 0.15,
        "Objection_Handling": 0.2,
    },
    "Business_Analysis": {
        "Product_Introduction": 0.35,
        "Operational_Guidance": 0.35,
        "Needs_Discovery": 0.15,
        "Objection_Handling": 0.15,
    },
    "Product_Introduction": {
        "Operational_Guidance": 0.45,
        "Needs_Discovery": 0.25,
        "Business_Analysis": 0.15,
        "Objection_Handling": 0.15,
    },
    "Objection_Handling": {
        "Product_Introduction": 0.35,
        "Operational_Guidance": 0.35,
        "Needs_Discovery": 0.15,
        "Business_Analysis": 0.15,
    },
    "Operational_Guidance": {
        "Product_Introduction": 0.35,
        "Needs_Discovery": 0.3,
        "Objection_Handling": 0.2,
        "Business_Analysis": 0.15,
    },
}


def choose_move(
    rng: np.random.Generator, agent: AgentProfile, expert: str, script: str | None = None
) -> tuple[str, bool, bool]:
    """The rep's (intent, faithful, personalized) given the expert move, the by-the-book `script`
    move and the rep's skill: the expert move with probability `right_move`; otherwise, most often,
    the script move when it differs (the rep did not read the merchant), else a typical mistake."""
    if rng.random() < agent.right_move:
        intent = expert
    elif script and script != expert and rng.random() < 0.6:
        intent = script
    else:
        options = _MISTAKES[expert]
        intent = str(rng.choice(list(options), p=list(options.values())))
    personalized = bool(rng.random() < agent.personalize)
    # facts are said in pitches, answers and closes: that is where wrong numbers slip in
    carries_facts = intent in {"Product_Introduction", "Objection_Handling", "Operational_Guidance"}
    p_wrong = (1 - agent.faithful) * (1.0 if carries_facts else 0.25)
    return intent, bool(rng.random() >= p_wrong), personalized


SUBTLE_SHARE = 0.3  # of unfaithful turns, the share said in a form the checker tends to miss
SUSPICIOUS_RATE = (
    0.04  # of faithful turns stating facts or store data: a true, checker-tripping line
)


def simulate_rep_call(
    merchant: MerchantProfile,
    agent: AgentProfile,
    product: Product,
    seed: Any,
    call_id: str,
    *,
    max_turns: int = 12,
    disfluency: float = 0.15,
    subtle_share: float = SUBTLE_SHARE,
    suspicious_rate: float = SUSPICIOUS_RATE,
) -> Dialogue:
    """One corpus call between a simulated rep (policy by skill) and a `CustomerSimulator` (an
    agent plays a call in `online.simulate_call`).

    Hidden per agent turn: `quality` (expert move, faithful, personalized where due),
    `expert_intent`, `expert_text` (written from the HELD-OUT bank), `faithful`, `unfaithful_form`
    (number | promise | subtle, or suspicious for a faithful turn that looks wrong), `bad_type`,
    `violations` (what `fact_check` finds: a detector, not the label), `personalization_due`."""
    rng = np.random.default_rng(seed)
    customer = CustomerSimulator(
        merchant, product, rng.integers(2**32), max_turns=max_turns, disfluency=disfluency
    )
    real = Realizer(merchant, product, agent_name=agent.name, rng=rng)
    turns: list[Turn] = []
    while not customer.done:
        expert = customer.expert_intent()
        intent, faithful, personalized = choose_move(rng, agent, expert, customer.script_intent())
        objection = customer.pending
        text, form = real.agent_line(
            intent,
            personalized=personalized,
            faithful=faithful,
            objection=objection,
            subtle_share=subtle_share,
            suspicious_rate=suspicious_rate,
        )
        if disfluency and rng.random() < disfluency:
            text = disfluent(text, rng)
        expert_text = real.agent_text(
            expert,
            personalized=True,
            faithful=True,
            objection=objection if expert == "Objection_Handling" else None,
            heldout=True,
        )
        violations = fact_check(text, product, merchant)
        due = customer.personalization_due(intent)
        quality = int(intent == expert and faithful and (personalized or not due))
        bad_type = (
            None
            if quality
            else (
                "wrong_moment" if intent != expert else "unfaithful" if not faithful else "generic"
            )
        )
        hidden = {
            "quality": quality,
            "expert_intent": expert,
            "expert_text": expert_text,
            "violations": [v.__dict__ for v in violations],
            "bad_type": bad_type,
            "faithful": faithful,
            "unfaithful_form": form,
            "personalized": personalized and intent in PERSONALIZATION_DUE,
            "personalization_due": due,
            "interest_before": round(customer.interest, 3),
        }
        turns.append(Turn("agent", text, intent=intent, hidden=hidden))
        act, ctext, _, _ = customer.step(intent, faithful, personalized)
        hidden["interest_after"] = round(customer.interest, 3)
        turns.append(
            Turn(
                "customer",
                ctext,
                act=act,
                objection_type=customer.last_objection_type,
                hidden={
                    "interest": round(customer.interest, 3),
                    "soft": customer.pending_soft if act == "objection" else None,
                    "topic": customer.topic,
                },
            )
        )
    return Dialogue(call_id, product.id, merchant, agent, turns, customer.outcome or "failure")


def simulate_corpus(
    n: int,
    seed: int = 0,
    *,
    disfluency: float = 0.15,
    max_turns: int = 12,
    products: dict[str, Product] | None = None,
    progress: bool = False,
) -> list[Dialogue]:
    """`n` calls, identical for the same `seed` (each call has its own generator from (seed, i)).

    Merchants (about 0.7 per call, so some are called about two products) and reps (one per 40
    calls, at least 6) are drawn first; each call picks a merchant, a rep and an eligible product,
    favoring products that solve one of the merchant's pain points, as a rep's call list would.
    """
    products = products or load_products()
    rng = np.random.default_rng([seed, 0])
    merchants = [sample_merchant(rng, i) for i in range(max(1, math.ceil(0.7 * n)))]
    agents = [sample_agent(rng, i) for i in range(max(6, n // 40))]
    calls = range(n)
    if progress:
        from tqdm.auto import tqdm

        calls = tqdm(calls, desc="simulate calls")
    out = []
    for i in calls:
        crng = np.random.default_rng([seed, 1, i])
        m = merchants[int(crng.integers(len(merchants)))]
        a = agents[int(crng.integers(len(agents)))]
        options = eligible_products(m, products)
        w = np.array([3.0 if product_fit(m, p) else 1.0 for p in options])
        prod = options[int(crng.choice(len(options), p=w / w.sum()))]
        out.append(
            simulate_rep_call(
                m,
                a,
                prod,
                [seed, 2, i],
                f"call-{seed}-{i:05d}",
                max_turns=max_turns,
                disfluency=disfluency,
            )
        )
    return out
