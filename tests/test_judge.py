"""Judge: rubric, probability-weighted local scores, JSON parsing with retries, pairwise bias."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from salesman_utils.judge import llm_judge as judge
from salesman_utils.judge.llm_judge import (
    CAPABILITIES,
    METRICS,
    expected_score,
    pairwise,
    pairwise_summary,
    parse_scores,
    score,
    score_probs,
)


class FakeBackend:
    """Stands in for a chat backend: `dist(messages, prefix)` gives next-token probabilities,
    `reply(messages, seed)` gives chat answers. Records every call."""

    name = "fake"

    def __init__(self, dist=None, reply=None):
        self.dist, self.reply = dist, reply
        self.score_calls: list[tuple[int, str, tuple]] = []
        self.chat_calls: list[tuple[int, int, float]] = []

    def score_next_tokens(self, batch, candidates, assistant_prefix=""):
        self.score_calls.append((len(batch), assistant_prefix, tuple(candidates)))
        out = []
        for msgs in batch:
            d = self.dist(msgs, assistant_prefix)
            out.append({c: math.log(d[c]) if d.get(c, 0) > 0 else -math.inf for c in candidates})
        return out

    def chat(self, batch, max_new_tokens=64, temperature=0.0, top_p=1.0, seed=0, desc=None):
        self.chat_calls.append((len(batch), seed, temperature))
        return [self.reply(m, seed) for m in batch]


def _item(i, system="sys", capability="Objection_Handling", reply="We can set it up today."):
    return {
        "item_id": f"it{i}",
        "system": system,
        "capability": capability,
        "reply": reply,
        "product_facts": "Boost Ads: 299 per month, no contract.",
        "merchant_facts": "Noodle shop; 410 orders/month vs peer median 620.",
        "history": "Agent: Hello!\nCustomer: It is too expensive.",
    }


HAND = {"Score: ": {"1": 0.2, "7": 0.6, "9": 0.1}, "Score: 1": {"0": 0.5}}


def test_rubric_has_six_capabilities_and_seven_metrics_with_anchors():
    assert list(CAPABILITIES) == [
        "Opening",
        "Needs_Discovery",
        "Business_Analysis",
        "Product_Introduction",
        "Objection_Handling",
        "Operational_Guidance",
    ]
    assert list(METRICS) == [
        "Faithfulness",
        "Persuasiveness",
        "Strategic_Fit",
        "Personalization",
        "Coherence",
        "Naturalness",
        "Professionalism",
    ]
    for c in [*CAPABILITIES.values(), *METRICS.values()]:
        assert [band for band, _ in c.anchors] == ["1-2", "3-4", "5-6", "7-8", "9-10"]
        assert all(len(text) > 10 for _, text in c.anchors)
    md = judge.rubric_markdown()
    assert all(name.replace("_", " ") in md for name in [*CAPABILITIES, *METRICS])
    assert md.count("\n| ") == 6 + 7 + 2  # two header rows


def test_score_probs_two_token_ten_and_weighted_mean():
    fake = FakeBackend(dist=lambda m, prefix: HAND[prefix])
    probs = score_probs(fake, [[{"role": "user", "content": "x"}]], "Score: ")
    # P(1) = 0.2 * (1 - 0.5), P(10) = 0.2 * 0.5, P(7) = 0.6, P(9) = 0.1
    np.testing.assert_allclose(probs[0], [0.1, 0, 0, 0, 0, 0, 0.6, 0, 0.1, 0.1])
    assert [c[1] for c in fake.score_calls] == ["Score: ", "Score: 1"]
    assert fake.score_calls[1][2] == ("0",)
    assert expected_score(probs)[0] == pytest.approx((0.1 + 4.2 + 0.9 + 1.0) / 0.9)


def test_score_probs_skips_second_pass_when_one_is_unlikely_and_keeps_order():
    def dist(msgs, prefix):
        if prefix == "Score: 1":
            return {"0": 0.9}
        return {"1": 0.5, "3": 0.5} if "long" in msgs[0]["content"] else {"1": 1e-6, "8": 1.0}

    fake = FakeBackend(dist=dist)
    batch = [[{"role": "user", "content": "a long prompt"}], [{"role": "user", "content": "s"}]]
    probs = score_probs(fake, batch, "Score: ")
    assert fake.score_calls[1][0] == 1  # only the first row needed the "1" -> "0" pass
    np.testing.assert_allclose(probs[0][[0, 2, 9]], [0.05, 0.5, 0.45])
    assert probs[1][9] == 0.0 and probs[1][7] == 1.0


def test_expected_score_uniform_and_zero_mass():
    assert expected_score(np.full(10, 0.1))[0] == pytest.approx(5.5)
    assert math.isnan(expected_score(np.zeros(10))[0])


def test_local_score_one_prompt_per_item_and_metric():
    def dist(msgs, prefix):
        if prefix.endswith("1"):
            return {"0": 0.0}
        metric = re.search(r"## Criterion: (\w+)", msgs[1]["content"]).group(1)
        return {"9": 1.0} if metric == "Faithfulness" else {"4": 0.5, "6": 0.5}

    items = [_item(0), _item(1, capability="Opening")]
    df = score(FakeBackend(dist=dist), items, kind="local")
    assert len(df) == 2 * 7 and df["parse_ok"].all()
    assert set(df.columns) >= {"item_id", "system", "capability", "metric", "score", "parse_ok"}
    faith = df[df.metric == "Faithfulness"]["score"]
    assert (faith == 9.0).all()
    assert (df[df.metric != "Faithfulness"]["score"] == 5.0).all()
    assert df.attrs["parse_failures"] == 0


def test_api_score_retries_with_new_seed_then_counts_failures_as_nan():
    good = json.dumps({"scores": dict.fromkeys(METRICS, 8), "rationale": "fine"})

    def reply(msgs, seed):
        if "it0" in msgs[1]["content"] or "tomorrow" in msgs[1]["content"]:
            return "I think it is good." if seed == 0 else f"```json\n{good}\n```"
        return '{"scores": {"Faithfulness": 0}}'  # out of range and incomplete: never valid

    items = [_item(0, reply="Let's start tomorrow."), _item(1)]
    fake = FakeBackend(reply=reply)
    df = score(fake, items, kind="api", max_retries=2)
    ok = df[df.item_id == "it0"]
    assert ok["parse_ok"].all() and (ok["score"] == 8).all() and ok["rationale"].iloc[0] == "fine"
    bad = df[df.item_id == "it1"]
    assert (~bad["parse_ok"]).all() and bad["score"].isna().all()  # NaN, never a zero
    assert df.attrs["parse_failures"] == 1
    assert df.attrs["retries"] == 2 + 1  # both retried once, the bad one twice
    assert [(n, s) for n, s, _ in fake.chat_calls] == [(2, 0), (2, 1), (1, 2)]
    assert fake.chat_calls[0][2] == 0.0 and fake.chat_calls[1][2] > 0  # retries sample
    assert df.groupby("item_id")["score"].mean().isna().sum() == 1


def test_parse_scores_accepts_variants_and_rejects_bad_values():
    names = ["Faithfulness", "Strategic_Fit"]
    ok = parse_scores('Sure! {"scores": {"faithfulness": "7", "Strategic Fit": 9.0}}', names)
    assert ok == ({"Faithfulness": 7, "Strategic_Fit": 9}, "")
    for bad in (
        '{"scores": {"Faithfulness": 7}}',
        '{"scores": {"Faithfulness": 7, "Strategic_Fit": 11}}',
        '{"scores": {"Faithfulness": 7, "Strategic_Fit": 6.5}}',
        '{"scores": {"Faithfulness": true, "Strategic_Fit": 6}}',
        "{not json}",
        "no braces at all",
    ):
        assert parse_scores(bad, names) is None, bad


def test_check_items_names_the_bad_item():
    with pytest.raises(ValueError, match=r"items\[1\]\.capability: unknown 'Pitch'"):
        judge.check_items([_item(0), _item(1, capability="Pitch")])
    with pytest.raises(ValueError, match=r"items\[0\]: missing field 'reply'"):
        judge.check_items([{"item_id": "x", "capability": "Opening"}])


def _pair_items(n=3):
    a = [_item(i, system="doga", reply=f"good reply {i}") for i in range(n)]
    b = [_item(i, system="plain", reply=f"weak reply {i}") for i in range(n)]
    return a, b


def test_pairwise_local_position_bias_gives_ties():
    fake = FakeBackend(dist=lambda m, p: {"A": 0.7, "B": 0.3})  # always the first shown
    df = pairwise(fake, *_pair_items())
    assert (df["verdict_ab"] == "a").all() and (df["verdict_ba"] == "b").all()
    assert (df["verdict"] == "tie").all() and df.attrs["flip_rate"] == 1.0
    s = pairwise_summary(df)
    assert s["ties"] == 3 and s["first_position_rate"] == 1.0 and math.isnan(s["share_a"])


def test_pairwise_local_content_preference_is_order_invariant():
    def dist(msgs, prefix):
        text = msgs[1]["content"]
        a_good = text.index("good reply") < text.index("weak reply")
        return {"A": 0.8, "B": 0.2} if a_good else {"A": 0.2, "B": 0.8}

    df = pairwise(FakeBackend(dist=dist), *_pair_items())
    assert (df["verdict"] == "a").all() and df.attrs["flip_rate"] == 0.0
    np.testing.assert_allclose(df["pref_a_ab"], 0.8)
    np.testing.assert_allclose(df["pref_a_ba"], 0.8)
    s = pairwise_summary(df)
    assert (s["wins_a"], s["share_a"], s["first_position_rate"]) == (3, 1.0, 0.5)
    assert 0.4 < s["share_a_lo"] < s["share_a_hi"] == pytest.approx(1.0)


def test_pairwise_api_parse_failure_is_invalid():
    def reply(msgs, seed):
        text = msgs[1]["content"]
        if "reply 2" in text:
            return "hmm"
        first_good = text.index("good reply") < text.index("weak reply")
        return json.dumps({"winner": "A" if first_good else "B", "rationale": "r"})

    df = pairwise(FakeBackend(reply=reply), *_pair_items(), kind="api", max_retries=1)
    assert list(df["verdict"]) == ["a", "a", "invalid"]
    assert df.attrs["parse_failures"] == 2 and df.attrs["flip_rate"] == 0.0
    assert pairwise_summary(df)["invalid"] == 1


def test_pairwise_needs_matching_items():
    a, b = _pair_items(2)
    with pytest.raises(ValueError, match="no item for item_id"):
        pairwise(FakeBackend(), a, b[:1])


def test_pairwise_letters_and_ten_tokenize_as_the_judge_assumes():
    from transformers import AutoTokenizer

    from salesman_utils.models import default_chat_model_path

    class Tok:  # the embedded model's tokenizer only: no weights needed
        tokenizer = AutoTokenizer.from_pretrained(default_chat_model_path())

    assert judge._pieces(Tok, "A") == ["A"] and judge._pieces(Tok, "B") == ["B"]
    assert judge._pieces(Tok, "10") == ["1", "0"]
    assert all(judge._pieces(Tok, str(k)) == [str(k)] for k in range(1, 10))


@pytest.mark.slow
def test_local_judge_with_embedded_model(chat_backend):
    item = _item(0, reply="I understand the price worry: it is 299 a month with no contract.")
    names = ["Faithfulness", "Naturalness"]
    df = score(chat_backend, [item], metrics=names, kind="local")
    assert len(df) == 2 and df["parse_ok"].all()
    assert df["score"].between(1, 10).all() and (df["mass"] > 0.5).all()
    again = score(chat_backend, [item], metrics=names, kind="local")
    np.testing.assert_allclose(again["score"], df["score"])  # cached and deterministic
    # head + tail forward (a cache hit from score()) == the two plain score_next_tokens passes
    prompts = [judge.local_prompt(judge.check_items([item])[0], names[1])]
    fused = score_probs(chat_backend, prompts, "Score: ", split_marker=judge.LOCAL_SPLIT)
    two_pass = score_probs(chat_backend, prompts, "Score: ", fused=False, prune_below=0.0)
    np.testing.assert_allclose(fused, two_pass, atol=2e-4)
