"""Profiles that fail at load, in one line naming the file and the setting (issue 27).

Each case is one fault a careful new user made on the smoke profile: a count of 0, a step count
TRL turns into epochs, split fractions that do not sum to 1, YAML 1.1's unquoted ``2e-4``, broken
YAML, a profile without its own folders, an empty file, a profile that would write the committed
results/. The command-line runner prints the same line on stderr and exits 2.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from salesman_utils.config import CONFIG_DIR, REPO_ROOT, ProfileError, load_profile

SMOKE = (CONFIG_DIR / "smoke.yaml").read_text()


def _profile(tmp_path: Path, change=None, text: str | None = None) -> Path:
    """The smoke profile, changed by `change(data)` (or replaced by `text`), as a file."""
    if text is None:
        data = yaml.safe_load(SMOKE)
        if change:
            change(data)
        text = yaml.safe_dump(data, sort_keys=False)
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


def _refused(path: Path) -> str:
    """The one-line message load_profile refuses `path` with; it names the file."""
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    line = str(err.value)
    assert "\n" not in line and str(path) in line
    no_chain = err.value.__context__ is None or err.value.__suppress_context__
    assert err.value.__cause__ is None and no_chain  # no chained traceback under it
    return line


def _cli(path: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "salesman_utils.run", "--profile", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(path) in proc.stderr
    return proc.stderr


# --- counts, steps, fractions ------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, -5])
def test_a_corpus_of_no_calls_is_refused(tmp_path, n):
    line = _refused(_profile(tmp_path, lambda d: d["corpus"].update(n_calls=n)))
    assert f"corpus.n_calls: must be >= 1, got {n}" in line


@pytest.mark.parametrize("section", ["sft", "grpo"])
@pytest.mark.parametrize("steps", [-1, 0])
def test_step_counts_below_one_are_refused(tmp_path, section, steps):
    """TRL reads max_steps <= 0 as "train by epochs": 24 steps instead of 1 on the smoke data."""
    line = _refused(_profile(tmp_path, lambda d: d["training"][section].update(max_steps=steps)))
    assert f"training.{section}.max_steps: must be >= 1, got {steps}" in line


def test_split_fractions_are_checked_at_load_not_after_150_s(tmp_path):
    start = time.perf_counter()
    line = _refused(
        _profile(tmp_path, lambda d: d["corpus"].update(split_fractions=[0.5, 0.6, -0.1]))
    )
    assert "corpus.split_fractions[2]: must be >= 0, got -0.1" in line
    line = _refused(
        _profile(tmp_path, lambda d: d["corpus"].update(split_fractions=[0.5, 0.4, 0.2]))
    )
    assert "corpus.split_fractions: need 3 fractions" in line and "summing to 1" in line
    line = _refused(_profile(tmp_path, lambda d: d["corpus"].update(split_fractions=[0.5, 0.5])))
    assert "corpus.split_fractions: need 3 fractions" in line
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        (lambda d: d["corpus"].update(disfluency=1.5), "corpus.disfluency: must be <= 1, got 1.5"),
        (lambda d: d["corpus"].update(seed=-1), "corpus.seed: must be >= 0, got -1"),
        (lambda d: d["training"]["sft"].update(lr=0), "training.sft.lr: must be > 0, got 0.0"),
        (
            lambda d: d["training"]["grpo"].update(num_generations=1),
            "training.grpo.num_generations: must be >= 2, got 1",
        ),
        (lambda d: d["planner"].update(eval_at=[0]), "planner.eval_at[0]: must be >= 1, got 0"),
        (lambda d: d.update(budget_minutes=-8), "budget_minutes: must be > 0, got -8.0"),
    ],
)
def test_other_numbers_out_of_range_are_refused(tmp_path, change, setting):
    assert setting in _refused(_profile(tmp_path, change))


def test_an_override_is_checked_like_the_file():
    with pytest.raises(ProfileError, match=r"override seed: must be >= 0, got -1"):
        load_profile("smoke", seed=-1)
    assert load_profile("smoke", seed=3).seed == 3


# --- YAML --------------------------------------------------------------------------------------


def test_unquoted_2e_4_is_a_float(tmp_path):
    """YAML 1.1 (PyYAML) reads `2e-4` as the string '2e-4': a float needs a dot."""
    text = SMOKE.replace("sft:  {max_steps: 1,", "sft:  {max_steps: 1, lr: 3e-4,")
    assert "lr: 3e-4" in text and yaml.safe_load(text)["training"]["sft"]["lr"] == "3e-4"
    prof = load_profile(_profile(tmp_path, text=text))
    assert prof.training.sft.lr == pytest.approx(3e-4) and isinstance(prof.training.sft.lr, float)
    line = _refused(_profile(tmp_path, text=text.replace("lr: 3e-4", "lr: fast")))
    assert "training.sft.lr: expected float, got str 'fast'" in line


def test_broken_yaml_names_the_file_and_line_in_one_line(tmp_path):
    text = SMOKE.replace("n_calls: 120", "n_calls: [120")
    number = SMOKE.splitlines().index("  n_calls: 120") + 1
    path = _profile(tmp_path, text=text)
    line = _refused(path)
    # PyYAML finds the fault on the next line; the line the bracket opened is named too
    assert f"{path}: line {number + 1}, column 7: not valid YAML: expected ',' or ']'" in line
    assert f"while parsing a flow sequence that starts at line {number})" in line
    assert "<unicode string>" not in line
    assert f"line {number + 1}, column 7" in _cli(path)


def test_a_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    assert "not UTF-8" in _refused(path)


# --- a profile names its own folders -----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        (lambda d: d.pop("paths"), "paths: missing"),
        (lambda d: d["paths"].pop("results"), "paths.results: missing"),
        (lambda d: d["paths"].pop("artifacts"), "paths.artifacts: missing"),
        (lambda d: d.pop("name"), "name: missing"),
    ],
)
def test_a_profile_without_its_name_or_paths_is_refused(tmp_path, change, setting):
    """No silent fallback to artifacts/tutorial and the committed results/."""
    line = _refused(_profile(tmp_path, change))
    assert setting in line and "no default folder" in line


def test_an_empty_profile_is_refused(tmp_path):
    path = _profile(tmp_path, text="")
    assert "empty profile" in _refused(path)
    assert "empty profile" in _cli(path)
    assert "empty profile" in _refused(_profile(tmp_path, text="# only a comment\n"))


@pytest.mark.parametrize("results", ["results", "results/", "./results", "results/metrics", "."])
def test_only_the_tutorial_writes_the_committed_results(tmp_path, results):
    line = _refused(_profile(tmp_path, lambda d: d["paths"].update(results=results)))
    assert "paths.results" in line and "only configs/tutorial.yaml" in line
    assert "artifacts/smoke/results" in line  # what to use instead


def test_the_committed_results_by_absolute_path_is_refused_too(tmp_path):
    path = _profile(tmp_path, lambda d: d["paths"].update(results=str(REPO_ROOT / "results")))
    assert "paths.results" in _refused(path) and "paths.results" in _cli(path)


def test_the_tutorial_artifacts_are_the_tutorials_only(tmp_path):
    line = _refused(_profile(tmp_path, lambda d: d["paths"].update(artifacts="artifacts/tutorial")))
    assert "paths.artifacts" in line and "only configs/tutorial.yaml" in line


def test_folders_of_its_own_are_accepted(tmp_path):
    """Under its own artifacts, anywhere outside the repository, or results/<its name> (gpu)."""
    mine = load_profile(_profile(tmp_path, lambda d: d["paths"].update(results="results/smoke")))
    assert mine.paths.results == "results/smoke"
    outside = {"artifacts": str(tmp_path / "a"), "results": str(tmp_path / "r")}
    assert load_profile(_profile(tmp_path, lambda d: d.update(paths=outside))).paths.artifacts
    assert load_profile("tutorial").paths.results == "results"  # the one profile that may
    assert load_profile("gpu").paths.results == "results/gpu"


@pytest.mark.parametrize("name", ["smoke", "tutorial", "gpu"])
def test_the_shipped_profiles_still_load(name):
    prof = load_profile(name)
    assert prof.name == name and sum(prof.corpus.split_fractions) == pytest.approx(1)


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        (lambda d: d["corpus"].update(n_calls=0), "corpus.n_calls"),
        (lambda d: d["training"]["sft"].update(max_steps=-1), "training.sft.max_steps"),
        (lambda d: d["corpus"].update(split_fractions=[0.5, 0.6, -0.1]), "split_fractions"),
        (lambda d: d.pop("paths"), "paths: missing"),
        (lambda d: d["paths"].update(results="results"), "paths.results"),
    ],
)
def test_the_runner_prints_the_one_line_and_exits_2(tmp_path, change, setting):
    assert setting in _cli(_profile(tmp_path, change))
