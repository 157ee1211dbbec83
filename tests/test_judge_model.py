"""The trained judge: its transparent checks, training on the training split, scoring, cache."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from salesman_utils.judge import checks as judge_checks
from salesman_utils.judge import llm_judge as judge
from salesman_utils.judge.items import judge_view
from salesman_utils.judge.rubric import METRICS, api_prompt, local_prompt, pairwise_prompt
from salesman_utils.judge.trained import (
    JudgeSettings,
    heldout_half,
    heldout_line_id,
    load_judge,
    load_or_train,
    training_examples,
)
from salesman_utils.world.corpus import agent_turn_contexts, simulate_corpus, split
from salesman_utils.world.simulator import INTENTS

KB = (
    "Product: TapTill POS (store_operation) - a card terminal.\n"
    "Plans: Solo $25/month (one terminal); Counter $59/month (up to three terminals).\n"
    "Features: a card fee of 2.6% per card payment.\n"
    "Promotion: the hardware free with a 12-month plan (new accounts; otherwise $199).\n"
    "Never claim: no card fees; same-day payouts."
)
MERCHANT = (
    "Merchant: Okafor Corner Grocery (retail, Millbrook), Mr. Okafor. orders 880 (peers 700), "
    "conversion 6.1% (peers 8.4)."
)


def _item(reply, history="Merchant: How much is it?"):
    return {
        "item_id": "x",
        "capability": "Product_Introduction",
        "reply": reply,
        "product_facts": KB,
        "merchant_facts": MERCHANT,
        "history": history,
    }


def test_checks_read_the_knowledge_base_and_dashboard_given_as_text():
    ok = judge_checks.check_reply(_item("Counter is $59 a month, and the fee is 2.6% per payment."))
    assert ok["unsupported_money"] == ok["unsupported_percent"] == ok["promise"] == 0
    bad = judge_checks.check_reply(_item("Counter is $49 a month on the Gold plan, guaranteed."))
    assert bad["unsupported_money"] == 1 and bad["fake_plan"] == 1 and bad["promise"] == 1
    words = judge_checks.check_reply(_item("It's fifty-nine dollars, with a twelve-month plan."))
    assert words["unsupported_money"] == 0 and words["unsupported_duration"] == 0
    hedged = judge_checks.check_reply(_item("I can't guarantee more sales, nobody can."))
    assert hedged["promise"] == 0 and hedged["hedged_promise"] == 1
    data = judge_checks.check_reply(_item("Your conversion is 6.1% vs 8.4%, about 27% below."))
    assert data["merchant_numbers"] >= 2 and data["unsupported_percent"] == 0
    never = judge_checks.check_reply(_item("There are no card fees with us."))
    assert never["never_claim_overlap"] == 1.0


def test_a_misstated_dashboard_number_is_unsupported_whatever_its_size():
    rating = (
        "Dashboard: Cut Above Barbers (beauty_salon, Westfield), Mr. Osei. rating 4.8 (peers 4.6)."
    )
    item = {**_item("Your rating is 4.2, under the 4.6 of shops nearby."), "merchant_facts": rating}
    assert judge_checks.check_reply(item)["unsupported_other"] == 1
    right = {**item, "reply": "Your rating is 4.8, above the 4.6 of shops nearby."}
    assert judge_checks.check_reply(right)["unsupported_other"] == 0
    assert judge_checks.check_reply(right)["merchant_numbers"] == 2
    # a small whole number next to a metric word is a metric too; counting words stay fine
    assert (
        judge_checks.check_reply(_item("You have 9 reviews, peers 14."))["unsupported_other"] == 2
    )
    counting = _item("It takes 2 minutes, one thing at a time, and you're set in 3 steps.")
    assert judge_checks.check_reply(counting)["unsupported_other"] == 0


def test_checks_find_the_store_and_owner_names_of_the_dashboard_line():
    dash = "Dashboard: Mendes Bakery (restaurant, Oak Hollow), Mr. Mendes. rating 3.9 (peers 4.5)."
    item = {**_item("Mr. Mendes, your rating is 3.9."), "merchant_facts": dash}
    assert judge_checks.check_reply(item)["merchant_name"] == 1
    assert judge_checks.check_reply({**item, "reply": "Hi there."})["merchant_name"] == 0


def test_checks_flag_degenerate_forms():
    assert judge_checks.check_reply(_item(""))["empty"] == 1
    assert judge_checks.check_reply(_item("- Solo\n- Counter\n- fees"))["list_or_markup"] == 1
    assert judge_checks.check_reply(_item("As an AI, here is a reply: hi"))["meta"] == 1
    assert judge_checks.check_reply(_item("Merchant: sure, sounds good"))["speaker_label"] == 1
    assert judge_checks.check_reply(_item(KB))["echo_kb"] > 0.9
    assert judge_checks.check_reply(_item("You need to decide right now."))["pressure"] >= 1


@pytest.fixture(scope="module")
def corpus():
    return split(simulate_corpus(40, seed=5), seed=0)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("judge")
    j, note = load_or_train(corpus["train"], folder, JudgeSettings(max_contexts=60))
    return j, note, folder


def test_trained_judge_scores_every_metric_in_range_and_is_cached(corpus, trained):
    j, note, folder = trained
    assert note.startswith("trained")
    d = corpus["test"][0]
    c = next(agent_turn_contexts(d))
    items = [judge_view(d, c, r, "s", None) for r in (d.turns[c.index].text, "", "- a\n- b")]
    df = judge.score(j, items, kind="trained")
    assert len(df) == 3 * len(METRICS) and df["score"].between(1, 10).all()
    assert df["parse_ok"].all() and df.attrs["parse_failures"] == 0
    again, note2 = load_or_train(corpus["train"], folder, JudgeSettings(max_contexts=60))
    assert note2.startswith("loaded")
    # the reloaded judge scores as the trained one (float32 embeddings of a batch can differ in
    # the 7th digit with the batch they are computed in)
    np.testing.assert_allclose(again.score_items(items)[0], j.score_items(items)[0], rtol=1e-5)
    # other settings (or data, or source) -> another key, never the stale file
    assert len(list(folder.glob("*.pkl"))) == 1


def test_scores_ignore_the_capability_and_pairwise_cannot_flip(corpus, trained):
    j = trained[0]
    d = corpus["test"][0]
    c = next(agent_turn_contexts(d))
    a = judge_view(d, c, d.turns[c.index].text, "a", None)
    b = judge_view(d, c, "Okay.", "b", None)
    relabel = {**a, "capability": "Operational_Guidance"}
    np.testing.assert_allclose(j.score_items([a])[0], j.score_items([relabel])[0])
    pw = judge.pairwise(j, [a], [b], kind="trained")
    assert pw.attrs["flip_rate"] == 0.0 and pw["verdict"].iloc[0] in {"a", "b", "tie"}


def test_checkpoint_for_another_rubric_is_refused(trained, tmp_path):
    path = next(trained[2].glob("*.pkl"))
    blob = pickle.loads(path.read_bytes())
    blob["metrics"] = [*blob["metrics"][:-1], "Charm"]
    bad = tmp_path / "old.pkl"
    bad.write_bytes(pickle.dumps(blob))
    with pytest.raises(ValueError, match=r"old\.pkl: judge checkpoint .*Charm.*train again"):
        load_judge(bad)


def test_no_judge_prompt_holds_the_capability_or_the_reps_reply(corpus):
    for d in corpus["test"][:3]:
        for c in agent_turn_contexts(d):
            turn = d.turns[c.index]
            it = judge_view(d, c, "Thanks for your time today.", "sys", None)
            prompts = [local_prompt(it, m) for m in METRICS] + [api_prompt(it, list(METRICS))]
            prompts.append(pairwise_prompt(it, "A reply.", "B reply.", "api"))
            text = " ".join(m["content"] for p in prompts for m in p)
            assert turn.intent not in text and turn.intent.replace("_", " ") not in text
            assert turn.text not in text


def test_training_never_reads_the_held_out_banks_validation_half(corpus):
    expert = [
        t.hidden["expert_text"] for d in corpus["train"] for t in d.turns if t.speaker == "agent"
    ]
    halves = [heldout_half(x) for x in expert]
    assert None not in halves and {"train", "validation"} <= set(halves)
    assert heldout_line_id("Thanks, bye.") is None
    items, _, _ = training_examples(corpus["train"], JudgeSettings(max_contexts=10**6))
    replies = "\n".join(it["reply"] for it in items)
    held = [x for x, h in zip(expert, halves, strict=True) if h == "validation"]
    seen = [x for x, h in zip(expert, halves, strict=True) if h == "train"]
    assert not [x for x in held if x in replies]
    assert any(x in replies for x in seen)  # the training half is used as good replies
    # the move reader learns from the held-out bank's training half, labelled by the expert move
    _, _, raw = training_examples(corpus["train"], JudgeSettings(max_contexts=10**6))
    assert raw["move"] and all(heldout_half(t) == "train" for t, _ in raw["move"])
    assert {m for _, m in raw["move"]} <= set(INTENTS)


def test_denied_never_claims_do_not_count():
    never = ("bad reviews are removed", "you will never run out of stock")
    assert judge_checks.never_overlap("We can't remove reviews, nobody can.", never) == 0
    assert judge_checks.never_overlap("Yes, we get the bad reviews removed.", never) == 1
    assert judge_checks.never_overlap("You will never run out of stock again.", never) == 1
    late = "It removes the bad reviews, so you never have to worry."  # negation after the claim
    assert judge_checks.never_overlap(late, never) == 1
    data_dump = _item("metric = rating; value = 4.3; peer median = 4.6")
    assert judge_checks.check_reply(data_dump)["list_or_markup"] == 1
