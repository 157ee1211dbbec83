"""Profiles load, validate types and reject unknown keys with the file and key named."""

from __future__ import annotations

import pytest

from salesman_utils.config import REPO_ROOT, ProfileError, load_profile, paths, repo_relative

# what every profile must name (load_profile refuses a profile without them)
HEAD = "name: t\npaths: {artifacts: artifacts/t, results: artifacts/t/results}\n"


@pytest.mark.parametrize("name", ["smoke", "tutorial", "gpu"])
def test_builtin_profiles_load(name):
    prof = load_profile(name)
    assert prof.name == name
    assert isinstance(prof.seed, int)
    assert isinstance(prof.training.grpo.lr, float)
    assert prof.models.policy.kind in {"local", "openai"}


def test_smoke_is_smaller_than_tutorial():
    smoke, tut = load_profile("smoke"), load_profile("tutorial")
    assert smoke.corpus.n_calls < tut.corpus.n_calls
    assert smoke.training.grpo.max_steps < tut.training.grpo.max_steps
    assert smoke.paths.results != "results"  # a test run never touches the committed results


def test_gpu_profile_reads_keys_from_environment_only():
    gpu = load_profile("gpu")
    assert gpu.models.judge.kind == "openai"
    assert gpu.models.judge.api_key_env == "OPENAI_API_KEY"
    text = (REPO_ROOT / "configs" / "gpu.yaml").read_text()
    assert "sk-" not in text


def test_unknown_key_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntraining:\n  grpo:\n    learning_rate: 0.1\n")
    with pytest.raises(ProfileError) as err:
        load_profile(bad)
    assert "bad.yaml" in str(err.value)
    assert "training.grpo.learning_rate" in str(err.value)
    assert "unknown key" in str(err.value)


def test_wrong_type_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("corpus:\n  n_calls: lots\n")
    with pytest.raises(ProfileError, match=r"bad\.yaml.*corpus\.n_calls.*expected int"):
        load_profile(bad)


def test_choice_outside_its_set_names_key_and_allowed_values(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("doga:\n  grpo_variant: sft\n")
    with pytest.raises(ProfileError, match=r"bad\.yaml.*doga\.grpo_variant.*grpo_bayes.*'sft'"):
        load_profile(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text(HEAD + "doga:\n  grpo_variant: sft_grpo_bayes\n")
    assert load_profile(ok).doga.grpo_variant == "sft_grpo_bayes"


def test_int_is_accepted_for_float_but_bool_is_not_int(tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_text(HEAD + "training:\n  grpo:\n    lr: 1\n")
    assert load_profile(ok).training.grpo.lr == 1.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: true\n")
    with pytest.raises(ProfileError, match="seed"):
        load_profile(bad)


def test_unknown_profile_name_lists_known():
    with pytest.raises(ProfileError, match="smoke"):
        load_profile("no_such_profile")


def test_paths_resolve_under_repo(tmp_path):
    prof = load_profile("smoke")
    p = paths(prof)
    assert p.artifacts.is_relative_to(REPO_ROOT)
    assert p.figures.parent == p.results and p.figures.exists()


def test_repo_relative_drops_the_checkout_location_only_inside_the_repo(tmp_path):
    assert (
        repo_relative(REPO_ROOT / "artifacts" / "tutorial" / "corpus")
        == "artifacts/tutorial/corpus"
    )
    assert repo_relative(tmp_path / "x") == str((tmp_path / "x").resolve())


def test_code_digest_keys_caches_by_source(monkeypatch, tmp_path):
    import salesman_utils.config as C
    from salesman_utils.agent import parts, training

    d = C.code_digest("agent.training", "agent.rewards")
    assert d == C.code_digest("agent.training", "agent.rewards") and len(d) == 16
    assert d != C.code_digest("agent.rewards", "agent.training")
    assert d != C.code_digest("agent.training")
    assert C.code_digest("referee.facts") != C.code_digest("world.factcheck")
    # a change of the source changes the key of every cache that depends on it
    fake = tmp_path / "salesman_utils"
    fake.mkdir()
    (fake / "config.py").write_text("")
    (fake / "m.py").write_text("x = 1\n")
    monkeypatch.setattr(C, "__file__", str(fake / "config.py"))
    before = C.code_digest("m")
    (fake / "m.py").write_text("x = 2\n")
    assert C.code_digest("m") != before
    # the adapters' and the DOGA parts' keys read it
    seen: list[tuple[str, ...]] = []
    monkeypatch.setattr(training, "code_digest", lambda *m: seen.append(m) or "x")
    monkeypatch.setattr(parts, "code_digest", lambda *m: seen.append(m) or "x")
    prof = C.load_profile("smoke")
    from datasets import Dataset

    training.config_hash(prof, "sft", Dataset.from_list([{"a": 1}]))
    parts._train_key([], prof, None)
    assert ("agent.intents", "agent.parts") in seen
    assert any({"agent.training", "agent.rewards", "world.factcheck"} <= set(m) for m in seen)
