"""Train the policies: SFT (TRL `SFTTrainer`) and GRPO (TRL `GRPOTrainer`), both with a peft LoRA.

Variants (docs/DESIGN.md §3.2): `sft` (imitation of the GRPO contexts' references; with
`training.sft.price_share` > 0 that share of its rows are price answers instead), `grpo_sim` (R_format + R_sim +
R_faith), `grpo_bayes` (R_format + R_bayes + R_faith, from the base model: the paper's best) and
`sft_grpo_bayes` (the same GRPO, starting from the SFT adapter). TRL/peft configs are built from
the profile in one place (`lora_config`, `sft_config`, `grpo_config`).

Layout under ``paths(profile).models/<variant>/``: ``run/`` holds the trainer's checkpoints (a run
resumes from the last one), ``adapter/`` the final LoRA adapter with ``train_meta.json`` (config
hash, log history). Training is idempotent: when ``adapter/`` was made with the same config hash
(profile training settings, model, dataset content, initial adapter) it is returned untouched.
The log history also goes to ``paths(profile).tables/train_log_<variant>.csv``.

Outside notebooks: ``python -m salesman_utils.agent.training --profile gpu --variant grpo_bayes``, also
under ``accelerate launch`` (DeepSpeed ZeRO, several GPUs). With ``training.grpo.use_vllm: true``
TRL generates with vLLM: ``vllm_mode: colocate`` shares the training GPUs; ``vllm_mode: server``
talks to ``trl vllm-serve --model <model>`` started on other GPUs (``vllm_server_base_url``).

One module although long: SFT and GRPO share the TRL/peft configs built from the profile, the
adapter layout and the idempotence key, which hashes this file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from salesman_utils.config import GRPO_VARIANTS, VARIANTS, Profile, code_digest, paths
from salesman_utils.models import resolve_chat_model

META_FILE = "train_meta.json"


# ---------------------------------------------------------------- configs (the one place)


def policy_model_id(profile: Profile) -> str:
    """The model being trained: the policy's model, else the profile's chat model, else embedded."""
    return resolve_chat_model(profile.models.policy.model or profile.models.chat_model)


def _device(profile: Profile) -> dict[str, Any]:
    import torch

    spec = profile.models.policy
    device = spec.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"{profile.source}: models.policy.device is {device!r} but torch sees no CUDA device "
            "(train this profile on a GPU machine, or use the tutorial profile)"
        )
    cpu = device == "cpu"
    # checkpointing saves GPU memory on big models; on a CPU it only costs time
    return {
        "use_cpu": cpu,
        "bf16": spec.dtype == "bfloat16" and not cpu,
        "gradient_checkpointing": not cpu,
    }


def lora_config(profile: Profile) -> Any:
    """peft LoRA settings of `profile.training.lora`."""
    from peft import LoraConfig

    lo = profile.training.lora
    return LoraConfig(
        r=lo.r,
        lora_alpha=lo.alpha,
        lora_dropout=lo.dropout,
        target_modules=list(lo.target_modules),
        task_type="CAUSAL_LM",
    )


def _common(profile: Profile, out_dir: Path) -> dict[str, Any]:
    return {
        "output_dir": str(out_dir),
        "report_to": "none",
        "seed": profile.seed,
        "data_seed": profile.seed,
        "save_strategy": "steps",
        "save_total_limit": 2,
        "dataloader_num_workers": 0,
        "model_init_kwargs": {"dtype": profile.models.policy.dtype},
        **_device(profile),
    }


def _batching(batch_size: int, micro: int, where: str) -> dict[str, int]:
    """`batch_size` per optimizer step as micro-batches of `micro` plus gradient accumulation."""
    micro = micro or batch_size
    if batch_size % micro:
        raise ValueError(
            f"{where}.batch_size ({batch_size}) must be a multiple of "
            f"{where}.micro_batch_size ({micro})"
        )
    return {
        "per_device_train_batch_size": micro,
        "gradient_accumulation_steps": batch_size // micro,
    }


def sft_config(profile: Profile, out_dir: Path) -> Any:
    """TRL `SFTConfig` from `profile.training.sft` (loss on the completion only)."""
    from trl import SFTConfig

    s = profile.training.sft
    return SFTConfig(
        max_steps=s.max_steps,
        learning_rate=s.lr,
        max_length=s.max_length,
        **_batching(s.batch_size, s.micro_batch_size, f"{profile.source}: training.sft"),
        logging_steps=1,
        save_steps=max(1, s.max_steps // 4),
        completion_only_loss=True,
        **_common(profile, out_dir),
    )


def grpo_config(profile: Profile, out_dir: Path, reward_weights: Sequence[float]) -> Any:
    """TRL `GRPOConfig` from `profile.training.grpo`.

    `batch_size` counts completions per device and optimizer step, so each step sees
    batch_size / num_generations prompts, generated together and trained on in micro-batches of
    `micro_batch_size` (gradient accumulation); with `num_iterations` > 1 one generated batch is
    reused for that many optimizer steps (only the steps that generate log rewards).
    """
    from trl import GRPOConfig

    g = profile.training.grpo
    if g.batch_size % g.num_generations:
        raise ValueError(
            f"{profile.source}: training.grpo.batch_size ({g.batch_size}) must be a multiple of "
            f"training.grpo.num_generations ({g.num_generations})"
        )
    vllm = {"use_vllm": g.use_vllm}
    if g.use_vllm:
        vllm["vllm_mode"] = g.vllm_mode
        if g.vllm_server_base_url:
            vllm["vllm_server_base_url"] = g.vllm_server_base_url
    return GRPOConfig(
        max_steps=g.max_steps,
        learning_rate=g.lr,
        num_generations=g.num_generations,
        **_batching(g.batch_size, g.micro_batch_size, f"{profile.source}: training.grpo"),
        num_iterations=g.num_iterations,
        max_completion_length=g.max_completion_length,
        beta=g.beta,
        temperature=g.temperature,
        logging_steps=g.logging_steps,
        save_steps=g.save_steps,
        reward_weights=list(reward_weights),
        **vllm,
        **_common(profile, out_dir),
    )


# ---------------------------------------------------------------- hashing and layout


def variant_dir(profile: Profile, variant: str) -> Path:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    return paths(profile).models / variant


def dataset_digest(dataset: Any) -> str:
    """Content hash of a `datasets.Dataset` (in-memory fingerprints are random, so not those)."""
    blob = json.dumps(dataset.to_list(), sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _file_digest(folder: str | Path | None) -> str | None:
    if folder is None:
        return None
    weights = sorted(Path(folder).glob("adapter_model.*"))
    if not weights:
        raise FileNotFoundError(f"{folder}: no adapter_model.* (not a LoRA adapter folder)")
    return hashlib.sha256(weights[0].read_bytes()).hexdigest()[:16]


def config_hash(
    profile: Profile, variant: str, dataset: Any, init_adapter: str | Path | None = None
) -> str:
    """Hash of everything that decides a trained adapter (steps, lr, LoRA, rewards, model, data,
    and the source of the code that trains it: `config.code_digest`)."""
    tr = profile.training
    section = tr.sft if variant == "sft" else tr.grpo
    payload = {
        "variant": variant,
        "model": policy_model_id(profile),
        "embedder": profile.models.embedder,
        "dtype": profile.models.policy.dtype,
        "seed": profile.seed,
        "lora": vars(tr.lora),
        "section": vars(section),
        "weights": None if variant == "sft" else vars(tr.reward_weights),
        "data": dataset_digest(dataset),
        "init": _file_digest(init_adapter),
        "code": code_digest(
            "agent.training",
            "agent.rewards",
            "agent.prompts",
            "agent.datasets",
            "world.knowledge",
            "world.factcheck",
            "agent.pricing",
        ),  # trainer, rewards, data
    }
    blob = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_meta(adapter_dir: Path) -> dict[str, Any] | None:
    f = Path(adapter_dir) / META_FILE
    return json.loads(f.read_text()) if f.exists() else None


def train_timing(adapter: str | Path, started: float) -> dict[str, Any]:
    """What the training of `adapter` cost, for a results file, given the `time.time()` at which
    the `train_variant` call that returned it began. `call_s` is that call's own seconds;
    `reused` says the adapter was finished before the call (its training is not in `call_s`);
    `resumed` says the session that finished it resumed a checkpoint, so its `session_s` is only
    part of the training. No adapter yet (stopped early): `finished` False."""
    meta = read_meta(Path(adapter)) or {}
    done = meta.get("finished_unix")
    return {
        "call_s": round(time.time() - started, 1),
        "finished": bool(meta),
        "reused": done is not None and done < started,
        "resumed": bool(meta.get("resumed_from")),
        "session_s": meta.get("session_s"),
    }


# ---------------------------------------------------------------- the shared run loop


def _quiet_progress(trainer: Any) -> None:
    """Progress as a plain tqdm step bar without the per-step dict it prints. Inside a notebook
    the Trainer's default is an HTML table widget (`NotebookProgressCallback`) that the saved
    notebook would keep: it is replaced by the same text bar, which the runner's kernel turns off
    (`run.KERNEL_ENV`), so progress shows in a terminal and the log lives in
    `tables/train_log_<variant>.csv` (`loss_table`)."""
    from transformers.trainer_callback import ProgressCallback, TrainerCallback

    try:
        from transformers.utils.notebook import NotebookProgressCallback
    except ImportError:  # IPython missing: no notebook widget to replace
        NotebookProgressCallback = ProgressCallback  # noqa: N806

    class _Bar(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
            return None

    kinds: tuple[type[TrainerCallback], ...] = (ProgressCallback, NotebookProgressCallback)
    if any([trainer.pop_callback(kind) is not None for kind in kinds]):
        trainer.add_callback(_Bar())


def _last_complete_checkpoint(run_dir: Path) -> str | None:
    """The newest checkpoint that was fully written. A run killed while saving leaves a
    checkpoint folder without `trainer_state.json` (written last); it is removed, not resumed."""
    ckpts = sorted(
        (p for p in run_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    for ckpt in reversed(ckpts):
        if (ckpt / "trainer_state.json").exists() and any(ckpt.glob("adapter_model.*")):
            return str(ckpt)
        shutil.rmtree(ckpt, ignore_errors=True)
    return None


def _run(
    profile: Profile,
    variant: str,
    digest: str,
    make_trainer: Any,
    max_steps: int,
    force: bool,
) -> tuple[Path, list[dict[str, Any]]]:
    root = variant_dir(profile, variant)
    run_dir, final = root / "run", root / "adapter"
    meta = read_meta(final)
    if meta and meta.get("config_hash") == digest and not force:
        _write_log(profile, variant, meta["log_history"])  # results/ may have been cleaned
        return final, meta["log_history"]
    stamp = run_dir / "config_hash.txt"
    if force or (run_dir.exists() and (not stamp.exists() or stamp.read_text() != digest)):
        shutil.rmtree(run_dir, ignore_errors=True)  # checkpoints of another config: never resume
    run_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    last = _last_complete_checkpoint(run_dir)
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        trainer = make_trainer(run_dir)
        _quiet_progress(trainer)
        trainer.train(resume_from_checkpoint=last)
    history = [dict(h) for h in trainer.state.log_history]
    if not trainer.is_world_process_zero():
        return final, history
    _write_log(profile, variant, history)
    if trainer.state.global_step < max_steps:  # stopped early (callback): resume next time
        return run_dir, history
    tmp = root / "adapter.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))
    body = {
        "variant": variant,
        "config_hash": digest,
        "model": policy_model_id(profile),
        "steps": trainer.state.global_step,
        "resumed_from": Path(last).name if last else None,
        # seconds of the session that finished the adapter only: when `resumed`, the sessions
        # before it (interrupted, their time not recorded) trained the steps up to the checkpoint
        "resumed": last is not None,
        "session_s": round(time.time() - t0, 1),
        "finished_unix": round(time.time(), 1),
        "log_history": history,
    }
    (tmp / META_FILE).write_text(json.dumps(body, indent=1, default=str) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final, history


def _write_log(profile: Profile, variant: str, history: list[dict[str, Any]]) -> Path:
    out = paths(profile).tables / f"train_log_{variant}.csv"
    pd.DataFrame(history).to_csv(out, index=False)
    return out


def loss_table(logs: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Training loss per logged step (rows) and variant (columns), from the log histories of
    `load_train_log`; the Trainer's closing summary row (no step loss) is left out. The GRPO
    rewards over the steps are `reward_summary`'s."""
    cols = {}
    for variant, df in logs.items():
        if {"step", "loss"} <= set(df.columns):
            steps = df[df["loss"].notna()].drop_duplicates("step", keep="last")
            cols[variant] = steps.set_index("step")["loss"]
    table = pd.DataFrame(cols)
    table.index.name = "step"
    return table


def load_train_log(profile: Profile, variant: str) -> pd.DataFrame:
    """The log history of a trained variant (from `tables/train_log_<variant>.csv`)."""
    f = paths(profile).tables / f"train_log_{variant}.csv"
    if not f.exists():
        raise FileNotFoundError(f"{f}: no training log yet; train variant {variant!r} first")
    return pd.read_csv(f)


# ---------------------------------------------------------------- public trainers


def train_sft(
    profile: Profile,
    dataset: Any,
    variant: str = "sft",
    callbacks: list | None = None,
    force: bool = False,
) -> tuple[Path, list[dict[str, Any]]]:
    """SFT with LoRA on a prompt/completion dataset (conversational, see `datasets.to_sft_dataset`).

    Returns (adapter folder, log history). Skips training when the adapter for the same config
    hash exists; resumes from the last checkpoint of an interrupted run.
    """
    from trl import SFTTrainer

    digest = config_hash(profile, variant, dataset)

    def make(run_dir: Path) -> Any:
        return SFTTrainer(
            model=policy_model_id(profile),
            args=sft_config(profile, run_dir),
            train_dataset=dataset,
            peft_config=lora_config(profile),
            callbacks=callbacks,
        )

    return _run(profile, variant, digest, make, profile.training.sft.max_steps, force)


def _load_with_adapter(profile: Profile, adapter: str | Path) -> Any:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from salesman_utils.artifacts import check_adapter

    check_adapter(adapter, profile.name)  # a damaged file: its name and the retrain command
    base = AutoModelForCausalLM.from_pretrained(
        policy_model_id(profile), dtype=getattr(torch, profile.models.policy.dtype)
    )
    return PeftModel.from_pretrained(base, str(adapter), is_trainable=True)


def train_grpo(
    profile: Profile,
    variant: str,
    dataset: Any,
    init_adapter: str | Path | None = None,
    callbacks: list | None = None,
    force: bool = False,
) -> tuple[Path, list[dict[str, Any]]]:
    """GRPO with LoRA on a dataset from `datasets.build_grpo_dataset`.

    `variant` picks the rewards (`rewards.make_reward_funcs`); `init_adapter` (the SFT adapter for
    `sft_grpo_bayes`) is trained further instead of a fresh LoRA. Returns (adapter folder, log
    history with ``rewards/<name>/mean`` per reward function). Idempotent and resumable like
    `train_sft`.
    """
    from trl import GRPOTrainer

    from salesman_utils.agent.rewards import make_reward_funcs

    if variant not in GRPO_VARIANTS:
        raise ValueError(f"unknown GRPO variant {variant!r} (known: {', '.join(GRPO_VARIANTS)})")
    if variant == "sft_grpo_bayes" and init_adapter is None:
        raise ValueError("variant 'sft_grpo_bayes' needs init_adapter= (the SFT adapter folder)")
    funcs, weights = make_reward_funcs(profile, variant)
    digest = config_hash(profile, variant, dataset, init_adapter)

    def make(run_dir: Path) -> Any:
        model: Any = policy_model_id(profile)
        args = grpo_config(profile, run_dir, weights)
        if init_adapter is not None:
            model = _load_with_adapter(profile, init_adapter)
            args.model_init_kwargs = None  # the model is built here, not by TRL
        return GRPOTrainer(
            model=model,
            reward_funcs=funcs,
            args=args,
            train_dataset=dataset,
            peft_config=None if init_adapter is not None else lora_config(profile),
            callbacks=callbacks,
        )

    return _run(profile, variant, digest, make, profile.training.grpo.max_steps, force)


# ---------------------------------------------------------------- pipeline (notebook 02 and CLI)


def prepare_datasets(profile: Profile) -> dict[str, Any]:
    """The corpus of notebook 01 -> GRPO and SFT training sets and the held-out eval set.

    Training sets come from the train split loaded WITHOUT hidden fields; only the eval set (test
    split) carries the evaluation-only expert columns. With `training.sft.price_share` > 0 that
    share of the SFT rows are the training reps' answers to price pushes (`datasets.sft_rows`).
    """
    from salesman_utils.agent.bayes import posteriors_for
    from salesman_utils.agent.datasets import (
        build_eval_dataset,
        build_grpo_dataset,
        price_answer_rows,
        select_prototypes,
        sft_rows,
        to_sft_dataset,
    )
    from salesman_utils.world.corpus import load_corpus

    folder = paths(profile).corpus
    visible = load_corpus(folder, with_hidden=False)
    post = posteriors_for(profile, visible)
    grpo = build_grpo_dataset(visible["train"], post["train"], profile)
    test = load_corpus(folder, with_hidden=True)["test"]
    # the test turns' posteriors read visible evidence only; prototypes come from the train split
    protos = select_prototypes(visible["train"], post["train"], profile.seed)
    ev = build_eval_dataset(test, profile, posteriors=post["test"], prototypes=protos)
    share, sft = profile.training.sft.price_share, grpo
    if share:
        sft = sft_rows(grpo, price_answer_rows(visible["train"], profile), share, profile.seed)
    return {"grpo": grpo, "sft": to_sft_dataset(sft), "eval": ev}


def train_variant(
    profile: Profile, variant: str, data: dict[str, Any] | None = None, force: bool = False
) -> tuple[Path, list[dict[str, Any]]]:
    """Train one variant end to end (`sft_grpo_bayes` trains or reuses `sft` first)."""
    data = data if data is not None else prepare_datasets(profile)
    if variant == "sft":
        return train_sft(profile, data["sft"], force=force)
    init = train_variant(profile, "sft", data)[0] if variant == "sft_grpo_bayes" else None
    return train_grpo(profile, variant, data["grpo"], init_adapter=init, force=force)


def generate_replies(
    profile: Profile, eval_dataset: Any, adapter: str | Path | None = None, desc: str | None = None
) -> list[str]:
    """Greedy replies of the policy (+ LoRA adapter) to every eval prompt, cached on disk; a reply
    ends at its first line break (`llm.TURN_STOP`: one spoken turn)."""
    from salesman_utils.llm import TURN_STOP, make_backend

    spec = {**vars(profile.models.policy), "adapter": str(adapter) if adapter else None}
    backend = make_backend(spec, profile=profile)
    n = profile.training.grpo.max_completion_length
    return backend.chat(list(eval_dataset["prompt"]), max_new_tokens=n, desc=desc, stop=TURN_STOP)


def evaluate_systems(
    profile: Profile, eval_dataset: Any, adapters: dict[str, str | Path | None]
) -> pd.DataFrame:
    """Per system (name -> adapter, None = base model) and eval item: `rewards.score_replies`,
    and, when the eval set has the reward columns (`prepare_datasets` adds them), every training
    reward (`rewards.reward_components`, prefixed ``r_``)."""
    from salesman_utils.agent.rewards import reward_components, score_replies

    with_rewards = {"weight", "prototype"} <= set(eval_dataset.column_names)
    frames = []
    for name, adapter in adapters.items():
        replies = generate_replies(profile, eval_dataset, adapter, desc=f"eval {name}")
        df = score_replies(replies, eval_dataset, profile)
        if with_rewards:
            comps = reward_components(replies, eval_dataset, profile).add_prefix("r_")
            df = pd.concat([df.drop(columns="reply"), comps, df[["reply"]]], axis=1)
        df.insert(0, "item", range(len(df)))
        df.insert(0, "system", name)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


EVAL_COLUMNS = {  # column -> (table name, scale); columns absent from the items are skipped
    "sim_expert": ("sim_to_expert", 1.0),
    "violations": ("violations_per_100", 100.0),
    "format_ok": ("speakable_turn_%", 100.0),
    "degenerate": ("degenerate_%", 100.0),  # referee columns, added by notebook 02
    "price_answered": ("price_q_answered_%", 100.0),
}
REWARD_COLUMNS = ["r_format", "r_similarity", "r_bayes", "r_faith", "r_total_sim", "r_total_bayes"]
# the weighted total each GRPO variant maximises (a column of `REWARD_COLUMNS`)
OBJECTIVE_COLUMN = {
    "grpo_sim": "r_total_sim",
    "grpo_bayes": "r_total_bayes",
    "sft_grpo_bayes": "r_total_bayes",
}


def eval_table(items: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per system: each metric's mean with its bootstrap 95% interval over eval items."""
    from salesman_utils.stats import summarize

    order = list(dict.fromkeys(items["system"]))
    table = pd.DataFrame({"system": order})
    for col, (name, scale) in EVAL_COLUMNS.items():
        if col not in items.columns:
            continue
        s = summarize(items, by="system", value=col, n_boot=n_boot, seed=seed).set_index("system")
        for part in ("mean", "lo", "hi"):
            key = name if part == "mean" else f"{name}_{part}"
            table[key] = [scale * s.loc[sys_, part] for sys_ in order]
    table["n"] = [int((items["system"] == s).sum()) for s in order]
    return table


def paired_vs(
    items: pd.DataFrame,
    reference: str,
    columns: Sequence[str],
    systems: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Each system against `reference` on the same items: per system and column, both means and
    the difference with its paired-bootstrap 95% interval (`stats.paired_bootstrap_diff`;
    items where either value is NaN are dropped, so `n` can be below the item count).
    ``excludes_0`` says whether the interval lies on one side of zero."""
    from salesman_utils.stats import paired_bootstrap_diff

    wide = {s: g.set_index("item") for s, g in items.groupby("system", sort=False)}
    if reference not in wide:
        raise KeyError(f"paired_vs: no system {reference!r} in the items")
    systems = [s for s in (systems or wide) if s != reference]
    rows = []
    for sys_ in systems:
        a, b = wide[sys_], wide[reference].reindex(wide[sys_].index)
        for col in columns:
            if col not in a.columns:
                continue
            diff, lo, hi = paired_bootstrap_diff(a[col], b[col], n=n_boot, seed=seed)
            keep = a[col].notna() & b[col].notna()
            rows.append(
                {
                    "system": sys_,
                    "vs": reference,
                    "metric": col,
                    "mean": a.loc[keep, col].mean(),
                    "mean_vs": b.loc[keep, col].mean(),
                    "diff": diff,
                    "lo": lo,
                    "hi": hi,
                    "excludes_0": bool(lo > 0 or hi < 0),
                    "n": int(keep.sum()),
                }
            )
    return pd.DataFrame(rows)


def reward_summary(logs: dict[str, pd.DataFrame], keys: Sequence[str], k: int = 3) -> pd.DataFrame:
    """Per variant and logged reward: the mean over the first and over the last `k` logged steps,
    `k` shrunk to half the logged steps (at least 1) so that the two windows never overlap."""
    rows = []
    for variant, df in logs.items():
        for key in keys:
            vals = df[key].dropna() if key in df.columns else pd.Series(dtype=float)
            name = key.split("/")[1] if key.count("/") == 2 else key
            w = max(1, min(k, len(vals) // 2))
            rows.append(
                {
                    "variant": variant,
                    "reward": name,
                    "first": vals.head(w).mean(),
                    "last": vals.tail(w).mean(),
                    "window": w,
                    "logged_steps": len(vals),
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    from salesman_utils.config import load_profile

    parser = argparse.ArgumentParser(description="Train one policy variant (SFT or GRPO + LoRA).")
    parser.add_argument("--profile", default="tutorial", help="smoke | tutorial | gpu | a YAML")
    parser.add_argument("--variant", default="grpo_bayes", choices=VARIANTS)
    parser.add_argument("--force", action="store_true", help="retrain even if the adapter exists")
    args = parser.parse_args(argv)
    profile = load_profile(args.profile)
    adapter, history = train_variant(profile, args.variant, force=args.force)
    print(f"{args.variant}: adapter {adapter} ({len(history)} log entries)")


if __name__ == "__main__":
    main()
