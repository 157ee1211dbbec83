"""Typed run profiles: load `configs/<name>.yaml` into a `Profile`, rejecting unknown keys.

A profile fixes everything a run depends on (models, sizes, steps, seeds, output folders), so that
switching from a laptop CPU to a GPU or an API judge is a change of profile, never of code.
Every section is a dataclass; an unknown key, a value of the wrong type or out of its range
(`Count`, `Share`, ...: a count of 0, a fraction above 1, fractions that do not sum to 1) raises
`ProfileError` in one line naming the file and the dotted key, at load, before anything runs (e.g.
``configs/smoke.yaml: training.sft.max_steps: must be >= 1, got 0``). A YAML syntax error names
the file and the line. Floats accept YAML 1.1's unquoted ``2e-4`` (which YAML reads as a string).

A profile names itself (`name`) and its output folders (`paths.artifacts`, `paths.results`): there
is no default, so a profile never writes into another's folders by leaving them out. Only
configs/tutorial.yaml writes the committed `results/` (and uses `artifacts/tutorial`); any other
profile writes under its own artifacts (or `results/<its name>`, as configs/gpu.yaml does).

The validator is the hand-written one below rather than pydantic: it is ~100 lines with no
dependency, ranges are one `Annotated` marker per field, and its messages are already the one line
wanted. pydantic (not a dependency of this package) would replace `_coerce` but need strict mode
(its lax mode turns "60" into 60), a validator for YAML's string ``2e-4`` (strict floats refuse it)
and an error formatter to give the same one line: not shorter.
"""

from __future__ import annotations

import dataclasses
import hashlib
import operator
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"


class ProfileError(ValueError):
    """A profile file is malformed: names the file and the key."""


@dataclass(frozen=True)
class Bound:
    """The range of a number in a profile (an `Annotated` marker): ge <= x, gt < x, x <= le."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None

    def check(self, value: float, where: str) -> None:
        rules = (
            (self.ge, ">=", operator.ge),
            (self.gt, ">", operator.gt),
            (self.le, "<=", operator.le),
        )
        for bound, rule, holds in rules:
            if bound is not None and not holds(value, bound):
                raise ProfileError(f"{where}: must be {rule} {bound:g}, got {value!r}")


# sizes, steps, items: 0 is never meant (TRL reads a max_steps of 0 or -1 as "train by epochs";
# a corpus of 0 calls fails much later, in a pandas KeyError)
Count = Annotated[int, Bound(ge=1)]
AtLeast0 = Annotated[int, Bound(ge=0)]  # retries; micro batches where 0 means "= batch_size"
Seed = Annotated[int, Bound(ge=0)]  # numpy's generators refuse negative seeds
Share = Annotated[float, Bound(ge=0, le=1)]  # fractions and probabilities
Positive = Annotated[float, Bound(gt=0)]  # learning rates, temperatures, seconds, minutes
NonNegative = Annotated[float, Bound(ge=0)]  # weights, KL coefficients
REQUIRED = {"required": True}  # field metadata: the profile must set it (no default is safe)


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
    max_concurrency: Count = 4
    max_retries: AtLeast0 = 5
    timeout_s: Positive = 60.0
    batch_size: Count = 8
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
    n_calls: Count = 2000
    seed: Seed = 0
    split_seed: Seed = 0
    split_fractions: list[Share] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    disfluency: Share = 0.15
    # dialogues rewritten by the realizer backend (0 = none, -1 = all)
    realize_sample: Annotated[int, Bound(ge=-1)] = 0
    realize_max_new_tokens: Count = 64  # the longest rewrite of one line, in tokens
    dedup_threshold: Share = 0.97
    probe_turns: Count = 2000  # train turns of the embedding quality probe (audit, notebooks 01-02)


@dataclass
class BayesConfig:
    prior_strength: NonNegative = 2.0
    em_iterations: Count = 50
    n_bootstrap: Count = 1000


@dataclass
class LoraConfig:
    r: Count = 16
    alpha: Count = 32
    dropout: Share = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )


@dataclass
class SFTSection:
    max_steps: Count = 60
    lr: Positive = 2e-4
    batch_size: Count = 8
    # examples per forward pass (0 = batch_size); the rest accumulates
    micro_batch_size: AtLeast0 = 0
    max_length: Count = 512
    # share of the SFT rows that are the corpus reps' answers to price pushes (training split,
    # `pricing.price_answer_turns`); the rest are the GRPO contexts' reference turns. 0 = none.
    price_share: Share = 0.0


@dataclass
class GRPOSection:
    max_steps: Count = 30
    lr: Positive = 1e-3
    num_generations: Annotated[int, Bound(ge=2)] = 8  # TRL: advantages need >= 2
    batch_size: Count = 8  # completions per optimizer step (batch_size / num_generations prompts)
    # completions per forward pass (0 = batch_size): bounds CPU memory
    micro_batch_size: AtLeast0 = 0
    num_iterations: Count = 4
    max_completion_length: Count = 48
    max_prompt_length: Count = 384
    beta: NonNegative = 0.0
    temperature: Positive = 1.0
    use_vllm: bool = False
    vllm_mode: str = "colocate"  # colocate (same GPUs) | server (`trl vllm-serve` elsewhere)
    vllm_server_base_url: str | None = None
    logging_steps: Count = 1
    save_steps: Count = 10


@dataclass
class RewardWeights:
    format: NonNegative = 0.5
    bayes: NonNegative = 1.0
    faith: NonNegative = 1.0


# the trained policies of notebook 02; every list of them in the package derives from this one
GrpoVariant = Literal["grpo_sim", "grpo_bayes", "sft_grpo_bayes"]
GRPO_VARIANTS: tuple[str, ...] = typing.get_args(GrpoVariant)
VARIANTS: tuple[str, ...] = ("sft", *GRPO_VARIANTS)


@dataclass
class TrainingConfig:
    n_train_prompts: Count = 256
    n_eval_prompts: Count = 100
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
    max_k: Count = 8
    min_support: Count = 3
    top_fraction: Share = 0.5  # keep turns whose posterior is in the top fraction of their intent
    use_llm_outlines: bool = False


@dataclass
class DogaConfig:
    n_online_calls: Count = 40
    max_turns: Count = 12
    guard_retries: AtLeast0 = 2
    retrieve_k: Count = 2
    max_new_tokens: Count = 64
    # the guard's acceptance (issue 24): a reply passes only if the agent's reply tagger gives the
    # planned move at least `intent_min_proba` (`doga._off_intent`) and at least
    # `outline_min_overlap` of its content words are in the outline, the knowledge base or the
    # dashboard (`doga._off_outline`; 0 = off). Both cuts are chosen on the validation split
    # against data/guard_negatives.yaml (benchmarks/bench_guard.py --acceptance)
    intent_min_proba: Share = 0.45
    outline_min_overlap: Share = 0.35
    # whether an off-intent reply is regenerated (guard_retries rounds) before the template; the
    # retries cost one generation per retried reply (see `doga.guard_replies`)
    retry_off_intent: bool = True
    # acceptance no worse than the fallback (issue 24): a model reply is also off-intent when the
    # agent's OWN reply tagger gives the planned move a lower probability in it than in the turn's
    # filled template, the line the guard would say instead (`doga._off_intent`)
    accept_vs_fallback: bool = True
    # whether notebook 04 also plays the plain prompted model (`base_plain`, no outline, no guard)
    # online; its replies are scored offline in notebooks 02 and 05 either way
    plain_online: bool = True
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
    n_seeds: Count = 5
    updates: Count = 40
    merchants_per_update: Count = 16
    rollouts: Count = 8  # G: calls per merchant from the same start
    lr: Positive = 0.05
    clip: Positive = 0.2
    beta: NonNegative = 0.02  # KL to the start policy
    inner_steps: Count = 2
    eval_at: list[Count] = field(default_factory=lambda: [2, 5, 10, 20, 30])  # + 0 and the end
    n_train_cases: Count = 256  # training-split (merchant, product) pairs the rollouts call
    n_val_calls: Count = 150  # the learning curves: validation-split merchants
    n_test_calls: Count = 300  # the final planners: test-split merchants
    workers: Count = 2
    # the planner DOGA runs in notebook 04, fixed before any result is seen (the method's arm)
    deploy_arm: PlannerArm = "bayes"
    deploy_start: PlannerStart = "imitation"


JudgeKind = Literal["local", "api", "trained"]


@dataclass
class EvalConfig:
    n_items: Count = 120
    n_bootstrap: Count = 1000
    n_pairwise: Count = 60  # expert-vs-novice pairs and best-vs-base pairs
    # the judge of the capability/metric tables: trained (judge.trained, offline default), api
    # (JSON, the paper's route) or local (the embedded LLM, probability-weighted: fails validation)
    judge_kind: JudgeKind = "trained"
    n_judge_items: Count = 30  # judged items per system
    n_planted: Count = 200  # held-out rep turns for the Faithfulness AUC (planted violations)
    judge_max_contexts: Count = 1500  # training-split contexts the trained judge learns from
    llm_judge_pairs: Count = 12  # the embedded LLM judge's small validation sample: pairs ...
    llm_judge_planted: Count = 24  # ... and planted items (it fails; 17 min for the full checks)
    max_new_tokens: Count = 64


@dataclass
class PathsConfig:
    """Output folders, relative to the repository root or absolute. Both must be set: see the
    module docstring for which folders a profile may write."""

    artifacts: str = field(default="", metadata=REQUIRED)
    results: str = field(default="", metadata=REQUIRED)


@dataclass
class Profile:
    """A whole run's configuration. `name` is the profile's name, `source` the file it came from."""

    name: str = field(default="", metadata=REQUIRED)
    seed: Seed = 0
    # wall-time budget of the whole run on a 2-core CPU, if any
    budget_minutes: Positive | None = None
    paths: PathsConfig = field(default_factory=PathsConfig, metadata=REQUIRED)
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


# YAML 1.1 (PyYAML) reads `2e-4` as a string: a float needs a dot (`2.0e-4`)
_YAML11_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _check_scalar(value: Any, tp: Any, where: str) -> Any:
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _YAML11_FLOAT.fullmatch(value.strip()):
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
    if origin is Annotated:
        base, *marks = typing.get_args(tp)
        value = _coerce(value, base, where)
        for mark in marks:
            if isinstance(mark, Bound):
                mark.check(value, where)
        return value
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
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}

    def at(key: str) -> str:
        return f"{prefix}.{key}" if prefix and not prefix.endswith(": ") else f"{prefix}{key}"

    for key, value in data.items():
        if key not in names:
            raise ProfileError(f"{at(key)}: unknown key (allowed: {', '.join(sorted(names))})")
        kwargs[key] = _coerce(value, hints[key], at(key))
    for f in dataclasses.fields(cls):
        if f.metadata.get("required") and kwargs.get(f.name) in (None, ""):
            raise ProfileError(f"{at(f.name)}: missing; {_REQUIRED_WHY}")
    return cls(**kwargs)


_REQUIRED_WHY = (
    "every profile sets its own name and paths (e.g. name: mine, paths: {artifacts: "
    "artifacts/mine, results: artifacts/mine/results}); there is no default folder"
)


def _yaml_error(path: Path, exc: yaml.YAMLError) -> ProfileError:
    """One line naming the file and the line of a YAML syntax error (PyYAML's own message spans
    several lines and names "<unicode string>")."""
    mark, start = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    what = getattr(exc, "problem", None) or str(exc)
    if context := getattr(exc, "context", None):
        what += f" ({context}{f' that starts at line {start.line + 1}' if start else ''})"
    return ProfileError(f"{path}: {at}not valid YAML: {' '.join(what.split())}")


def _check_profile(profile: Profile, path: Path) -> None:
    """What no single field can check: fractions that must sum to 1, and the folders a profile
    may write (only configs/tutorial.yaml writes the committed results/ and artifacts/tutorial)."""
    fr = profile.corpus.split_fractions
    if len(fr) != 3 or abs(sum(fr) - 1) > 1e-6:
        raise ProfileError(
            f"{path}: corpus.split_fractions: need 3 fractions (train, validation, test) summing "
            f"to 1, got {fr}"
        )
    if path.resolve() == (CONFIG_DIR / "tutorial.yaml").resolve():
        return
    committed = (REPO_ROOT / "results").resolve()
    own = committed / profile.name
    res = (REPO_ROOT / profile.paths.results).resolve()
    # results/ itself, a folder of it other than results/<name>, or a folder above it
    inside = res.is_relative_to(committed) and not res.is_relative_to(own)
    if inside or committed.is_relative_to(res):
        raise ProfileError(
            f"{path}: paths.results: {profile.paths.results!r} is or holds the committed "
            f"results/ folder, which only configs/tutorial.yaml writes; use a folder under this "
            f"profile's own artifacts (e.g. {profile.paths.artifacts}/results)"
        )
    tutorial_art = (REPO_ROOT / "artifacts" / "tutorial").resolve()
    art = (REPO_ROOT / profile.paths.artifacts).resolve()
    if art.is_relative_to(tutorial_art) or tutorial_art.is_relative_to(art):
        raise ProfileError(
            f"{path}: paths.artifacts: {profile.paths.artifacts!r} is or holds the "
            f"tutorial's artifacts, which only configs/tutorial.yaml writes; use "
            f"artifacts/{profile.name}"
        )


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
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if data is None:
        raise ProfileError(f"{path}: empty profile; {_REQUIRED_WHY}")
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    profile = _build(Profile, data, f"{path}: ")
    _check_profile(profile, path)
    profile.source = str(path)
    hints = typing.get_type_hints(Profile, include_extras=True)
    for key, value in overrides.items():
        if key not in hints or key == "source":
            raise ProfileError(f"override {key}: unknown key")
        if not dataclasses.is_dataclass(value):  # a whole section is the caller's own object
            value = _coerce(value, hints[key], f"override {key}")
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
    """Hash of the source files of the package's `modules` (e.g. "agent.training", "referee.facts").

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
