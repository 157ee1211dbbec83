"""The trained offline judge: scores a reply in its context on the seven rubric metrics (1-10).

Referee side (docs/DESIGN.md §1): it reads hidden fields of the TRAINING split as labels, never
as inputs, and it scores only what a judge item shows (knowledge base, visible merchant data, the
call so far, the reply; `rubric.check_items`).

Design: a hybrid, because a small LLM and a cross-encoder trained on template text did not
generalize; whether it passes its validation is decided by notebook 05 on every run.

1. Transparent checks (`judge.checks.check_reply`): numbers, plans and promises against the
   knowledge base given in the item's text, the merchant's own numbers, degenerate forms. They are
   our own code, NOT `world.factcheck.fact_check`: DOGA's guard uses that checker, so a judge built on it
   would agree with the guard by construction.
2. Small learned parts over all-MiniLM-L6-v2 sentence embeddings (scikit-learn logistic
   regressions): the move a reply makes (the "move reader"), the merchant's last act (visible act
   labels), the expert move at this moment (hidden `expert_intent` as the label; it reads the
   merchant's last line and act, the rep's last move, how far the call is and the moves the rep
   has made so far), a claim detector (sentences the simulator appended to make a turn unfaithful
   vs sentences of faithful turns) and an unprofessional-sentence detector (`PRESSURE_LINES`,
   `RUDE_LINES`, `PUSHY_LINES` vs faithful rep sentences, the merchant's civil lines and
   `COURTEOUS_LINES`). Strategic fit is P(expert move) . P(reply move).
   The move reader is fitted on the judge-training half of the HELD-OUT bank only (hidden
   `expert_text` whose line `heldout_half` puts in 'train', labelled with its `expert_intent`),
   NOT on the visible bank's rep turns of the training split: the systems (SFT, GRPO) and DOGA's
   guard tagger learned from those, so a reader fitted there would share their view of what a
   move is. The expert-vs-novice check reads the other half (odd lines), never trained on.
3. One logistic head per metric over a named subset of 1 and 2, trained on examples the simulator
   gives for free: the rep's own turn (labels: hidden `faithful`, expert move or not, hidden
   quality, personalized where due), the hidden `expert_text` as a good reply when it was written
   from the TRAINING half of the held-out bank (`heldout_half`; the other half is kept for the
   expert-vs-novice check), replies swapped in from other calls and products and from another
   moment of the same call, degenerate replies (empty, an echo of the prompt, a list, meta text, a
   monologue, a line spoken as the merchant), pressure or rude add-ons and such lines alone, a
   courteous line alone (`COURTEOUS_LINES`, labelled professional). A
   metric's score is 1 + 9 * P(good).

The judge is pointwise: a reply's scores do not depend on the reply it is compared with or on the
order, so its pairwise verdicts cannot flip with the order (the flip check is n/a for it).

`load_or_train` caches the fitted judge under `artifacts/<profile>/judge/`, keyed by a hash of
the training data, the settings and the source of this module and of `judge.checks`; a checkpoint
trained for another rubric (metric names) is refused with a message.

One module although long: the encoder, the training examples, the model and its cache are one
artifact, and the cache key hashes this file (with `checks`).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from salesman_utils.artifacts import load_cached, reason
from salesman_utils.config import code_digest
from salesman_utils.judge.checks import (
    CHECK_FEATURES,
    check_reply,
    denies,
    findings,
    kb_of,
    sentences,
)
from salesman_utils.judge.rubric import METRICS, check_items
from salesman_utils.world.simulator import ACTS, INTENTS

MAX_SENTENCES = 6
# Synthetic unprofessional add-ons for the Professionalism head and its sentence detector: pressure,
# fake urgency, belittling, guilt, over-familiarity. Written for this module, apart from the
# validation pairs (data/judge_pairs.yaml) and from every line bank.
PRESSURE_LINES = (
    "You really need to decide right now, this won't come around again.",
    "Trust me, just sign today and stop overthinking it.",
    "Everyone else is already on it, you'd be foolish to wait.",
    "I can only hold this for the next hour, so it's now or never.",
    "Look, I don't have all day, are you in or not?",
    "If you hang up now you'll regret it next month, believe me.",
    "Just say yes and we'll sort out the details later.",
    "Give me two more minutes, you have to hear the rest of this.",
    "No, no, don't go yet, let me finish first.",
    "I'm not taking no for an answer on this one.",
    "I'll put you down for it and you can thank me later.",
    "We can skip the thinking part, I'll send the contract over now.",
    "Whatever your concern is, it doesn't matter, this is the deal of the year.",
    "I'll keep calling until you say yes, so we might as well do it now.",
    "Stay on the line, this is more important than whatever you're doing.",
    "You won't find a single reason to say no, so let's just lock it in.",
)
RUDE_LINES = (
    "Honestly, that's a ridiculous reason not to do it.",
    "Come on, you people always say that.",
    "Are you serious? It's obviously the right call.",
    "With numbers like yours I wouldn't be so picky, mate.",
    "That's a pretty naive way to run a business, if I'm honest.",
    "Other owners figured this out ages ago, what's taking you so long?",
    "Don't be stubborn, pal, it's a no-brainer.",
    "Sweetheart, let the grown-ups handle the numbers.",
    "Wow, no wonder your sales are so low.",
    "Don't be so tight with money, it's peanuts.",
    "Oh please, your accountant doesn't know what he's talking about.",
    "Yeah, yeah, I've heard that excuse a hundred times.",
    "Seriously, even a kid could see this makes sense.",
    "Buddy, nobody cares about your old supplier.",
    "That's a silly question, but fine, I'll explain it again.",
    "Hey champ, quit whining about the price.",
)
# More unprofessional forms (added for issue 14's second round, written for this module, not
# taken from any pair file): talking over a merchant who is busy, overriding a request, shaming the
# store's numbers, mocking a competitor or a past choice, curt orders.
PUSHY_LINES = (
    "I know you're swamped, but I'm going to walk you through the whole offer anyway.",
    "Hang on, don't go, this takes a second and then you can get back to it.",
    "Forget the brochure, I'll activate your account while we're talking.",
    "There's no need to check with anyone else, you can decide on your own right here.",
    "Just give me a straight answer so we can move on.",
    "Save your questions for the end, let me get through my part first.",
    "I'll go ahead and sign you up, you can always cancel if you hate it.",
    "You don't need to read anything, I'll handle the paperwork for you today.",
    "Honestly, numbers like that would worry me if I owned this place.",
    "Whoever sold you your current system clearly didn't know what they were doing.",
    "Your competitor down the street is laughing at these figures, you know.",
    "I've explained this twice now, try to keep up.",
    "Look, I do this all day, so just take my advice.",
    "Those reviews are pretty bad, you're not in a position to be choosy.",
    "That other company is a joke, everybody in the trade knows it.",
    "A shop that looks like this can't afford to turn anything down.",
)
# Courteous lines, the contrast of the two banks above: the unprofessional-sentence detector
# learns from them that an apology, a graceful exit or a request for permission is not rude
# (without them a short, personal line read as rude whatever it said). Written for this module.
COURTEOUS_LINES = (
    "Of course, I'll let you get back to your customers.",
    "Sorry for catching you at a busy moment, when would suit you better?",
    "That's completely fine, thank you for hearing me out.",
    "I understand, I won't take more of your time today.",
    "Fair enough, I'll send a short summary by email so you can look at it later.",
    "You're right to ask, happy to explain why I need that.",
    "No pressure at all, take the time you need to think it over.",
    "Thanks for telling me, I appreciate you being direct.",
    "My apologies, I didn't mean to rush you.",
    "Shall I call again next week, or would you rather I didn't?",
    "It makes sense to talk it through with your partner first.",
    "I'm sorry that happened with the last provider, that sounds frustrating.",
    "Absolutely, I'll put it in writing before you decide anything.",
    "Thank you, I'll make a note not to call during the lunch rush.",
    "Understood, and if anything changes you have my number.",
    "Good question, let me check so I give you the right answer.",
    "That matches what I'm seeing on my side too.",
    "Makes sense, thanks for explaining how it works for you.",
    "I hear you, and that's a fair point.",
    "Right, so the evenings are what matter most to you.",
    "That's helpful to know, thank you.",
    "Sounds like you've thought about this a lot already.",
    "I see what you mean about the weekends.",
    "Glad to hear the shop is doing well.",
    "You know your customers better than anyone.",
    "That's a reasonable worry, a lot of owners ask the same.",
    "Happy to go at whatever pace suits you.",
    "Let me know if I've got that wrong.",
    "If it helps, I can go over it again more slowly.",
    "Whatever you decide is fine by me.",
    "Thanks, that's exactly what I wanted to understand.",
    "Good to know, I'll keep that in mind.",
)
META_PREFIX = "As an AI assistant, here is a possible reply for the rep:"

# metric -> the features its head reads (check features + learned features; see `_features`)
HEAD_FEATURES: dict[str, tuple[str, ...]] = {
    "Faithfulness": (
        "unsupported_money", "unsupported_percent", "unsupported_duration", "unsupported_other",
        "fake_plan", "promise", "hedged_promise", "never_claim_overlap", "never_sim", "claim_p",
    ),
    "Persuasiveness": (
        "fit", "merchant_numbers", "product_name", "cos_merchant", "empty", "echo_history",
        "echo_kb", "question", "long", "claim_p", "pressure", "speaker_label",
    ),
    "Strategic_Fit": (
        "fit", "cos_merchant", "cos_last_rep", "empty", "echo_history", "echo_kb",
        "speaker_label", "pitch_after_refusal", "question",
    ),
    "Personalization": (
        "merchant_numbers", "merchant_name", "unsupported_other", "unsupported_percent", "empty",
        "p_analysis", "echo_kb", "echo_history",
    ),
    "Coherence": (
        "cos_merchant", "cos_last_rep", "cos_kb", "fit", "echo_history", "echo_kb",
        "speaker_label", "empty", "long", "unsupported_other",
    ),
    "Naturalness": (
        "n_words", "long", "n_sentences", "list_or_markup", "meta", "speaker_label",
        "echo_history", "echo_kb", "empty", "question",
    ),
    "Professionalism": (
        "pressure", "rude", "rude_p", "pitch_after_refusal", "meta", "empty", "speaker_label",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class JudgeSettings:
    """How the judge is trained. `max_contexts` training-split rep turns are sampled (embedding
    cost grows with it; 1,500 keeps training near 2-3 min on 2 CPU cores)."""

    max_contexts: int = 1500
    seed: int = 0
    C: float = 1.0
    embedder: str | None = None


# ---------------------------------------------------------------- embeddings


class Encoder:
    """Sentence embeddings with an in-process cache keyed by text (contexts repeat across the
    seven systems, sentences across calls)."""

    def __init__(self, embedder: str | None = None):
        self.embedder, self.cache = embedder, {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        from salesman_utils.models import _load_embedder, default_embedder_path

        todo = list(dict.fromkeys(t for t in texts if t and t not in self.cache))
        if todo:
            model = _load_embedder(self.embedder or str(default_embedder_path()), None)
            vecs = model.encode(
                todo, batch_size=64, normalize_embeddings=True, show_progress_bar=False
            )
            self.cache.update(zip(todo, np.asarray(vecs, np.float32), strict=True))
        dim = 384 if not self.cache else len(next(iter(self.cache.values())))
        zero = np.zeros(dim, np.float32)
        return np.stack([self.cache.get(t, zero) for t in texts]) if texts else np.zeros((0, dim))


def _asserts(item: Mapping[str, Any], n_sent: int) -> np.ndarray:
    """(sentences, never-claims) mask: 1 where the reply's sentence does not deny the claim."""
    sents = sentences(str(item["reply"]))[:n_sent]
    never = kb_of(str(item.get("product_facts") or "")).never
    return np.array([[0.0 if denies(s, c) else 1.0 for c in never] for s in sents])


def _mean_unit(vecs: np.ndarray) -> np.ndarray:
    v = vecs.mean(axis=0) if len(vecs) else vecs.sum(axis=0)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def _rep_lines(history: str) -> list[str]:
    """Every rep line of `history` text, in order."""
    out = []
    for line in history.splitlines():
        who, _, text = line.partition(":")
        if who.strip().lower() == "rep" and text.strip():
            out.append(text.strip())
    return out


def split_history(history: str) -> tuple[str, str, int]:
    """(the merchant's last line, the rep's last line, rep turns shown) from `history` text."""
    merchant = rep = ""
    n_rep = 0
    for line in history.splitlines():
        who, _, text = line.partition(":")
        if who.strip().lower() == "merchant":
            merchant = text.strip()
        elif who.strip().lower() == "rep":
            rep, n_rep = text.strip(), n_rep + 1
    return merchant, rep, n_rep


# ---------------------------------------------------------------- the judge


class TrainedJudge:
    """Fitted parts + `score_items(items, metrics) -> (scores (n, m) in [1, 10], rationales)`."""

    def __init__(self, settings: JudgeSettings):
        self.settings = settings
        self.metrics = tuple(METRICS)
        self.name = "trained-judge"
        self.encoder = Encoder(settings.embedder)
        self.parts: dict[str, Any] = {}
        self.heads: dict[str, Any] = {}
        self.train_note = ""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["encoder"] = None  # embeddings are recomputed; the model is loaded from the wheel
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.encoder = Encoder(self.settings.embedder)

    # -- features

    def _embed_items(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        sents = [sentences(str(it["reply"]))[:MAX_SENTENCES] for it in items]
        hist = [split_history(str(it.get("history") or "")) for it in items]
        kbs = [kb_of(str(it.get("product_facts") or "")) for it in items]
        never = [list(k.never) for k in kbs]
        heads = [str(it.get("product_facts") or "").split("\n")[0] for it in items]
        flat = [s for ss in sents for s in ss] + [h[0] for h in hist] + [h[1] for h in hist]
        flat += [c for cs in never for c in cs] + heads
        rep_lines = [_rep_lines(str(it.get("history") or "")) for it in items]
        flat += [r for rs in rep_lines for r in rs]
        self.encoder(flat)
        enc = self.encoder
        return {
            "sent": [enc(ss) if ss else np.zeros((0, 384), np.float32) for ss in sents],
            "merchant": enc([h[0] for h in hist]),
            "rep": enc([h[1] for h in hist]),
            "n_rep": np.array([h[2] for h in hist], float),
            "rep_lines": [enc(r) if r else np.zeros((0, 384), np.float32) for r in rep_lines],
            "never": [enc(cs) if cs else np.zeros((0, 384), np.float32) for cs in never],
            "kb": enc(heads),
        }

    def _context(self, e: Mapping[str, Any], p_act: np.ndarray, p_prev: np.ndarray) -> np.ndarray:
        """What the expert-move model reads: the merchant's last line and act, the rep's last
        move, how far the call is, and (the call so far) the moves the rep has already made."""
        k = len(self.parts["reply_intent"].classes_)
        done = [
            self.parts["reply_intent"].predict_proba(r).max(axis=0) if len(r) else np.zeros(k)
            for r in e["rep_lines"]
        ]
        n = np.minimum(e["n_rep"], 4)[:, None] / 4
        return np.hstack([e["merchant"], p_act, p_prev, n, np.stack(done)])

    def _features(self, items: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, list[dict]]:
        """(matrix of every named feature, the check dicts), one row per item."""
        e = self._embed_items(items)
        reply = np.stack([_mean_unit(s) for s in e["sent"]])
        p = self.parts
        p_reply = p["reply_intent"].predict_proba(reply)
        p_prev = p["reply_intent"].predict_proba(e["rep"])
        p_act = p["act"].predict_proba(e["merchant"])
        ctx = self._context(e, p_act, p_prev)
        p_expert = p["expert"].predict_proba(ctx)
        claim = [
            float(p["claim"].predict_proba(s)[:, 1].max()) if len(s) else 0.0 for s in e["sent"]
        ]
        rude = [float(p["rude"].predict_proba(s)[:, 1].max()) if len(s) else 0.0 for s in e["sent"]]
        never_sim = [  # a sentence that denies the never-claim does not count
            float(((s @ n.T) * _asserts(it, len(s))).max()) if len(s) and len(n) else 0.0
            for s, n, it in zip(e["sent"], e["never"], items, strict=True)
        ]
        checks = [check_reply(it) for it in items]
        acts, intents = list(p["act"].classes_), list(p["reply_intent"].classes_)
        pitch = p_reply[:, intents.index("Product_Introduction")]
        pitch = pitch + p_reply[:, intents.index("Operational_Guidance")]
        learned = {
            "fit": (p_expert * p_reply).sum(axis=1),
            "claim_p": np.array(claim),
            "never_sim": np.array(never_sim),
            "cos_merchant": (reply * e["merchant"]).sum(axis=1),
            "cos_last_rep": (reply * e["rep"]).sum(axis=1),
            "cos_kb": (reply * e["kb"]).sum(axis=1),
            "p_refusal": p_act[:, acts.index("refusal")],
            "pitch_after_refusal": p_act[:, acts.index("refusal")] * pitch,
            "p_analysis": p_reply[:, intents.index("Business_Analysis")],
            "rude_p": np.array(rude),
        }
        cols = {k: np.array([c[k] for c in checks], float) for k in CHECK_FEATURES}
        cols.update(learned)
        return np.column_stack([cols[k] for k in FEATURES]), checks

    def score_items(
        self, items: Sequence[Mapping[str, Any]], metrics: Sequence[str] = METRICS
    ) -> tuple[np.ndarray, list[str]]:
        """Scores (n items, len(metrics)) in [1, 10] and one rationale per item. Never fails on
        text; an unknown metric raises ValueError."""
        bad = [m for m in metrics if m not in self.heads]
        if bad:
            raise ValueError(f"trained judge: no head for {bad} (has {list(self.heads)})")
        if not items:
            return np.zeros((0, len(metrics))), []
        X, checks = self._features(check_items(items))
        out = np.column_stack(
            [1 + 9 * self.heads[m].predict_proba(X[:, _cols(m)])[:, 1] for m in metrics]
        )
        return out, [findings(c) for c in checks]


FEATURES = tuple(CHECK_FEATURES) + (
    "fit", "claim_p", "never_sim", "cos_merchant", "cos_last_rep", "cos_kb", "p_refusal",
    "pitch_after_refusal", "p_analysis", "rude_p",
)  # fmt: skip


def _cols(metric: str) -> list[int]:
    return [FEATURES.index(f) for f in HEAD_FEATURES[metric]]


# ---------------------------------------------------------------- held-out bank halves


@lru_cache(maxsize=1)
def _heldout_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(line id, a pattern matching every filling of the line) for each held-out bank line.
    Line id: ``intent/group/index``; slots match any text (off-target Business_Analysis lines
    swap slot names only, so they match their line's pattern too)."""
    from salesman_utils.world.simulator import load_banks

    out = []
    for intent, groups in load_banks()["agent_templates_heldout"].items():
        for group, lines in groups.items():
            for i, line in enumerate(lines):
                parts = re.split(r"\{[a-z_]+\}", line)
                pat = "(?:.+?)".join(re.escape(x) for x in parts)
                out.append((f"{intent}/{group}/{i}", re.compile(pat, re.I | re.S)))
    return tuple(out)


def heldout_line_id(text: str) -> str | None:
    """The held-out bank line a hidden `expert_text` was written from (None: no line fits)."""
    text = str(text).strip()
    return next((lid for lid, pat in _heldout_patterns() if pat.fullmatch(text)), None)


def heldout_half(text: str) -> str | None:
    """Which half of the held-out bank wrote `text`: 'train' (even line index in its group: the
    judge may learn from these as good replies) or 'validation' (odd index: kept for the
    expert-vs-novice check, never trained on); None when no line fits. The split is by line, so
    a judge that merely recognises the training half's wording gains nothing on validation."""
    lid = heldout_line_id(text)
    return (
        None if lid is None else ("train" if int(lid.rsplit("/", 1)[1]) % 2 == 0 else "validation")
    )


# ---------------------------------------------------------------- training data


def _view(d: Any, ctx: Any, reply: str) -> dict[str, Any]:
    from salesman_utils.judge.items import judge_view

    return judge_view(d, ctx, reply, "train", None)


def training_examples(
    dialogues: Sequence[Any], settings: JudgeSettings
) -> tuple[list[dict], list[dict[str, int | None]], dict[str, Any]]:
    """(judge items, per-item labels {metric: 1 | 0 | None}, raw material for the sub-models)
    from the TRAINING split. Hidden fields are read as labels only."""
    from salesman_utils.world.corpus import agent_turn_contexts
    from salesman_utils.world.simulator import PERSONALIZATION_DUE

    rng = np.random.default_rng(settings.seed)
    ctxs = [(d, c) for d in dialogues for c in agent_turn_contexts(d)]
    pick = rng.permutation(len(ctxs))[: settings.max_contexts]
    ctxs = [ctxs[i] for i in sorted(pick)]
    items: list[dict] = []
    labels: list[dict[str, int | None]] = []
    raw: dict[str, list] = {"rep": [], "intent": [], "merchant": [], "act": [], "claim": []}
    raw |= {"context": [], "expert": [], "move": []}

    def add(item: dict, **lab: int | None) -> None:
        items.append(item)
        labels.append({m: lab.get(m) for m in METRICS})

    kinds = ("empty", "echo_kb", "echo_history", "merchant_line", "list", "meta", "monologue")
    kinds += ("repeat",)
    for k, (d, c) in enumerate(ctxs):
        turn = d.turns[c.index]
        h = turn.hidden
        right = int(turn.intent == h["expert_intent"])
        due = turn.intent in PERSONALIZATION_DUE
        prev = d.turns[c.index - 1] if c.index else None
        pushy = int(
            prev is not None
            and prev.act == "refusal"
            and turn.intent in {"Product_Introduction", "Operational_Guidance"}
        )
        own = _view(d, c, turn.text)
        add(
            own,
            Faithfulness=int(h["faithful"]),
            Persuasiveness=int(h["quality"]),
            Strategic_Fit=right,
            Personalization=int(bool(h.get("personalized"))) if due else None,
            Coherence=1 if right else None,
            Naturalness=1,
            Professionalism=1 - pushy,
        )
        raw["rep"].append(turn.text)
        raw["intent"].append(turn.intent)
        raw["context"].append(own)
        raw["expert"].append(h["expert_intent"])
        if prev is not None:
            raw["merchant"].append(prev.text)
            raw["act"].append(prev.act)
        # the claim detector: appended unfaithful sentences vs sentences of faithful turns
        parts = sentences(turn.text)
        if h.get("unfaithful_form") in {"subtle", "promise"} and len(parts) > 1:
            raw["claim"].append((parts[-1], 1))
        elif h["faithful"]:
            raw["claim"] += [(s, 0) for s in parts[:2]]
        expert_due = h["expert_intent"] in PERSONALIZATION_DUE
        seen = heldout_half(h["expert_text"]) == "train"  # the validation half is never read
        expert_text = h["expert_text"] if seen else turn.text
        if seen:
            raw["move"].append((h["expert_text"], h["expert_intent"]))
            add(
                _view(d, c, h["expert_text"]),
                **{m: 1 for m in METRICS if m != "Personalization"},
                Personalization=1 if expert_due else None,
            )
        # a reply swapped in from another call (mostly another merchant and product)
        od, oc = ctxs[int(rng.integers(len(ctxs)))]
        if od.id != d.id:
            ot = od.turns[oc.index]
            nums = check_reply(_view(d, c, ot.text))
            wrong_facts = nums["unsupported_money"] + nums["unsupported_percent"]
            wrong_facts += nums["unsupported_duration"]
            add(
                _view(d, c, ot.text),
                Faithfulness=0 if od.product_id != d.product_id and wrong_facts else None,
                Persuasiveness=0,
                Strategic_Fit=0 if ot.intent != h["expert_intent"] else None,
                Personalization=0 if ot.hidden.get("personalized") else None,
                Coherence=0,
                Naturalness=1,
            )
        # a reply from another moment of the same call (same product and merchant): wrong for
        # this moment, though its facts may be right; teaches the heads to read the moment
        others = [t for t in d.turns if t.speaker == "agent" and t.intent != turn.intent]
        if others and k % 2 == 0:
            ot = others[int(rng.integers(len(others)))]
            add(
                _view(d, c, ot.text),
                Faithfulness=int(ot.hidden["faithful"]),
                Strategic_Fit=0 if ot.intent != h["expert_intent"] else None,
                Coherence=0 if ot.intent != h["expert_intent"] else None,
                Naturalness=1,
            )
        # one degenerate form per context, in turn
        kind = kinds[k % len(kinds)]
        nxt = d.turns[c.index + 1].text if c.index + 1 < len(d.turns) else "Okay."
        rep_lines = [t.text for t in d.turns if t.speaker == "agent"][:4]
        text = {
            "empty": "",
            "echo_kb": own["product_facts"],
            "echo_history": own["history"] or own["product_facts"],
            "merchant_line": ("Merchant: " if k % 2 else "") + nxt,
            "list": "\n".join(f"- {s}" for s in parts + sentences(expert_text)),
            "meta": f"{META_PREFIX} {turn.text}",
            "monologue": " ".join([*rep_lines, expert_text]),
            "repeat": c.history[-2].text if len(c.history) >= 2 else "",
        }[kind]
        zero = {m: 0 for m in ("Persuasiveness", "Strategic_Fit", "Coherence", "Naturalness")}
        if kind in {"empty", "echo_kb", "echo_history"}:
            zero["Personalization"] = 0
        if kind == "merchant_line" and not k % 2:
            zero.pop("Naturalness")  # the merchant's words are speakable, just not the rep's
        if kind in {"list", "meta"}:
            zero = {"Naturalness": 0}
        add(_view(d, c, text), **zero)
        bank = PRESSURE_LINES + RUDE_LINES + PUSHY_LINES
        if k % 4 == 0:
            add(_view(d, c, f"{turn.text} {bank[(k // 4) % len(bank)]}"), Professionalism=0)
        elif k % 4 == 1:  # a courteous line alone is professional (whatever the moment)
            add(_view(d, c, COURTEOUS_LINES[(k // 4) % len(COURTEOUS_LINES)]), Professionalism=1)
        elif k % 4 == 2:  # the line alone: pressure instead of a move
            add(
                _view(d, c, bank[(k // 4 + 7) % len(bank)]),
                Professionalism=0,
                Persuasiveness=0,
                Strategic_Fit=0,
            )
        # planted violations of this product's own knowledge base, on faithful turns: a
        # never-claim asserted, or a stated number moved off the knowledge base
        if h["faithful"] and k % 3 == 0:
            kb = kb_of(own["product_facts"])
            claim = kb.never[int(rng.integers(len(kb.never)))] if kb.never else "guaranteed results"
            add(_view(d, c, f"{turn.text} {_assert(claim, rng)}"), Faithfulness=0)
            moved = _move_number(turn.text, rng)
            if moved != turn.text:
                add(_view(d, c, moved), Faithfulness=0)
    return items, labels, raw


_ASSERT = ("And yes, {c}.", "Plus, {c}, that's a given.", "I can tell you: {c}.")


def _assert(claim: str, rng: np.random.Generator) -> str:
    return _ASSERT[int(rng.integers(len(_ASSERT)))].format(c=claim)


def _move_number(text: str, rng: np.random.Generator) -> str:
    """The text with its first money, percent or duration number changed (a planted error)."""
    import re

    m = re.search(r"(\$\s?)(\d+)|(\d+)(\s?%|[\s-](?:day|week|month|year))", text)
    if not m:
        return text
    digits = m.group(2) or m.group(3)
    start = m.start(2) if m.group(2) else m.start(3)
    new = str(
        int(digits) + int(rng.choice([-10, 5, 10, 20])) if int(digits) > 10 else int(digits) + 1
    )
    return text[:start] + new + text[start + len(digits) :]


# ---------------------------------------------------------------- training and cache


def train_judge(dialogues: Sequence[Any], settings: JudgeSettings | None = None) -> TrainedJudge:
    """Fit the judge on the TRAINING split (hidden fields present, read as labels only)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    settings = settings or JudgeSettings()
    j = TrainedJudge(settings)
    items, labels, raw = training_examples(dialogues, settings)
    enc = j.encoder
    lr = {"max_iter": 2000, "C": settings.C}
    # the move reader: the judge-training half of the held-out bank, not the rep turns the
    # systems and DOGA's guard tagger learned from (module doc, 2)
    texts, moves = [t for t, _ in raw["move"]], [m for _, m in raw["move"]]
    missing = set(INTENTS) - set(moves)  # a tiny corpus may lack a move there: rep turns fill in
    texts += [t for t, i in zip(raw["rep"], raw["intent"], strict=True) if i in missing]
    moves += [i for i in raw["intent"] if i in missing]
    enc([s for t in texts for s in sentences(t)])  # one batched pass, then read from the cache
    j.parts["reply_intent"] = LogisticRegression(**lr).fit(
        np.stack([_mean_unit(enc(sentences(t))) for t in texts]), moves
    )
    acts = raw["act"] + list(ACTS)  # every act seen at least once (columns stay fixed)
    j.parts["act"] = LogisticRegression(**lr).fit(enc(raw["merchant"] + list(ACTS)), acts)
    claim_x = enc([s for s, _ in raw["claim"]])
    j.parts["claim"] = LogisticRegression(class_weight="balanced", **lr).fit(
        claim_x, [y for _, y in raw["claim"]]
    )
    normal = [s for s, y in raw["claim"] if not y][:3000]  # already embedded: free negatives
    # and the judge-training half of the held-out bank: professional wording the systems never
    # learned from, so the detector does not read "unlike the training split" as rude
    normal += list(dict.fromkeys(s for t, _ in raw["move"] for s in sentences(t)))
    normal += list(COURTEOUS_LINES)
    # conversational but civil lines: the merchant's friendly, neutral, agreeing turns, questions
    civil = {"positive", "neutral", "agreement", "question"}
    pairs = zip(raw["merchant"], raw["act"], strict=True)
    normal += list(dict.fromkeys(t for t, a in pairs if a in civil))[:2000]
    bank = list(PRESSURE_LINES + RUDE_LINES + PUSHY_LINES)
    j.parts["rude"] = LogisticRegression(class_weight="balanced", **lr).fit(
        enc(normal + bank), [0] * len(normal) + [1] * len(bank)
    )
    e = j._embed_items(raw["context"])
    ctx = j._context(
        e,
        j.parts["act"].predict_proba(e["merchant"]),
        j.parts["reply_intent"].predict_proba(e["rep"]),
    )
    j.parts["expert"] = LogisticRegression(**lr).fit(ctx, raw["expert"])
    assert set(j.parts["expert"].classes_) <= set(INTENTS)
    X, _ = j._features(items)
    for m in METRICS:
        keep = [i for i, lab in enumerate(labels) if lab[m] is not None]
        y = np.array([labels[i][m] for i in keep])
        if len(set(y)) < 2:
            raise ValueError(f"trained judge: the training split gives one class for {m}")
        j.heads[m] = make_pipeline(
            StandardScaler(), LogisticRegression(class_weight="balanced", **lr)
        ).fit(X[np.array(keep)][:, _cols(m)], y)
    j.train_note = f"{len(items)} training examples from {settings.max_contexts} sampled contexts"
    return j


def data_digest(dialogues: Sequence[Any]) -> str:
    """Hash of the training data the judge reads (texts and the hidden labels it uses)."""
    h = hashlib.sha256()
    for d in dialogues:
        h.update(f"{d.id}|{d.product_id}|{d.merchant.id}".encode())
        for t in d.turns:
            lab = {k: t.hidden.get(k) for k in ("faithful", "quality", "expert_intent")}
            h.update(f"{t.speaker}|{t.intent}|{t.act}|{t.text}|{json.dumps(lab)}".encode())
            h.update(str(t.hidden.get("expert_text", "")).encode())
    return h.hexdigest()[:16]


def cache_key(dialogues: Sequence[Any], settings: JudgeSettings) -> str:
    blob = json.dumps(
        [data_digest(dialogues), asdict(settings), code_digest("judge.trained", "judge.checks")]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_judge(judge: TrainedJudge, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump({"metrics": list(judge.metrics), "judge": judge}, f)
    return path


def _load_pickle(path: Path) -> Any:
    with path.open("rb") as f:
        return pickle.load(f)  # noqa: S301 - our own cache file under artifacts/


def load_judge(path: str | Path, blob: Any = None) -> TrainedJudge:
    """Load a checkpoint (`blob`: its unpickled content, if read already); one trained for other
    metric names than `rubric.METRICS` is refused, an unreadable one names the file."""
    path = Path(path)
    if blob is None:
        try:
            blob = _load_pickle(path)
        except Exception as exc:
            raise ValueError(f"{path}: unreadable judge checkpoint ({reason(exc)})") from None
    if not isinstance(blob, dict) or "judge" not in blob:
        raise ValueError(f"{path}: not a judge checkpoint (no 'judge' entry)")
    got, want = list(blob.get("metrics", [])), list(METRICS)
    if got != want:
        raise ValueError(
            f"{path}: judge checkpoint was trained for the metrics {got}, but the rubric has "
            f"{want}; delete the file (or change the rubric back) and train again"
        )
    return blob["judge"]


def load_or_train(
    train_dialogues: Sequence[Any],
    folder: str | Path,
    settings: JudgeSettings | None = None,
) -> tuple[TrainedJudge, str]:
    """The cached judge for this training data, settings and source, or a freshly trained one
    (saved). Returns (judge, note saying which)."""
    import time

    settings = settings or JudgeSettings()
    path = Path(folder) / f"trained_judge-{cache_key(train_dialogues, settings)}.pkl"
    judge = load_cached(path, _load_pickle)  # unreadable: moved aside and trained again
    if judge is not None:
        return load_judge(path, judge), f"loaded {path.name}"
    t0 = time.perf_counter()
    judge = train_judge(train_dialogues, settings)
    save_judge(judge, path)
    return (
        judge,
        f"trained in {time.perf_counter() - t0:.0f} s ({judge.train_note}), saved {path.name}",
    )
