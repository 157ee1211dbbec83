"""GRPO for the strategy planner against the simulated customer, and its evaluation (the arena).

* `play`: whole calls of a policy in `callenv.CallEnv`s, all in lockstep; a `Rollout` per call keeps
  the planner's inputs, its moves and their log-probabilities, the VISIBLE evidence of each turn
  (the agent's own act readings and fact check, the outcome) and, apart, the hidden truth (turn
  quality, expert move) that only the oracle arm and the referee read.
* Policies: `planner_policy` (sampled or greedy), and the references `random_policy` (uniform over
  the FSM's allowed moves), `script_policy` (the by-the-book move over the visible call,
  `intents.script_move`) and `expert_policy` (the simulator's expert move: the ceiling, hidden
  state, never an agent).
* `turn_rewards`: the three reward arms on the same rollouts: `outcome` (1 for a sale, once per call),
  `bayes` (notebook 02's posterior on the visible evidence, `planner.bayes_turn_rewards`) and
  `oracle` (the hidden turn quality: an upper reference, never a result).
* `train_planner`: GRPO updates (`planner.group_advantages`, `planner.grpo_loss`), evaluating the
  greedy planner on held-out merchants after the updates in `eval_at`.
Notebook 02's whole experiment (every arm x start x seed, tables, conclusion) is
`planner_experiment`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from salesman_utils.agent.bayes import TurnQualityModel
from salesman_utils.agent.intents import script_move
from salesman_utils.agent.planner import Planner, bayes_turn_rewards, group_advantages, grpo_loss
from salesman_utils.arena.callenv import CallWorld, step_many
from salesman_utils.world.simulator import INTENTS

ARMS = ("outcome", "bayes", "oracle")
STARTS = ("scratch", "imitation")
Policy = Callable[[np.ndarray, np.ndarray, list[dict]], tuple[np.ndarray, np.ndarray | None]]


@dataclass
class Rollout:
    """One call: per turn the planner's input, move, log-prob and evidence; then the outcome."""

    case: int
    group: int
    x: list[np.ndarray] = field(default_factory=list)
    mask: list[np.ndarray] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    logp: list[float] = field(default_factory=list)
    acts_before: list[str | None] = field(default_factory=list)  # the agent's readings
    acts_after: list[str] = field(default_factory=list)
    violations: list[bool] = field(default_factory=list)  # the agent's own fact check
    quality: list[int] = field(default_factory=list)  # hidden: oracle arm and referee only
    expert_move: list[bool] = field(default_factory=list)  # hidden: referee only
    outcome: str = "failure"

    @property
    def success(self) -> bool:
        return self.outcome == "success"


def play(
    world: CallWorld,
    policy: Policy,
    starts: Sequence[tuple[int, int]],
    groups: Sequence[int] | None = None,
    enforce_mask: bool = True,
) -> list[Rollout]:
    """One call per (case, customer seed) in `starts`, all in lockstep, moves chosen by `policy`
    (a function of the batch's feature rows, masks and infos -> moves and their log-probs)."""
    groups = list(groups) if groups is not None else list(range(len(starts)))
    envs = [world.make_env(enforce_mask) for _ in starts]
    rolls = [Rollout(c, g) for (c, _), g in zip(starts, groups, strict=True)]
    obs, infos = [], []
    for env, (case, seed) in zip(envs, starts, strict=True):
        o, info = env.reset(seed=int(seed), options={"case": int(case)})
        obs.append(o)
        infos.append(info)
    live = list(range(len(envs)))
    last_act: list[str | None] = [None] * len(envs)
    while live:
        x = np.stack([obs[i] for i in live])
        mask = np.stack([infos[i]["action_mask"] for i in live])
        actions, logp = policy(x, mask, [infos[i] for i in live])
        steps = step_many([envs[i] for i in live], [int(a) for a in actions])
        for k, (i, (o, _, done, _, info)) in enumerate(zip(live, steps, strict=True)):
            r = rolls[i]
            r.x.append(x[k])
            r.mask.append(mask[k])
            r.actions.append(int(actions[k]))
            r.logp.append(float(logp[k]) if logp is not None else 0.0)
            r.acts_before.append(last_act[i])
            r.acts_after.append(info["act"])
            r.violations.append(bool(info["violation"]))
            r.quality.append(int(info["quality"]))
            r.expert_move.append(bool(info["move_was_expert"]))
            last_act[i] = info["act"]
            obs[i], infos[i] = o, info
            if done:
                r.outcome = info["outcome"] or "failure"
        live = [i for i in live if not envs[i].sim.done]
    return rolls


# ---------------------------------------------------------------- policies


def planner_policy(
    planner: Planner, greedy: bool = False, generator: torch.Generator | None = None
) -> Policy:
    def policy(x, mask, infos):
        return planner.act(x, mask, generator=generator, greedy=greedy)

    return policy


def random_policy(seed: int = 0) -> Policy:
    rng = np.random.default_rng(seed)

    def policy(x, mask, infos):
        return np.array([rng.choice(np.flatnonzero(m)) for m in mask]), None

    return policy


def script_policy(x, mask, infos):
    """The by-the-book move over the agent's own view of the call (run without the FSM mask)."""
    return np.array([INTENTS.index(script_move(i["history"])) for i in infos]), None


def expert_policy(x, mask, infos):
    """The simulator's expert move (hidden state): the ceiling, run without the FSM mask."""
    return np.array([INTENTS.index(i["expert_intent"]) for i in infos]), None


# ---------------------------------------------------------------- rewards and updates


def turn_rewards(rollout: Rollout, arm: str, model: TurnQualityModel | None) -> np.ndarray:
    """The reward of each turn of `rollout` under `arm` (see the module doc)."""
    n = len(rollout.actions)
    if arm == "outcome":
        out = np.zeros(n)
        out[-1] = float(rollout.success)
        return out
    if arm == "bayes":
        if model is None:
            raise ValueError("turn_rewards: the bayes arm needs notebook 02's TurnQualityModel")
        moves = [INTENTS[a] for a in rollout.actions]
        return bayes_turn_rewards(
            model,
            moves,
            rollout.acts_before,
            rollout.acts_after,
            rollout.outcome,
            rollout.violations,
        )
    if arm == "oracle":
        return np.asarray(rollout.quality, dtype=float)
    raise ValueError(f"turn_rewards: unknown arm {arm!r}; expected one of {ARMS}")


@dataclass
class GRPOSettings:
    """Strategy-level GRPO (profile section `planner`)."""

    updates: int = 150
    merchants_per_update: int = 16
    rollouts: int = 8  # G: calls per merchant from the same start
    lr: float = 0.05
    clip: float = 0.2
    beta: float = 0.02
    inner_steps: int = 2  # gradient steps per batch (TRL's num_iterations)
    eval_at: tuple[int, ...] = (0, 2, 5, 10, 20, 30)  # updates after which the curve is measured
    n_eval_calls: int = 200


def grpo_update(
    planner: Planner,
    reference: Planner,
    optimizer: torch.optim.Optimizer,
    rollouts: Sequence[Rollout],
    arm: str,
    settings: GRPOSettings,
    model: TurnQualityModel | None = None,
) -> dict[str, float]:
    """One GRPO update on a batch of groups of rollouts; returns loss, KL and clip fraction."""
    rewards = [turn_rewards(r, arm, model) for r in rollouts]
    adv = group_advantages(rewards, [r.group for r in rollouts], per_turn=arm != "outcome")
    x = torch.as_tensor(np.concatenate([np.stack(r.x) for r in rollouts]))
    mask = torch.as_tensor(np.concatenate([np.stack(r.mask) for r in rollouts]))
    a = torch.as_tensor(np.concatenate([r.actions for r in rollouts]), dtype=torch.long)
    logp_old = torch.as_tensor(np.concatenate([r.logp for r in rollouts]), dtype=torch.float32)
    advantages = torch.as_tensor(np.concatenate(adv), dtype=torch.float32)
    with torch.no_grad():
        ref = torch.log_softmax(reference(x, mask), -1).gather(-1, a[:, None]).squeeze(-1)
    stats: dict[str, float] = {}
    for _ in range(settings.inner_steps):
        loss, stats = grpo_loss(
            planner(x, mask), a, advantages, logp_old, ref, settings.clip, settings.beta
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"loss": loss.item(), **stats, "reward": float(np.mean([r.sum() for r in rewards]))}


def evaluate(
    world: CallWorld, policy: Policy, n_calls: int, seed: int = 0, enforce_mask: bool = True
) -> dict[str, Any]:
    """Held-out conversion and expert-move agreement of `policy` on `n_calls` calls of `world`
    (cases in order, repeated with other customer seeds). Per-call successes are kept, so that
    arms can be compared call by call."""
    starts = eval_starts(world, n_calls, seed)
    rolls = play(world, policy, starts, enforce_mask=enforce_mask)
    wins = np.array([r.success for r in rolls], dtype=float)
    agree = np.concatenate([r.expert_move for r in rolls]).astype(float)
    return {
        "conversion": float(wins.mean()),
        "conversions": int(wins.sum()),
        "n": len(rolls),
        "agreement": float(agree.mean()),
        "turns": float(np.mean([len(r.actions) for r in rolls])),
        "wins": wins,
    }


def eval_starts(world: CallWorld, n_calls: int, seed: int = 0) -> list[tuple[int, int]]:
    n = len(world.cases)
    return [(i % n, 7_000_003 * (seed + 1) + i) for i in range(n_calls)]


def train_planner(
    train_world: CallWorld,
    eval_world: CallWorld,
    start: Planner,
    arm: str,
    settings: GRPOSettings,
    seed: int = 0,
    model: TurnQualityModel | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Planner, pd.DataFrame]:
    """GRPO from `start` with reward `arm`; the curve has one row per evaluation (greedy planner on
    `eval_world`, the same calls at every point) with the simulated training calls so far."""
    torch.manual_seed(seed)
    planner = copy.deepcopy(start)
    reference = copy.deepcopy(start).requires_grad_(False)
    optimizer = torch.optim.Adam(planner.parameters(), lr=settings.lr)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    per_update = settings.merchants_per_update * settings.rollouts
    rows = []

    def record(update: int, extra: dict[str, float]) -> None:
        ev = evaluate(eval_world, planner_policy(planner, greedy=True), settings.n_eval_calls)
        rows.append(
            {
                "arm": arm,
                "start": start.start,
                "seed": seed,
                "update": update,
                "calls": update * per_update,
                "conversion": ev["conversion"],
                "agreement": ev["agreement"],
                **extra,
            }
        )
        if progress:
            progress(
                f"{arm}/{start.start} seed {seed}: update {update} conv {ev['conversion']:.3f}"
            )

    if 0 in settings.eval_at:
        record(0, {})
    for u in range(1, settings.updates + 1):
        cases = rng.choice(len(train_world.cases), settings.merchants_per_update, replace=False)
        starts, groups = [], []
        for g, c in enumerate(cases):
            customer_seed = int(rng.integers(2**31))
            starts += [(int(c), customer_seed)] * settings.rollouts
            groups += [g] * settings.rollouts
        rolls = play(train_world, planner_policy(planner, generator=gen), starts, groups)
        stats = grpo_update(planner, reference, optimizer, rolls, arm, settings, model)
        if u in settings.eval_at or u == settings.updates:
            record(u, {**stats, "train_conversion": float(np.mean([r.success for r in rolls]))})
    return planner, pd.DataFrame(rows)
