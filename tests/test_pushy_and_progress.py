"""Notebook 02's pieces for issue 25: both pushy-merchant sets go through one scorer
(`referee.pushy.score_systems`, also the sealed benchmark's), and the Trainer's notebook widget is
replaced by a text bar while the loss is shown as a table (`training.loss_table`)."""

from __future__ import annotations

import json

import pandas as pd

from salesman_utils.agent import training
from salesman_utils.referee import pushy


def test_both_pushy_sets_load():
    dev, sealed = pushy.load_pushy_cases(), pushy.load_pushy_cases(pushy.SEALED_FILE)
    assert pushy.SEALED_FILE.name == "pushy_merchants_sealed.yaml"
    assert dev and sealed and {c["text"] for c in dev}.isdisjoint(c["text"] for c in sealed)


def test_score_systems_scores_every_system_the_same_way():
    ds = {
        "product_id": ["spotlight_ads", "spotlight_ads", "spotlight_ads"],
        "merchant": [json.dumps({})] * 3,
        "kind": ["price", "discount", "promise"],
    }
    said = {
        None: ["The Starter plan is 39 a month.", "I can do 17 a month.", "Sure."],
        "adapter/x": ["Let me check.", "No.", "I guarantee 500 more orders."],
    }
    calls = []

    def generate(dataset, adapter, desc=None):
        calls.append(desc)
        return said[adapter]

    table, replies = pushy.score_systems(
        {"base_plain": None, "sft": "adapter/x"}, ds, generate, "sealed"
    )
    assert calls == ["sealed base_plain", "sealed sft"]
    assert list(table.index) == ["base_plain", "sft"] and table.index.name == "system"
    assert replies["sft"] == said["adapter/x"]
    base, sft = table.loc["base_plain"], table.loc["sft"]
    assert (base["n"], base["n_price_pushes"], base["price_answered"]) == (3, 2, 1)
    assert base["invented"] == 1 and sft["invented"] == 1 and sft["price_answered"] == 0
    assert table["invented"].dtype.kind == "i"  # counts stay integers
    assert table.to_dict(orient="index")["sft"] == pushy.pushy_report(said["adapter/x"], ds)


def test_loss_table_one_column_per_variant():
    sft = pd.DataFrame(
        {"loss": [2.0, 1.5, None], "step": [1, 2, 2], "train_loss": [None, None, 1.7]}
    )
    grpo = pd.DataFrame({"loss": [0.1, -0.2, None], "reward": [0.3, None, None], "step": [1, 2, 2]})
    table = training.loss_table({"sft": sft, "grpo_bayes": grpo, "empty": pd.DataFrame()})
    assert list(table.columns) == ["sft", "grpo_bayes"] and table.index.name == "step"
    assert table.loc[2, "sft"] == 1.5 and table.loc[2, "grpo_bayes"] == -0.2
    assert len(table) == 2  # the closing summary row (no step loss) is left out


class _FakeTrainer:
    def __init__(self, callbacks):
        self.callbacks = list(callbacks)

    def pop_callback(self, kind):
        for cb in self.callbacks:
            if isinstance(cb, kind):
                self.callbacks.remove(cb)
                return cb
        return None

    def add_callback(self, cb):
        self.callbacks.append(cb)


def test_notebook_widget_is_replaced_by_a_text_bar():
    from transformers.trainer_callback import ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    for default in (NotebookProgressCallback(), ProgressCallback()):
        trainer = _FakeTrainer([default])
        training._quiet_progress(trainer)
        assert not any(isinstance(cb, NotebookProgressCallback) for cb in trainer.callbacks)
        (bar,) = trainer.callbacks
        assert isinstance(bar, ProgressCallback) and bar is not default
        assert bar.on_log(None, None, None, logs={"loss": 1.0}) is None  # prints no dict
