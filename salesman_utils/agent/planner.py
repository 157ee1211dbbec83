"""The strategy planner: which of the six moves to make next (agent side, docs/DESIGN.md §6b).

A call is a sequence of decisions (which move) and wordings (how to say it). This module is the
decision half, small enough to be trained by reinforcement learning on a laptop CPU:

* `Planner`: a linear softmax policy in torch over the features DOGA's next-intent classifier
  already reads (`intents.context_features`: the MiniLM embeddings of the merchant's last and mean
  utterance, plus the visible structure of the call), with the FSM's mask on the logits. It has the
  classifier's `predict_proba(histories)`, so a DOGA agent takes it in the classifier's place.
  `Planner.from_classifier` starts it from the Bayesian-weighted imitation that `IntentClassifier`
  fits (the SFT step, as in PPDPP: its logistic regression's weights copied, so the start IS the
  classifier); `Planner.scratch` starts it uniform (all weights zero).
* GRPO at the strategy level, the few lines a student reads in notebook 02:
  `group_advantages` (rewards normalised within a group of rollouts of the same merchant; per
  turn, the sum of the normalised rewards from that turn on: the process-supervision form of
  DeepSeekMath's GRPO; a call-outcome reward is one reward per call, its advantage the same on
  every turn) and `grpo_loss` (clipped ratio and a KL term to the start policy, as TRL's
  `GRPOTrainer` computes them, with its k3 estimator of the KL).
* `bayes_turn_rewards`: notebook 02's Bayesian turn posterior P(turn good | evidence) applied to a
  rollout's VISIBLE evidence (the move, the merchant's act before and after it as the agent's own
  act tagger hears them, the call's outcome and the agent's own fact check).

Hand-written rather than TRL: TRL's GRPO trainer samples token sequences from a language model;
here an action is one of six moves chosen turn by turn against an environment, so the loop and
the loss are written out (about forty lines), with TRL's definitions of the clipped objective and
the KL estimator. The environment the planner is trained in lives in the arena
(`salesman_utils.arena.callenv`); nothing here imports it or the referee.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from salesman_utils.agent.bayes import PRIOR_ACTS, START, TurnFeatures, TurnQualityModel
from salesman_utils.agent.intents import IntentClassifier, TextEmbedder, context_features
from salesman_utils.world.corpus import ACTS, OUTCOMES
from salesman_utils.world.simulator import INTENTS, Turn

NEG = -1e9  # logit of a move the FSM forbids


class Planner(nn.Module):
    """Linear softmax over `intents.context_features` (see the module doc)."""

    weighting = "GRPO planner"

    def __init__(self, n_features: int, embedder: TextEmbedder | None = None, start: str = ""):
        super().__init__()
        self.linear = nn.Linear(n_features, len(INTENTS))
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.embedder = embedder
        self.start = start  # "imitation" or "scratch": where training began

    @classmethod
    def scratch(cls, n_features: int, embedder: TextEmbedder | None = None) -> Planner:
        """The uniform policy (every allowed move equally likely)."""
        return cls(n_features, embedder, start="scratch")

    @classmethod
    def from_classifier(cls, classifier: IntentClassifier) -> Planner:
        """The classifier's multinomial logistic regression as a torch layer: same probabilities."""
        lr = classifier.model
        coef, bias = np.asarray(lr.coef_), np.asarray(lr.intercept_)
        if coef.shape[0] != len(lr.classes_):
            raise ValueError("Planner.from_classifier: needs a multinomial LogisticRegression")
        planner = cls(coef.shape[1], classifier.embedder, start="imitation")
        with torch.no_grad():
            for j, c in enumerate(lr.classes_):
                planner.linear.weight[INTENTS.index(c)] = torch.as_tensor(coef[j])
                planner.linear.bias[INTENTS.index(c)] = float(bias[j])
            missing = [i for i, m in enumerate(INTENTS) if m not in set(lr.classes_)]
            planner.linear.bias[missing] = NEG  # a move the reps never made stays unmade
        return planner

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits over `INTENTS`; moves outside `mask` (bool, same batch shape) get `NEG`."""
        logits = self.linear(x)
        return logits if mask is None else logits.masked_fill(~mask, NEG)

    @torch.no_grad()
    def act(
        self,
        x: np.ndarray,
        mask: np.ndarray,
        generator: torch.Generator | None = None,
        greedy: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(actions, log-probabilities) for a batch of feature rows: sampled, or the argmax."""
        logits = self(torch.as_tensor(x), torch.as_tensor(mask))
        logp = torch.log_softmax(logits, dim=-1)
        if greedy:
            a = logp.argmax(dim=-1)
        else:
            a = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)
        return a.numpy(), logp.gather(-1, a[:, None]).squeeze(-1).numpy()

    def predict_proba(self, histories: Sequence[Sequence[Turn]]) -> np.ndarray:
        """P(next move) per visible history, columns in `INTENTS` order (no mask: a DOGA agent
        applies its FSM), as `IntentClassifier.predict_proba`."""
        if not histories:
            return np.zeros((0, len(INTENTS)))
        if self.embedder is None:
            raise ValueError("Planner.predict_proba: no embedder (set planner.embedder)")
        x = torch.as_tensor(context_features(histories, self.embedder))
        with torch.no_grad():
            return torch.softmax(self(x), dim=-1).numpy().astype(float)

    def save(self, folder: str | Path, meta: dict[str, Any] | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), folder / "planner.pt")
        info = {"n_features": self.linear.in_features, "start": self.start, **(meta or {})}
        (folder / "planner.json").write_text(json.dumps(info, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path, embedder: TextEmbedder | None = None) -> Planner:
        folder = Path(folder)
        meta_file = folder / "planner.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"{meta_file}: no saved planner (run notebook 02)")
        meta = json.loads(meta_file.read_text())
        planner = cls(int(meta["n_features"]), embedder, start=str(meta.get("start", "")))
        planner.load_state_dict(torch.load(folder / "planner.pt", weights_only=True))
        return planner


def deployed_planner_dir(profile: Any) -> Path:
    """Where notebook 02 saves the planner that notebook 04 runs inside DOGA (the profile's
    `planner.deploy_arm` from `planner.deploy_start`, seed 0)."""
    from salesman_utils.config import paths

    return paths(profile).models / "planner" / "deploy"


def load_deployed(profile: Any, embedder: TextEmbedder) -> Planner:
    """The planner notebook 02 trained for DOGA (see `deployed_planner_dir`)."""
    return Planner.load(deployed_planner_dir(profile), embedder)


# ---------------------------------------------------------------- GRPO


def group_advantages(
    rewards: Sequence[np.ndarray], groups: Sequence[int], per_turn: bool = True, eps: float = 1e-4
) -> list[np.ndarray]:
    """Advantages per turn of each rollout; `rewards[i]` holds rollout i's turn rewards and
    `groups[i]` its group (the rollouts of one merchant from the same start).

    per_turn (process supervision): every turn reward of a group is normalised by the mean and
    standard deviation of all the group's turn rewards, r~ = (r - mean) / (std + eps); the
    advantage of turn t is the sum of r~ from t to the end of its call.
    Otherwise (outcome supervision: one reward per call, the last entry of `rewards[i]`): the
    call's reward normalised within the group, the same advantage on each of its turns.
    A group whose rewards are all equal teaches nothing: its advantages are 0."""
    groups = np.asarray(groups)
    out: list[np.ndarray] = [np.zeros(len(r)) for r in rewards]
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        if per_turn:
            flat = np.concatenate([rewards[i] for i in idx])
            mu, sd = flat.mean(), flat.std()
            if sd == 0:
                continue  # all equal: zeros
            for i in idx:
                z = (rewards[i] - mu) / (sd + eps)
                out[i] = np.cumsum(z[::-1])[::-1]
        else:
            final = np.array([rewards[i][-1] for i in idx], dtype=float)
            if final.std() == 0:
                continue
            z = (final - final.mean()) / (final.std() + eps)
            for i, zi in zip(idx, z, strict=True):
                out[i] = np.full(len(rewards[i]), zi)
    return out


def grpo_loss(
    logits: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    logp_old: torch.Tensor,
    logp_ref: torch.Tensor,
    clip: float = 0.2,
    beta: float = 0.02,
) -> tuple[torch.Tensor, dict[str, float]]:
    """TRL's GRPO objective at the level of moves, averaged over turns:
    -min(ratio * A, clip(ratio, 1 - clip, 1 + clip) * A) + beta * KL, with ratio = pi / pi_old
    and KL(pi || pi_ref) by the k3 estimator exp(ref - logp) - (ref - logp) - 1."""
    logp = torch.log_softmax(logits, dim=-1).gather(-1, actions[:, None]).squeeze(-1)
    ratio = torch.exp(logp - logp_old)
    surrogate = torch.minimum(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    diff = logp_ref - logp
    kl = torch.exp(diff) - diff - 1
    loss = (-surrogate + beta * kl).mean()
    clipped = ((ratio - 1).abs() > clip).float().mean()
    return loss, {"kl": kl.mean().item(), "clip_frac": clipped.item()}


# ---------------------------------------------------------------- Bayesian turn reward


def bayes_turn_rewards(
    model: TurnQualityModel,
    moves: Sequence[str],
    acts_before: Sequence[str | None],
    acts_after: Sequence[str],
    outcome: str,
    violations: Sequence[bool],
) -> np.ndarray:
    """w_t = P(turn t good | visible evidence) of one call, by notebook 02's fitted model
    (`bayes.TurnQualityModel`): the strategy cell (move x the act before it; None = start of the
    call), the act after it, the call's outcome, and whether the agent's own fact check flagged
    the turn. Acts are the agent's own readings; an unknown act counts as neutral."""

    def act(a: str | None) -> str:
        return a if a in ACTS else "neutral"

    if outcome not in OUTCOMES:
        raise ValueError(f"bayes_turn_rewards: outcome {outcome!r} is not one of {OUTCOMES}")
    n = len(moves)
    cell = [
        INTENTS.index(m) * len(PRIOR_ACTS) + PRIOR_ACTS.index(START if b is None else act(b))
        for m, b in zip(moves, acts_before, strict=True)
    ]
    f = TurnFeatures(
        dialogue=np.zeros(n, dtype=int),
        cell=np.asarray(cell, dtype=int),
        next_act=np.asarray([ACTS.index(act(a)) for a in acts_after], dtype=int),
        outcome=np.full(n, OUTCOMES.index(outcome), dtype=int),
        violation=np.asarray(violations, dtype=int),
    )
    return model.posterior_from(f)
