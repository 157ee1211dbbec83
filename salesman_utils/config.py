"""Typed run profiles: load `configs/<name>.yaml` into a `Profile`, rejecting unknown keys.

A profile fixes everything a run depends on (models, sizes, steps, seeds, output folders), so that
switching from a laptop CPU to a GPU or an API judge is a change of profile, never of code.
Every section is a dataclass; an unknown key or a value of the wrong type raises `ProfileError`
naming the file and the dotted key (e.g. ``configs/smoke.yaml: training.grpo.lr: expected float``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"


class ProfileError(ValueError):
    """A profile file is malformed: names the file and the key."""


# ---------------------------------------------------------------- sections


@dataclass
class BackendSpec:
    """One chat backend. `kind: local` runs transformers in-process; `openai` talks HTTP.

    `model: null` means the embedded SmolLM2-135M-Instruct. For `openai`, the key is read from the
    environment variable named by `api_key_env` (never stored in a profile).
    """

    kind: str = "local"
    model: str | None = None
    adapter: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    max_concurrency: int = 4
    max_retries: int = 5
    timeout_s: float = 60.0
    batch_size: int = 8
    dtype: str = "float32"
    device: str | None = None
    cache: bool = True


@dataclass
class ModelsConfig:
    chat_model: str | None = None  # null = embedded SmolLM2-135M-Instruct
    embedder: str | None = None  # null = embedded all-MiniLM-L6-v2
    policy: BackendSpec = field(default_factory=BackendSpec)
    judge: BackendSpec = field(default_factory=BackendSpec)
    realizer: BackendSpec = field(default_factory=BackendSpec)


@dataclass
class CorpusConfig:
    n_calls: int = 2000
    seed: int = 0
    split_seed: int = 0
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    disfluency: float = 0.15
    realize_sample: int = 0  # dialogues rewritten by the realizer backend (0 = none, -1 = all)
    dedup_threshold: float = 0.97
    probe_turns: int = 2000  # train turns of the embedding quality probe (audit, notebooks 01-02)


@dataclass
class BayesConfig:
    prior_strength: float = 2.0
    em_iterations: int = 50
    n_bootstrap: int = 1000


@dataclass
class LoraConfig:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )


@dataclass
class SFTSection:
    max_steps: int = 60
    lr: float = 2e-4
    batch_size: int = 8
    micro_batch_size: int = 0  # examples per forward pass (0 = batch_size); the rest accumulates
    max_length: int = 512
    # share of the SFT rows that are the corpus reps' answers to price pushes (training split,
    # `pricing.price_answer_turns`); the rest are the GRPO contexts' reference turns. 0 = none.
    price_share: float = 0.0


@dataclass
class GRPOSection:
    max_steps: int = 30
    lr: float = 1e-3
    num_generations: int = 8
    batch_size: int = 8  # completions per optimizer step (batch_size / num_generations prompts)
    micro_batch_size: int = 0  # completions per forward pass (0 = batch_size): bounds CPU memory
    num_iterations: int = 4
    max_completion_length: int = 48
    max_prompt_length: int = 384
    beta: float = 0.0
    temperature: float = 1.0
    use_vllm: bool = False
    vllm_mode: str = "colocate"  # colocate (same GPUs) | server (`trl vllm-serve` elsewhere)
    vllm_server_base_url: str | None = None
    logging_steps: int = 1
    save_steps: int = 10


@dataclass
class RewardWeights:
    format: float = 0.5
    bayes: float = 1.0
    faith: float = 1.0


# the trained policies of notebook 02; every list of them in the package derives from this one
GrpoVariant = Literal["grpo_sim", "grpo_bayes", "sft_grpo_bayes"]
GRPO_VARIANTS: tuple[str, ...] = typing.get_args(GrpoVariant)
VARIANTS: tuple[str, ...] = ("sft", *GRPO_VARIANTS)


@dataclass
class TrainingConfig:
    n_train_prompts: int = 256
    n_eval_prompts: int = 100
    # product facts in GRPO/SFT prompts: full (product_facts_text) | compact (plans, eligibility,
    # promotion, never-claim lines only: about half the tokens, which is most of a CPU step's cost)
    prompt_facts: str = "full"
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    lora: LoraConfig = field(default_factory=LoraConfig)
    sft: SFTSection = field(default_factory=SFTSection)
    grpo: GRPOSection = field(default_factory=GRPOSection)
    reward_weights: RewardWeights = field(default_factory=RewardWeights)


@dataclass
class LibraryConfig:
    max_k: int = 8
    min_support: int = 3
    top_fraction: float = 0.5  # keep turns whose posterior is in the top fraction of their intent
    use_llm_outlines: bool = False


@dataclass
class DogaConfig:
    n_online_calls: int = 40
    max_turns: int = 12
    guard_retries: int = 2
    retrieve_k: int = 2
    max_new_tokens: int = 64
    # the guard's acceptance (issue 24): a reply passes only if the agent's reply tagger gives the
    # planned move at least `intent_min_proba` (`doga._off_intent`) and at least
    # `outline_min_overlap` of its content words are in the outline, the knowledge base or the
    # dashboard (`doga._off_outline`; 0 = off). Both cuts are chosen on the validation split
    # against data/guard_negatives.yaml (benchmarks/bench_guard.py --acceptance)
    intent_min_proba: float = 0.45
    outline_min_overlap: float = 0.35
    # whether an off-intent reply is regenerated (guard_retries rounds) before the template; the
    # retries cost one generation per retried reply (see `doga.guard_replies`)
    retry_off_intent: bool = True
    # the GRPO policy under `best_grpo_doga`; fixed before any result is seen (no selection on the
    # held-out items notebook 05 scores): default the paper's best, GRPO with R_bayes and no SFT
    grpo_variant: GrpoVariant = "grpo_bayes"


PlannerArm = Literal["outcome", "bayes", "oracle"]
PlannerStart = Literal["scratch", "imitation"]


@dataclass
class PlannerConfig:
    """Strategy-level GRPO of notebook 02 (`planner_rl`, `planner_experiment`): which of the six moves to make next."""

    arms: list[PlannerArm] = field(default_factory=lambda: ["outcome", "bayes", "oracle"])
    starts: list[PlannerStart] = field(default_factory=lambda: ["scratch", "imitation"])
    n_seeds: int = 5
    updates: int = 40
    merchants_per_update: int = 16
    rollouts: int = 8  # G: calls per merchant from the same start
    lr: float = 0.05
    clip: float = 0.2
    beta: float = 0.02  # KL to the start policy
    inner_steps: int = 2
    eval_at: list[int] = field(default_factory=lambda: [2, 5, 10, 20, 30])  # + 0 and the end
    n_train_cases: int = 256  # training-split (merchant, product) pairs the rollouts call
    n_val_calls: int = 150  # the learning curves: validation-split merchants
    n_test_calls: int = 300  # the final planners: test-split merchants
    workers: int = 2
    # the planner DOGA runs in notebook 04, fixed before any result is seen (the method's arm)
    deploy_arm: PlannerArm = "bayes"
    deploy_start: PlannerStart = "imitation"


JudgeKind = Literal["local", "api", "trained"]


@dataclass
class EvalConfig:
    n_items: int = 120
    n_bootstrap: int = 1000
    n_pairwise: int = 60  # expert-vs-novice pairs and best-vs-base pairs
    # the judge of the capability/metric tables: trained (judge_model, offline default), api
    # (JSON, the paper's route) or local (the embedded LLM, probability-weighted: fails validation)
    judge_kind: JudgeKind = "trained"
    n_judge_items: int = 30  # judged items per system
    n_planted: int = 200  # held-out rep turns for the Faithfulness AUC (planted violations)
    judge_max_contexts: int = 1500  # training-split contexts the trained judge learns from
    llm_judge_pairs: int = 12  # the embedded LLM judge's small validation sample: pairs ...
    llm_judge_planted: int = 24  # ... and planted items (it fails; 17 min for the full checks)
    max_new_tokens: int = 64


@dataclass
class PathsConfig:
    artifacts: str = "artifacts/tutorial"
    results: str = "results"


@dataclass
class Profile:
    """A whole run's configuration. `name` is the profile's name, `source` the file it came from."""

    name: str = "tutorial"
    seed: int = 0
    budget_minutes: float | None = None  # wall-time budget of the whole run on a 2-core CPU, if any
    paths: PathsConfig = field(default_factory=PathsConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    bayes: BayesConfig = field(default_factory=BayesConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    library: LibraryConfig = field(default_factory=LibraryConfig)
    doga: DogaConfig = field(default_factory=DogaConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- parsing


def _check_scalar(value: Any, tp: Any, where: str) -> Any:
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ProfileError(f"{where}: expected bool, got {value!r}")
        return value
    if tp is int and isinstance(value, bool):
        raise ProfileError(f"{where}: expected int, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ProfileError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ProfileError(
                f"{where}: expected one of {', '.join(map(str, allowed))}, got {value!r}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ProfileError as exc:
                errors.append(str(exc))
        raise ProfileError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ProfileError(f"{where}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ProfileError(f"{where}: expected a mapping, got {value!r}")
        return _build(tp, value, where)
    return _check_scalar(value, tp, where)


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix and not prefix.endswith(": ") else f"{prefix}{key}"
        if key not in names:
            raise ProfileError(f"{where}: unknown key (allowed: {', '.join(sorted(names))})")
        kwargs[key] = _coerce(value, hints[key], where)
    return cls(**kwargs)


def profile_path(name_or_path: str | Path) -> Path:
    """`smoke` -> configs/smoke.yaml; a path is returned as is (must exist)."""
    p = Path(name_or_path)
    if p.suffix in {".yaml", ".yml"} or p.exists():
        if not p.exists():
            raise ProfileError(f"{p}: profile file not found")
        return p
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if not candidate.exists():
        known = sorted(x.stem for x in CONFIG_DIR.glob("*.yaml"))
        raise ProfileError(f"unknown profile {name_or_path!r}: no {candidate} (known: {known})")
    return candidate


def load_profile(name_or_path: str | Path = "tutorial", **overrides: Any) -> Profile:
    """Load and validate a profile by name (`smoke`, `tutorial`, `gpu`) or YAML path.

    `overrides` replace top-level sections or scalars after validation, e.g.
    ``load_profile("smoke", seed=3)``.
    """
    path = profile_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: top level must be a mapping")
    data.setdefault("name", path.stem)
    profile = _build(Profile, data, f"{path}: ")
    profile.source = str(path)
    for key, value in overrides.items():
        if not hasattr(profile, key):
            raise ProfileError(f"override {key}: unknown key")
        setattr(profile, key, value)
    return profile


@dataclass(frozen=True)
class Paths:
    """Resolved output folders of a profile (created on demand)."""

    root: Path
    artifacts: Path
    results: Path
    figures: Path
    tables: Path
    metrics: Path
    notebooks: Path
    corpus: Path
    models: Path
    cache: Path


def code_digest(*modules: str) -> str:
    """Hash of the source files of the package's `modules` (e.g. "training", "referee.facts").

    Every cache of a trained or fitted thing (adapters, DOGA parts, the trained judge) puts the
    digest of the code that produces it into its key, so that a code change retrains instead of
    silently reusing a stale artifact; any edit counts, a comment included (cheap to over-invalidate,
    costly to reuse a wrong model)."""
    h = hashlib.sha256()
    for name in modules:
        path = Path(__file__).parent.joinpath(*name.split(".")).with_suffix(".py")
        h.update(name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def repo_relative(path: str | Path) -> str:
    """`path` relative to the repository root when it is inside it (for results files), else absolute."""
    p = Path(path).resolve()
    return str(p.relative_to(REPO_ROOT)) if p.is_relative_to(REPO_ROOT) else str(p)


def paths(profile: Profile, create: bool = True) -> Paths:
    """Absolute folders for artifacts (heavy, git-ignored) and results (committed)."""
    art = (REPO_ROOT / profile.paths.artifacts).resolve()
    res = (REPO_ROOT / profile.paths.results).resolve()
    p = Paths(
        root=REPO_ROOT,
        artifacts=art,
        results=res,
        figures=res / "figures",
        tables=res / "tables",
        metrics=res / "metrics",
        notebooks=res / "notebooks",
        corpus=art / "corpus",
        models=art / "models",
        cache=art / "cache",
    )
    if create:
        for folder in dataclasses.astuple(p):
            if folder != REPO_ROOT:
                Path(folder).mkdir(parents=True, exist_ok=True)
    return p
