"""The strategy planner: its call environment (Gymnasium API), its GRPO math, and a short
training run on a tiny environment that must beat random moves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from salesman_utils.agent.bayes import fit_turn_quality
from salesman_utils.agent.intents import ActTagger, IntentClassifier, IntentFSM, ReplyTagger
from salesman_utils.agent.library import build_library
from salesman_utils.agent.parts import DogaParts
from salesman_utils.agent.planner import Planner, bayes_turn_rewards, group_advantages, grpo_loss
from salesman_utils.config import load_profile
from salesman_utils.world.corpus import simulate_corpus, split, without_hidden
from salesman_utils.world.simulator import INTENTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world_parts():
    """A small corpus, the agent's parts fitted on its training split (visible fields only), a
    library, the customer's perception and the Bayesian turn model."""
    from salesman_utils.referee.perception import CustomerPerception

    prof = load_profile("smoke")
    splits = split(simulate_corpus(300, seed=3), seed=0)
    train = without_hidden(splits["train"])
    model = fit_turn_quality(train)
    post = model.posterior(train)
    clf = IntentClassifier.fit(train, prof, posteriors=post)
    parts = DogaParts(
        clf,
        IntentFSM.fit(train),
        ReplyTagger.fit(train, embedder=clf.embedder, max_examples=300),
        ActTagger.fit(train, embedder=clf.embedder, max_examples=300),
        library=build_library(train, post, clf.embedder, max_k=3, min_support=2, seed=0),
    )
    perception = CustomerPerception.fit(n_merchants=12, embedder=clf.embedder)
    return prof, splits, parts, perception, model


def _world(world_parts, split_name: str, n: int):
    from salesman_utils.arena.callenv import CallWorld
    from salesman_utils.arena.planner_experiment import distinct_cases

    prof, splits, parts, perception, _ = world_parts
    return CallWorld(distinct_cases(splits[split_name], n), parts, perception, prof, max_turns=12)


# ---------------------------------------------------------------- the environment


def test_env_follows_the_gymnasium_api_and_hides_the_truth(world_parts):
    world = _world(world_parts, "validation", 6)
    env = world.make_env()
    obs, info = env.reset(seed=5, options={"case": 2})
    assert env.observation_space.contains(obs) and obs.shape == (world.n_features,)
    assert env.action_space.n == len(INTENTS)
    assert [m for m, ok in zip(INTENTS, info["action_mask"], strict=True) if ok] == ["Opening"]
    trace = []
    done = False
    while not done:
        move = int(np.flatnonzero(info["action_mask"])[0])
        obs, reward, done, truncated, info = env.step(move)
        assert not truncated and reward in (0.0, 1.0)
        assert info["quality"] in (0, 1) and isinstance(info["move_was_expert"], bool)
        trace.append((info["reply"], info["act"], reward))
    assert reward == (1.0 if info["outcome"] == "success" else 0.0)
    # what the agent hears: words and its OWN readings; no simulator label, no hidden field
    for t in info["history"]:
        assert t.hidden == {}
    # repeatable: the same seed and case give the same call
    env2 = world.make_env()
    obs2, info2 = env2.reset(seed=5, options={"case": 2})
    assert np.allclose(obs2, env.reset(seed=5, options={"case": 2})[0])
    replay = []
    done = False
    while not done:
        move = int(np.flatnonzero(info2["action_mask"])[0])
        _, reward, done, _, info2 = env2.step(move)
        replay.append((info2["reply"], info2["act"], reward))
    assert replay == trace


def test_env_bad_input_gets_a_clear_error(world_parts):
    world = _world(world_parts, "validation", 3)
    env = world.make_env()
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(0)
    env.reset(seed=0, options={"case": 0})
    with pytest.raises(ValueError, match="unknown intent 'Haggle'"):
        env.step("Haggle")
    with pytest.raises(ValueError, match="not a move index"):
        env.step(9)
    with pytest.raises(ValueError, match="FSM forbids Operational_Guidance"):
        env.step("Operational_Guidance")
    with pytest.raises(ValueError, match="unknown options"):
        env.reset(seed=0, options={"merchant": 1})
    with pytest.raises(ValueError, match="outside 0..2"):
        env.reset(seed=0, options={"case": 3})
    free = world.make_env(enforce_mask=False)  # the reference policies that use no FSM
    free.reset(seed=0, options={"case": 0})
    free.step("Operational_Guidance")
    while not free.sim.done:
        free.step("Operational_Guidance")
    with pytest.raises(RuntimeError, match="after the call ended"):
        free.step("Opening")


# ---------------------------------------------------------------- the planner and GRPO math


def test_planner_from_classifier_is_the_classifier(world_parts):
    _, splits, parts, _, _ = world_parts
    from salesman_utils.agent.intents import agent_view_histories

    hists = agent_view_histories(splits["test"][:10], parts.act_tagger)
    planner = Planner.from_classifier(parts.classifier)
    assert np.allclose(
        planner.predict_proba(hists), parts.classifier.predict_proba(hists), atol=1e-5
    )
    scratch = Planner.scratch(planner.linear.in_features, planner.embedder)
    assert np.allclose(scratch.predict_proba(hists[:3]), 1 / len(INTENTS))


def test_group_advantages_process_and_outcome_forms():
    rewards = [np.array([1.0, 0.0, 1.0]), np.array([0.0, 0.0]), np.array([5.0])]
    adv = group_advantages(rewards, [0, 0, 1], per_turn=True, eps=0.0)
    flat = np.array([1.0, 0.0, 1.0, 0.0, 0.0])
    z = (flat - flat.mean()) / flat.std()
    assert np.allclose(adv[0], [z[0] + z[1] + z[2], z[1] + z[2], z[2]])
    assert np.allclose(adv[1], [z[3] + z[4], z[4]])
    assert np.allclose(adv[2], [0.0])  # a group of one teaches nothing
    out = group_advantages([np.array([0, 0, 1.0]), np.array([0, 0.0])], [0, 0], per_turn=False)
    assert out[0][0] > 0 and np.allclose(out[0], out[0][0]) and np.allclose(out[1], -out[0][0])


def test_grpo_loss_raises_the_advantaged_move():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, len(INTENTS))
    x = torch.randn(8, 4)
    a = torch.tensor([1, 2] * 4)
    adv = torch.tensor([1.0, -1.0] * 4)
    with torch.no_grad():
        old = torch.log_softmax(layer(x), -1).gather(-1, a[:, None]).squeeze(-1)
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    loss, stats = grpo_loss(layer(x), a, adv, old, old, clip=0.2, beta=0.0)
    assert stats["kl"] == pytest.approx(0.0, abs=1e-6)  # ratio 1, reference = sampler
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        new = torch.log_softmax(layer(x), -1).gather(-1, a[:, None]).squeeze(-1)
    assert (new - old)[adv > 0].min() > 0 and (new - old)[adv < 0].max() < 0


def test_bayes_turn_rewards_read_visible_evidence(world_parts):
    *_, model = world_parts
    moves = ["Opening", "Needs_Discovery", "Operational_Guidance"]
    good = bayes_turn_rewards(
        model,
        moves,
        [None, "positive", "positive"],
        ["positive", "positive", "agreement"],
        "success",
        [False, False, False],
    )
    assert good.shape == (3,) and ((good > 0) & (good < 1)).all()
    flagged = bayes_turn_rewards(
        model,
        moves,
        [None, "positive", "positive"],
        ["positive", "positive", "agreement"],
        "success",
        [False, True, False],
    )
    assert flagged[1] < 0.01 < good[1]  # a fact-check violation makes a turn bad
    with pytest.raises(ValueError, match="outcome 'won'"):
        bayes_turn_rewards(model, moves, [None] * 3, ["neutral"] * 3, "won", [False] * 3)


# ---------------------------------------------------------------- training works


def test_a_few_grpo_updates_beat_random_moves(world_parts):
    """Eight GRPO updates from scratch on the call outcome (512 simulated calls): the greedy
    planner converts more of the same held-out calls than random moves (deterministic seeds)."""
    from salesman_utils.arena import planner_rl as rl

    *_, model = world_parts
    train, held = _world(world_parts, "train", 24), _world(world_parts, "test", 30)
    start = Planner.scratch(train.n_features, world_parts[2].classifier.embedder)
    settings = rl.GRPOSettings(
        updates=8, merchants_per_update=8, rollouts=8, eval_at=(0,), n_eval_calls=60
    )
    planner, curve = rl.train_planner(train, held, start, "outcome", settings, seed=0, model=model)
    rand = rl.evaluate(held, rl.random_policy(0), 60)
    learned = rl.evaluate(held, rl.planner_policy(planner, greedy=True), 60)
    assert list(curve["update"]) == [0, 8] and curve["calls"].iloc[-1] == 8 * 64
    assert learned["conversion"] > rand["conversion"] + 0.05, (learned, rand)


# ---------------------------------------------------------------- the arena plays the online calls


def test_env_says_the_online_template_agents_line(world_parts):
    """For the move the online `template_only` agent plans, the arena says that agent's template
    (`DOGAAgent._outline` with its default context, the last two turns' words), at every turn of
    a few calls; it used to search the library with the merchant's last words only."""
    from salesman_utils.agent.doga import AgentState
    from salesman_utils.agent.parts import make_agent

    prof, _, parts, _, _ = world_parts
    world = _world(world_parts, "test", 4)
    agent = make_agent("template", parts, prof)
    checked = 0
    for case in range(4):
        env = world.make_env()
        _, info = env.reset(seed=case, options={"case": case})
        done = False
        while not done:
            m, p = world.cases[case]
            plan = agent.plan_many([AgentState(info["history"], p, m.visible())])[0]
            assert world.line(case, plan["intent"], info["history"]) == plan["template"]
            _, _, done, _, info = env.step(plan["intent"])
            assert info["reply"] == plan["template"]
            checked += 1
    assert checked >= 8


def test_env_plays_the_calls_of_online_template_only(world_parts):
    """The imitation planner (a copy of DOGA's classifier, greedy) in the arena plays the same
    calls as the online `template_only` agent (`online.simulate_calls`) on the same cases and
    customer seeds: the same moves, lines and outcomes (benchmarks/bench_env_parity.py measures
    it on the tutorial profile)."""
    from salesman_utils.agent.parts import make_agent
    from salesman_utils.arena.online import simulate_calls
    from salesman_utils.arena.planner_rl import planner_policy, play

    prof, _, parts, perception, _ = world_parts
    world = _world(world_parts, "test", 6)
    seeds = [101 + i for i in range(len(world.cases))]
    agent = make_agent("template", parts, prof)
    online = simulate_calls(
        agent, world.cases, seeds, prof, perception=perception, max_turns=12, progress=False
    )
    imitation = Planner.from_classifier(parts.classifier)
    rolls = play(world, planner_policy(imitation, True), list(enumerate(seeds)))
    for d, r in zip(online, rolls, strict=True):
        moves = [t.hidden["planned_intent"] for t in d.turns if t.speaker == "agent"]
        assert [INTENTS[a] for a in r.actions] == moves
        assert r.outcome == d.outcome
