"""Training mechanics on a toy dataset: TRL configs from the profile, GRPO and SFT with LoRA,
resume from the last checkpoint, and the idempotent skip of a finished run."""

from __future__ import annotations

import dataclasses

import pytest

from salesman_utils.agent import training as T
from salesman_utils.agent.datasets import sft_target
from salesman_utils.agent.prompts import RULES
from salesman_utils.config import load_profile

REFERENCE = "Hi, this is Sam from Neighborly, calling about more visibility for your store."
PROTOTYPE = "Hello, I'm calling from Neighborly about your store page."


def toy_grpo_dataset(n: int = 8):
    from datasets import Dataset

    rows = [
        {
            "prompt": [
                {
                    "role": "system",
                    "content": "You sell Spotlight Ads ($39/month).\n" + "\n".join(RULES),
                },
                {"role": "user", "content": f"Merchant: Hello, who is this? ({i})"},
            ],
            "reference": REFERENCE,
            "prototype": PROTOTYPE,
            "weight": 0.2 + 0.1 * i,
            "intent": "Opening",
            "product_id": "spotlight_ads",
            "merchant": "",
            "dialogue_id": f"toy-{i}",
            "turn_index": 0,
        }
        for i in range(n)
    ]
    return Dataset.from_list(rows)


@pytest.fixture()
def toy_profile(tmp_path):
    prof = load_profile("smoke")
    prof = dataclasses.replace(
        prof,
        paths=dataclasses.replace(
            prof.paths, artifacts=str(tmp_path), results=str(tmp_path / "res")
        ),
    )
    prof.training.grpo.max_steps = 2
    prof.training.grpo.save_steps = 1
    prof.training.grpo.max_completion_length = 12
    prof.training.sft.max_steps = 1
    return prof


def test_configs_come_from_the_profile(toy_profile, tmp_path):
    g = toy_profile.training.grpo
    cfg = T.grpo_config(toy_profile, tmp_path / "run", [0.5, 0.0, 1.0, 1.0])
    assert (cfg.num_generations, cfg.per_device_train_batch_size) == (
        g.num_generations,
        g.batch_size,
    )
    assert (cfg.max_completion_length, cfg.num_iterations, cfg.beta) == (
        12,
        g.num_iterations,
        g.beta,
    )
    assert cfg.learning_rate == g.lr and cfg.reward_weights == [0.5, 0.0, 1.0, 1.0]
    assert cfg.report_to in ("none", [], ["none"]) and cfg.seed == toy_profile.seed
    assert not cfg.use_vllm
    lora = T.lora_config(toy_profile)
    assert lora.r == toy_profile.training.lora.r
    assert set(lora.target_modules) == set(toy_profile.training.lora.target_modules)
    bad = dataclasses.replace(g, batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match="multiple of"):
        T.grpo_config(
            dataclasses.replace(
                toy_profile, training=dataclasses.replace(toy_profile.training, grpo=bad)
            ),
            tmp_path,
            [1.0],
        )
    s = T.sft_config(toy_profile, tmp_path / "sft")
    assert s.max_steps == 1 and s.completion_only_loss


def test_config_hash_tracks_what_matters(toy_profile):
    ds = toy_grpo_dataset(4)
    h = T.config_hash(toy_profile, "grpo_bayes", ds)
    assert h == T.config_hash(toy_profile, "grpo_bayes", toy_grpo_dataset(4))
    assert h != T.config_hash(toy_profile, "grpo_sim", ds)
    assert h != T.config_hash(toy_profile, "grpo_bayes", toy_grpo_dataset(5))
    toy_profile.training.grpo.lr *= 2
    assert h != T.config_hash(toy_profile, "grpo_bayes", ds)


class StopAfterFirstStep:
    """A trainer callback that interrupts the run after step 1 (a crash stand-in)."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step >= 1:
                    control.should_training_stop = True
                return control

        return _Stop()


@pytest.mark.slow
def test_grpo_resume_and_idempotent_skip(toy_profile):
    ds = toy_grpo_dataset()
    out, history = T.train_grpo(toy_profile, "grpo_bayes", ds, callbacks=[StopAfterFirstStep()])
    root = T.variant_dir(toy_profile, "grpo_bayes")
    assert (root / "run" / "checkpoint-1").is_dir()
    assert not (root / "adapter").exists()  # interrupted: no final adapter yet

    adapter, history = T.train_grpo(toy_profile, "grpo_bayes", ds)
    assert adapter == root / "adapter" and (adapter / "adapter_config.json").exists()
    meta = T.read_meta(adapter)
    assert meta["resumed_from"] == "checkpoint-1" and meta["steps"] == 2
    rewarded = [h for h in history if "reward" in h]
    assert [h["step"] for h in rewarded] == [1, 2]
    for name in ("format_reward", "similarity_reward", "bayes_reward", "faithfulness_reward"):
        assert f"rewards/{name}/mean" in rewarded[0]
    log = T.load_train_log(toy_profile, "grpo_bayes")
    assert "rewards/bayes_reward/mean" in log.columns

    mtime = (adapter / "adapter_model.safetensors").stat().st_mtime
    again, history2 = T.train_grpo(toy_profile, "grpo_bayes", ds)  # same config: skipped
    assert again == adapter and history2 == history
    assert (adapter / "adapter_model.safetensors").stat().st_mtime == mtime


@pytest.mark.slow
def test_sft_then_grpo_from_the_sft_adapter(toy_profile):
    from datasets import Dataset

    grpo = toy_grpo_dataset(4)
    sft = Dataset.from_list(
        [
            {
                "prompt": r["prompt"],
                "completion": [
                    {"role": "assistant", "content": sft_target(r["intent"], r["reference"])}
                ],
            }
            for r in grpo
        ]
    )
    adapter, history = T.train_sft(toy_profile, sft)
    assert (adapter / "adapter_config.json").exists()
    assert any("loss" in h for h in history)
    toy_profile.training.grpo.max_steps = 1
    out, hist = T.train_grpo(toy_profile, "sft_grpo_bayes", grpo, init_adapter=adapter)
    assert (out / "adapter_config.json").exists()
    assert T.read_meta(out)["steps"] == 1
    with pytest.raises(ValueError, match="init_adapter"):
        T.train_grpo(toy_profile, "sft_grpo_bayes", grpo)


def test_a_half_written_checkpoint_is_not_resumed(tmp_path):
    from salesman_utils.agent.training import _last_complete_checkpoint

    good, broken = tmp_path / "checkpoint-4", tmp_path / "checkpoint-8"
    good.mkdir()
    (good / "trainer_state.json").write_text("{}")
    (good / "adapter_model.safetensors").write_bytes(b"x")
    broken.mkdir()
    (broken / "README.md").write_text("killed while saving")
    assert _last_complete_checkpoint(tmp_path) == str(good)
    assert not broken.exists()
    assert _last_complete_checkpoint(tmp_path / "empty") is None


def test_reward_summary_windows_never_overlap():
    import pandas as pd

    from salesman_utils.agent.training import reward_summary

    key = "rewards/bayes_reward/mean"
    logs = {
        "three": pd.DataFrame({key: [0.1, None, 0.2, None, 0.4]}),  # rewards logged on 3 steps
        "eight": pd.DataFrame({key: [float(i) for i in range(8)]}),
    }
    table = reward_summary(logs, [key]).set_index("variant")
    assert table.loc["three", ["first", "last", "window"]].tolist() == [0.1, 0.4, 1]
    assert table.loc["eight", ["first", "last", "window"]].tolist() == [1.0, 6.0, 3]
    assert (table["reward"] == "bayes_reward").all()


def test_paired_vs_reference_and_eval_table_skip_missing_columns():
    import numpy as np
    import pandas as pd

    n = 30
    base = pd.DataFrame({"system": "base", "item": range(n), "x": np.linspace(0, 1, n)})
    up = base.assign(system="up", x=base["x"] + 0.5)
    same = base.assign(system="same")
    items = pd.concat([base, up, same], ignore_index=True)
    items["y"] = np.where(items["item"] % 2 == 0, np.nan, 1.0)  # NaN pairs are dropped
    out = T.paired_vs(items, "base", ["x", "y", "absent"], n_boot=200).set_index(
        ["system", "metric"]
    )
    assert out.loc[("up", "x"), "diff"] == pytest.approx(0.5)
    assert out.loc[("up", "x"), "excludes_0"] and not out.loc[("same", "x"), "excludes_0"]
    assert out.loc[("up", "y"), "n"] == n // 2 and ("up", "absent") not in out.index
    with pytest.raises(KeyError, match="no system"):
        T.paired_vs(items, "nope", ["x"])
    table = T.eval_table(items.assign(sim_expert=items["x"]), n_boot=50)
    assert "sim_to_expert" in table.columns and "degenerate_%" not in table.columns


def test_train_timing_says_reused_and_resumed_instead_of_a_bare_number(tmp_path):
    """A reused adapter cost ~0 s in this call and a resumed one only its last session: the
    record says so (issue 27) rather than claiming 0.0 s or a third of the training."""
    import json
    import time

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    meta = {"resumed_from": "checkpoint-4", "session_s": 96.0, "finished_unix": time.time() - 60}
    (adapter / T.META_FILE).write_text(json.dumps(meta))
    t = T.train_timing(adapter, started=time.time())
    assert t["reused"] and t["resumed"] and t["session_s"] == 96.0 and t["call_s"] < 5
    t = T.train_timing(adapter, started=time.time() - 120)  # finished during this call
    assert not t["reused"] and t["finished"]
    assert T.train_timing(tmp_path / "run", started=time.time())["finished"] is False
