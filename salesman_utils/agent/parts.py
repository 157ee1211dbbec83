"""What a DOGA agent is built from, all fitted on the TRAINING split (agent side: no referee).

`build_parts` fits (or loads from a cache keyed by the training data) the next-intent classifier,
the FSM, the agent's own reply tagger (its guard's intent check) and its own act tagger (how it
hears the customer), and loads notebook 03's script library; `make_agent` puts a plain or DOGA
agent on the profile's policy backend; `best_grpo_adapter` finds the GRPO policy named by
`doga.grpo_variant`; `load_splits` loads notebook 01's corpus.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from salesman_utils.agent.doga import BaseAgent, DOGAAgent, PlainAgent
from salesman_utils.agent.intents import (
    ActTagger,
    IntentClassifier,
    IntentFSM,
    ReplyTagger,
    TextEmbedder,
    script_move,
)
from salesman_utils.artifacts import load_cached, run_command
from salesman_utils.config import Profile, code_digest, paths, repo_relative
from salesman_utils.world.corpus import load_corpus, simulate_corpus, split, without_hidden
from salesman_utils.world.simulator import INTENTS, Dialogue

PARTS_VERSION = 2  # 2: classifier remembers the customer's earlier words; ActTagger


def load_splits(profile: Profile) -> tuple[dict[str, list[Dialogue]], str]:
    """Notebook 01's corpus; if it is absent, simulate one with the profile's settings (say so)."""
    folder = paths(profile).corpus
    if (folder / "manifest.json").exists():
        splits = load_corpus(folder, with_hidden=True, rebuild=run_command("01", profile.name))
        return splits, f"loaded from {repo_relative(folder)}"
    c = profile.corpus
    dialogues = simulate_corpus(c.n_calls, seed=c.seed, disfluency=c.disfluency)
    note = f"simulated {c.n_calls} calls (no corpus at {repo_relative(folder)}: run notebook 01)"
    return split(dialogues, seed=c.split_seed, fractions=tuple(c.split_fractions)), note


@dataclass
class DogaParts:
    """What a DOGA agent needs besides a backend (the library may be None if absent)."""

    classifier: IntentClassifier
    fsm: IntentFSM
    tagger: ReplyTagger
    act_tagger: ActTagger  # the agent's own ears: customer line -> act, objection type
    library: Any = None
    library_note: str = ""


def _train_key(train: Sequence[Dialogue], profile: Profile, weights: Any) -> str:
    calls = [(d.id, d.outcome, d.turns[0].text) for d in train]
    w = None if weights is None else np.round(np.asarray(weights, dtype=float), 6).tolist()
    code = code_digest("agent.intents", "agent.parts")  # the fitted classes and how they are fitted
    blob = json.dumps([PARTS_VERSION, profile.models.embedder, calls, w, code])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _posteriors(profile: Profile, splits: dict[str, list[Dialogue]]) -> Any:
    try:
        from salesman_utils.agent.bayes import posteriors_for
    except ImportError:
        return None
    return posteriors_for(profile, splits)


def build_parts(
    profile: Profile,
    splits: dict[str, list[Dialogue]],
    posteriors: Any = None,
    use_cache: bool = True,
) -> DogaParts:
    """Fit classifier, FSM and taggers on the training split (cached on disk by its content), and
    load or build the script library of notebook 03. Every split is read WITHOUT its hidden fields
    (`corpus.without_hidden`), even when the caller loaded them for the customer or the referee."""
    splits = {name: without_hidden(dialogues) for name, dialogues in splits.items()}
    train = splits["train"]
    posteriors = posteriors if posteriors is not None else _posteriors(profile, splits)
    train_post = posteriors.get("train") if isinstance(posteriors, dict) else posteriors
    key = _train_key(train, profile, train_post)
    cache = paths(profile).models / "doga" / f"parts-{key}.pkl"
    parts = load_cached(cache, lambda f: pickle.loads(f.read_bytes())) if use_cache else None
    if parts is None:  # absent, or unreadable (moved aside with a warning): fitted again
        emb = TextEmbedder(profile)
        parts = DogaParts(
            classifier=IntentClassifier.fit(train, profile, posteriors=train_post, embedder=emb),
            fsm=IntentFSM.fit(train),
            tagger=ReplyTagger.fit(train, profile, embedder=emb),
            act_tagger=ActTagger.fit(train, profile, embedder=emb),
        )
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(parts))
    try:
        from salesman_utils.agent.library import load_or_build

        parts.library = load_or_build(profile, splits, posteriors)
        parts.library_note = "script library of notebook 03"
    except ImportError:
        parts.library, parts.library_note = None, "no salesman_utils.agent.library: built-in lines"
    return parts


def best_grpo_adapter(profile: Profile) -> tuple[str | None, Path | None, str]:
    """(variant, adapter folder, note) of the GRPO policy that `best_grpo_doga` runs under DOGA.

    The variant is the profile's `doga.grpo_variant` (default `grpo_bayes`, the paper's best: GRPO
    with R_bayes and no SFT). It is set in the profile rather than picked from notebook 02's held-out
    table, because those contexts are among the items notebook 05 scores: picking there would select
    on the test items. Without the adapter: (None, None, why) = the system is skipped.
    """
    variant = profile.doga.grpo_variant
    if variant not in profile.training.variants:  # never a stale adapter of another run
        return (
            None,
            None,
            (
                f"doga.grpo_variant {variant!r} is not in training.variants "
                f"{list(profile.training.variants)}: not trained by this profile"
            ),
        )
    folder = paths(profile).models / variant / "adapter"
    if (folder / "adapter_config.json").exists():
        return variant, folder, f"doga.grpo_variant = {variant}"
    return (
        None,
        None,
        f"no {variant} adapter at {repo_relative(folder)} (doga.grpo_variant; run notebook 02)",
    )


class ScriptRule:
    """The by-the-book move (`intents.script_move`, over the agent's OWN view of the call: its
    act tagger's readings and its own past moves) as a one-hot 'classifier' for a DOGA agent.
    Agent side: it never asks the simulator (`simulator.script_intent` is the customer's)."""

    weighting = "none: the by-the-book rule (intents.script_move)"

    def predict_proba(self, histories: Sequence[Sequence[Any]]) -> np.ndarray:
        out = np.zeros((len(histories), len(INTENTS)))
        for row, h in enumerate(histories):
            out[row, INTENTS.index(script_move(list(h)))] = 1.0
        return out


TEMPLATE_KINDS = ("template", "script_template")


def make_agent(
    kind: str,
    parts: DogaParts,
    profile: Profile,
    adapter: str | Path | None = None,
    name: str | None = None,
    classifier: Any = None,
    **kwargs: Any,
) -> BaseAgent:
    """A `plain` or `doga` agent on the profile's policy backend (+ LoRA adapter), or one of the
    two model-free baselines (`TEMPLATE_KINDS`, no backend, no guard, seconds per call):
    `template` = DOGA's classifier + FSM + retrieval, saying the filled template; `script_template`
    = the by-the-book move (`ScriptRule`) + retrieval, saying the filled template. `classifier`
    replaces DOGA's next-intent classifier (e.g. notebook 02's GRPO `planner.Planner`)."""
    classifier = classifier if classifier is not None else parts.classifier
    if kind in TEMPLATE_KINDS:
        agent = DOGAAgent(
            None,
            parts.library,
            classifier if kind == "template" else ScriptRule(),
            parts.fsm if kind == "template" else None,
            profile=profile,
            tagger=parts.tagger,
            name=name or kind,
            use_fsm=kind == "template",
            **kwargs,
        )
        agent.guard, agent.guard_retries = False, 0
        agent.act_tagger = parts.act_tagger
        return agent
    from salesman_utils.llm import make_backend

    spec = {**vars(profile.models.policy), "adapter": str(adapter) if adapter else None}
    backend = make_backend(spec, profile=profile)
    common = {
        "profile": profile,
        "tagger": parts.tagger,
        "name": name,
    }
    if kind == "plain":
        agent: BaseAgent = PlainAgent(backend, **common, **kwargs)
    elif kind == "doga":
        agent = DOGAAgent(backend, parts.library, classifier, parts.fsm, **common, **kwargs)
    else:
        raise ValueError(f"agent kind must be plain or doga, got {kind!r}")
    agent.act_tagger = parts.act_tagger  # how it hears the customer (`intents.agent_view`)
    return agent
