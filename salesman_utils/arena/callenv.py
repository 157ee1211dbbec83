"""A sales call as a Gymnasium environment: the arena where the strategy planner is trained.

`CallEnv` wraps the simulator's customer (`simulator.CustomerSimulator`) behind the Gymnasium API
(`reset` / `step`), one call per episode:

* action: one of the six moves (`simulator.INTENTS`, an index or the name);
* the reply: the script library's template for the move, exactly as notebook 04's model-free
  `template_only` agent says it (`doga.DOGAAgent._outline` with its default context, the last two
  turns, and the profile's retrieve k; the price line after a price push), so a rollout
  costs no language model and plays the calls `online.simulate_calls` plays
  (`benchmarks/bench_env_parity.py`);
* the customer hears the reply through the referee's ears (`referee.perception`: which move,
  fitted to this merchant or not, faithful or not) and answers in words;
* observation: what an agent hears, read by the AGENT's own parts (`parts.DogaParts`, fitted on the
  training split): the merchant's words embedded and tagged by its act tagger, and its own moves,
  as the feature row of DOGA's next-intent classifier (`intents.context_features`). The visible
  history itself (words and the agent's own readings) is `info["history"]`;
* reward: the call's outcome, 1.0 on the step that ends a call in a sale, else 0;
* `info["action_mask"]`: the moves the agent's FSM allows now; a forbidden move raises a
  ValueError (unless `enforce_mask=False`, for the reference policies that use no FSM);
* hidden truth, for the oracle reward arm and the referee ONLY: `info["quality"]` (was the last
  turn good) and `info["expert_intent"]` (the expert's move now). An agent never reads them.

`step_many` steps many environments in lockstep so that the embedder, the act tagger and the
customer's ears run once per round on a batch; `CallEnv.step` is `step_many` of one. Lines, their
embeddings, readings and the customer's perception are cached per environment pool (`CallWorld`):
a merchant's words and a template's hearing repeat across rollouts.

Not repeatable to the last bit: a MiniLM embedding differs in its last bits with the batch it was
computed in, and the caches fill in an order that depends on which rollouts (and, with several
workers, which worker) came first. A nearest template or a customer's reading near a boundary can
then flip, so the Bayesian and oracle arms of `planner_experiment` move between two runs of the
same seeds: by up to 0.7 points of conversion once, by 1.7 points (bayes from scratch, 23.6% then
25.3%) in the next cold run (docs/HISTORY.md). Embedding every text on its own
makes the arena repeat to the bit, but cost about 7 times the run time here (measured 2026-12-03),
more than the tutorial budget allows; the planners' intervals are far wider than that drift.

This module is the arena (it imports the referee's perception): no agent-side module imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from salesman_utils.agent.doga import DOGAAgent
from salesman_utils.agent.intents import context_features
from salesman_utils.agent.parts import DogaParts
from salesman_utils.config import Profile
from salesman_utils.referee.perception import CustomerPerception, Heard
from salesman_utils.world.factcheck import fact_check
from salesman_utils.world.knowledge import Product
from salesman_utils.world.simulator import INTENTS, CustomerSimulator, MerchantProfile, Turn

N_STRUCT = 40  # len(intents.structured_features(...)); checked when the world is built


class _Voice(DOGAAgent):
    """DOGA's model-free template voice with its pure steps cached (retrieval by context, a
    template filled for a merchant, its fact-checked line): rollouts repeat them thousands of
    times."""

    def __init__(self, library: Any, profile: Profile):
        super().__init__(None, library, None, None, profile=profile)
        self._memo: dict[tuple, Any] = {}

    def _cached(self, key: tuple, compute: Any) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _retrieve(self, intent, context):
        return self._cached(
            ("r", intent, context), lambda: super(_Voice, self)._retrieve(intent, context)
        )

    def _fill(self, text, product, merchant):
        key = ("f", text, product.id, merchant.id)
        return self._cached(key, lambda: super(_Voice, self)._fill(text, product, merchant))

    def _template_line(self, template, intent, product, merchant):
        key = ("t", template, intent, product.id, merchant.id)
        return self._cached(
            key, lambda: super(_Voice, self)._template_line(template, intent, product, merchant)
        )


@dataclass
class CallWorld:
    """What every environment of one pool shares: the merchants and products that can be called,
    the agent's parts (ears, FSM, library), the customer's ears and the caches."""

    cases: list[tuple[MerchantProfile, Product]]
    parts: DogaParts
    perception: CustomerPerception
    profile: Profile
    max_turns: int = 12
    _heard: dict[tuple[int, str], Heard] = field(default_factory=dict)
    _acts: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    _violation: dict[tuple[int, str], bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.cases:
            raise ValueError("CallWorld: no (merchant, product) cases to call")
        if self.parts.library is None:
            raise ValueError("CallWorld: the agent's parts have no script library (notebook 03)")
        self.views = [m.visible() for m, _ in self.cases]
        # the model-free DOGA voice: library template of the chosen move, no backend, no guard
        self._voice = _Voice(self.parts.library, self.profile)
        self.embedder = self.parts.classifier.embedder
        self.n_features = context_features([[]], self.embedder).shape[1]

    # -- the agent's side: its template, its ears, its own fact check
    def line(self, case: int, intent: str, history: Sequence[Turn]) -> str:
        """The library template of `intent` for this merchant here: the line notebook 04's online
        `template_only` agent plans and says (`DOGAAgent._outline` with its default context, the
        last two turns, their lines' embeddings averaged; `benchmarks/bench_env_parity.py`)."""
        _, p = self.cases[case]
        return self._voice._outline(intent, history, p, self.views[case])[2]

    def embed_contexts(self, histories: Sequence[Sequence[Turn]]) -> None:
        """Embed the lines the library is searched with (the last two turns) of many calls in one
        batch (`ScriptLibrary.embed` caches them), so that `line` does not embed them one by one."""
        lines = list(dict.fromkeys(t.text for h in histories for t in h[-2:] if t.text))
        if lines:
            self._voice.library.embed(lines)

    def violates(self, case: int, reply: str) -> bool:
        """The agent's own (visible) fact check of its reply (`world.factcheck.fact_check`)."""
        key = (case, reply)
        if key not in self._violation:
            _, p = self.cases[case]
            self._violation[key] = bool(fact_check(reply, p, self.views[case]))
        return self._violation[key]

    def hear_acts(self, texts: Sequence[str]) -> list[tuple[str, str | None]]:
        """The agent's act tagger's (act, objection type) of each merchant line (cached). New
        lines are embedded once, in one batch, for the features and the library search alike."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._acts))
        if todo:
            self.parts.library.remember(todo, self.embedder(todo))
            self._acts.update(zip(todo, self.parts.act_tagger.tag_full(todo), strict=True))
        return [self._acts[t] for t in texts]

    # -- the customer's side
    def perceive(self, cases: Sequence[int], replies: Sequence[str]) -> list[Heard]:
        """The customer's reading of each reply (referee's perception; cached per merchant)."""
        todo = list(dict.fromkeys((c, r) for c, r in zip(cases, replies, strict=True)))
        todo = [k for k in todo if k not in self._heard]
        if todo:
            heard = self.perception.perceive(
                [r for _, r in todo],
                [self.cases[c][1] for c, _ in todo],
                [self.cases[c][0] for c, _ in todo],
            )
            self._heard.update(zip(todo, heard, strict=True))
        return [self._heard[(c, r)] for c, r in zip(cases, replies, strict=True)]

    def make_env(self, enforce_mask: bool = True) -> CallEnv:
        return CallEnv(self, enforce_mask=enforce_mask)


class CallEnv(gym.Env):
    """One sales call per episode against the simulated customer (see the module doc).

    `reset(seed=..., options={"case": i, "customer_seed": s})` starts a call with case i of the
    world (default: drawn with the reset's seed) and the customer's random stream s (default: the
    reset's seed)."""

    metadata = {"render_modes": []}

    def __init__(self, world: CallWorld, enforce_mask: bool = True):
        super().__init__()
        self.world = world
        self.enforce_mask = enforce_mask
        self.action_space = gym.spaces.Discrete(len(INTENTS))
        self.observation_space = gym.spaces.Box(
            -np.inf, np.inf, shape=(world.n_features,), dtype=np.float32
        )
        self.sim: CustomerSimulator | None = None
        self.case = -1
        self.history: list[Turn] = []  # the agent's view: words + its own readings
        self.mask = np.zeros(len(INTENTS), dtype=bool)

    # -- Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"case", "customer_seed"}
        if unknown:
            raise ValueError(
                f"CallEnv.reset: unknown options {sorted(unknown)} (case, customer_seed)"
            )
        n = len(self.world.cases)
        case = options.get("case")
        case = int(self.np_random.integers(n)) if case is None else int(case)
        if not 0 <= case < n:
            raise ValueError(f"CallEnv.reset: case {case} outside 0..{n - 1}")
        customer_seed = options.get("customer_seed", seed if seed is not None else 0)
        m, p = self.world.cases[case]
        self.case = case
        self.sim = CustomerSimulator(
            m, p, seed=[int(customer_seed), 11], max_turns=self.world.max_turns
        )
        self.history = []
        self.mask = self.world.parts.fsm.allowed(self.history)
        obs = context_features([self.history], self.world.embedder)[0]
        return obs, self._info()

    def step(self, action: int | str):
        return step_many([self], [action])[0]

    def action_masks(self) -> np.ndarray:
        """The moves the agent's FSM allows now (the convention of maskable-PPO libraries)."""
        return self.mask.copy()

    # -- helpers
    def _info(self, **extra: Any) -> dict[str, Any]:
        sim = self.sim
        return {
            "action_mask": self.mask.copy(),
            "history": list(self.history),
            "case": self.case,
            # hidden truth: the oracle arm and the referee only
            "expert_intent": None if sim is None or sim.done else sim.expert_intent(),
            **extra,
        }

    def _check(self, action: int | str) -> str:
        if self.sim is None:
            raise RuntimeError("CallEnv.step before reset: call reset() first")
        if self.sim.done:
            raise RuntimeError(
                f"CallEnv.step after the call ended ({self.sim.outcome}): call reset() first"
            )
        if isinstance(action, str):
            if action not in INTENTS:
                raise ValueError(
                    f"CallEnv.step: unknown intent {action!r}; expected one of {INTENTS}"
                )
            index = INTENTS.index(action)
        else:
            index = int(action)
            if not 0 <= index < len(INTENTS) or index != action:
                raise ValueError(
                    f"CallEnv.step: action {action!r} is not a move index 0..{len(INTENTS) - 1}"
                )
        if self.enforce_mask and not self.mask[index]:
            allowed = [m for m, ok in zip(INTENTS, self.mask, strict=True) if ok]
            raise ValueError(
                f"CallEnv.step: the FSM forbids {INTENTS[index]} now (allowed: {allowed}; "
                "see info['action_mask'])"
            )
        return INTENTS[index]


def step_many(envs: Sequence[CallEnv], actions: Sequence[int | str]) -> list[tuple]:
    """Step every environment once (all in lockstep, batched reads); one Gymnasium 5-tuple
    (observation, reward, terminated, truncated, info) per environment."""
    if len(envs) != len(actions):
        raise ValueError(f"step_many: {len(actions)} actions for {len(envs)} environments")
    if not envs:
        return []
    world = envs[0].world
    moves = [env._check(a) for env, a in zip(envs, actions, strict=True)]
    world.embed_contexts([e.history for e in envs])
    replies = [world.line(e.case, m, e.history) for e, m in zip(envs, moves, strict=True)]
    heard = world.perceive([e.case for e in envs], replies)
    said, meta = [], []
    for env, move, reply, h in zip(envs, moves, replies, heard, strict=True):
        sim = env.sim
        expert = sim.expert_intent()
        act, text, done, outcome = sim.step(
            h.intent, h.faithful, h.adapted, is_expert_move=h.intent == expert
        )
        said.append(text)
        meta.append((move, reply, h, expert, sim.last_quality, act, done, outcome))
    readings = world.hear_acts(said)
    out = []
    for env, text, (act_read, kind), m in zip(envs, said, readings, meta, strict=True):
        move, reply, h, expert, quality, _true_act, done, outcome = m
        env.history += [
            Turn("agent", reply, intent=move),
            Turn("customer", text, act=act_read, objection_type=kind),
        ]
        env.mask = world.parts.fsm.allowed(env.history)
        out.append((env, done, outcome, move, reply, h, expert, quality, act_read))
    obs = context_features([e.history for e in envs], world.embedder)
    results = []
    for row, (env, done, outcome, move, reply, h, expert, quality, act_read) in zip(
        obs, out, strict=True
    ):
        reward = 1.0 if done and outcome == "success" else 0.0
        info = env._info(
            reply=reply,
            move=move,
            act=act_read,  # the agent's own reading of the merchant's answer
            violation=world.violates(env.case, reply),  # the agent's own fact check
            outcome=outcome,
            quality=quality,  # hidden: was this turn good
            heard_intent=h.intent,  # referee: the move the customer heard
            move_was_expert=move == expert,  # hidden: agreement with the expert's move
        )
        results.append((row, reward, bool(done), False, info))
    return results
