"""Parity of the planner's arena with notebook 04's online calls: does `callenv.CallEnv` play the
calls that the online `template_only` agent plays?

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_env_parity.py [profile] [n_calls]

The same (merchant, product) cases and customer seeds (`online.online_cases`): the template_only
agent (DOGA's classifier, model-free voice) through `online.simulate_calls`, against the imitation
planner (an exact copy of that classifier, `Planner.from_classifier`) in the planner's CallEnv.
Prints both conversions, how many calls end alike, and the moves of the calls that differ.
Needs the profile's corpus, library and perception (notebooks 01-04). Prints figures; asserts
nothing.

Measured on the tutorial profile (40 calls), `PYTHONPATH=$PWD .venv/bin/python
benchmarks/bench_env_parity.py tutorial 40`:
- 2026-12-03, before the fix: online 18/40, CallEnv 9/40, the same outcome on 31 of 40 calls; the
  moves parted from the second or third turn. For the same move the two said different templates:
  CallEnv searched the library with the merchant's last words, the online agent with the last two
  turns' words (`doga.DOGAAgent._outline`'s default context); e.g. a generic
  Product_Introduction where the online agent says the merchant-fitted one.
- 2026-12-03, after it (`CallWorld.line` calls `_outline` with the online agent's default context,
  and DOGA's library search averages the embeddings of the last two turns' lines instead of
  embedding their joined words: the arena then embeds each distinct line once, not each pair;
  the other inputs were already alike: retrieve k, FSM, customer seeds `[s, 11]`, max_turns,
  perception, the agent's act readings): online 18/40, CallEnv 18/40, the same outcome on 40 of
  40 calls and the same moves on 40 of 40. The arena embeds lines in batches where the online
  agent embeds them one call at a time: the vectors can differ in their last bits, which decided
  no move or reading here."""

import sys

import numpy as np

from salesman_utils.agent.parts import build_parts, load_splits, make_agent
from salesman_utils.agent.planner import Planner
from salesman_utils.arena.callenv import CallWorld
from salesman_utils.arena.online import online_cases, simulate_calls
from salesman_utils.arena.planner_rl import planner_policy, play
from salesman_utils.config import load_profile
from salesman_utils.referee.perception import load_or_fit
from salesman_utils.world.simulator import INTENTS

prof = load_profile(sys.argv[1] if len(sys.argv) > 1 else "tutorial")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
splits, _ = load_splits(prof)
parts = build_parts(prof, splits)
perception = load_or_fit(prof)
cases, seeds = online_cases(splits["test"], n, seed=prof.seed)
agent = make_agent("template", parts, prof, name="template_only")
online = simulate_calls(agent, cases, seeds, prof, perception=perception, progress=False)
world = CallWorld(list(cases), parts, perception, prof, max_turns=prof.doga.max_turns)
imitation = Planner.from_classifier(parts.classifier)
rolls = play(world, planner_policy(imitation, True), [(i, int(s)) for i, s in enumerate(seeds)])
on = np.array([d.outcome == "success" for d in online])
env = np.array([r.success for r in rolls])
print(f"online template_only {on.sum()}/{n}; env imitation planner {env.sum()}/{n}")
print(f"same outcome on {(on == env).sum()} of {n} calls")
moves = [
    (
        [t.hidden.get("planned_intent") for t in d.turns if t.speaker == "agent"],
        [INTENTS[int(a)] for a in r.actions],
    )
    for d, r in zip(online, rolls, strict=True)
]
print(f"same moves on {sum(a == b for a, b in moves)} of {n} calls")
for k, (d, r, (moves_on, moves_env)) in enumerate(zip(online, rolls, moves, strict=True)):
    if k < 6 or moves_on != moves_env:
        lines_on = [t.text for t in d.turns if t.speaker == "agent"]
        print(f"--- call {k}: online {d.outcome} {moves_on}")
        print(f"             env    {r.success} {moves_env}")
        if k < 3:
            print("   online first lines:", [x[:80] for x in lines_on[:2]])
