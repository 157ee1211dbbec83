"""Issue 27, data banks and artifacts: a broken file fails in one line naming the file (and the line,
entry or field), or is rebuilt. Tiny files in tmp_path only: no model is loaded or trained (the
fitters behind each cache are replaced by stubs where a rebuild would be slow)."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

import salesman_utils
from salesman_utils.artifacts import ArtifactError, ArtifactWarning, check_adapter
from salesman_utils.banks import REPO_DATA_DIR, DataBankError
from salesman_utils.config import load_profile
from salesman_utils.world import simulator
from salesman_utils.world.corpus import (
    CorpusFormatError,
    load_corpus,
    save_corpus,
    simulate_corpus,
    split,
)

REPO = Path(salesman_utils.__file__).resolve().parents[1]


@pytest.fixture()
def data(tmp_path, monkeypatch):
    """A copy of data/ that the bank loaders read (restored, caches cleared, afterwards)."""
    from salesman_utils.referee import perception

    folder = tmp_path / "data"
    shutil.copytree(REPO_DATA_DIR, folder)
    monkeypatch.setattr(simulator, "DATA_DIR", folder)
    monkeypatch.setattr(perception, "PARAPHRASES", folder / "perception_paraphrases.yaml")
    _clear_caches()
    yield folder
    _clear_caches()


def _clear_caches() -> None:
    from salesman_utils.world import knowledge

    simulator.load_bank.cache_clear()
    simulator.load_banks.cache_clear()
    knowledge._load_products_cached.cache_clear()


@pytest.fixture()
def profile(tmp_path):
    prof = load_profile("smoke")
    art, res = str(tmp_path / "art"), str(tmp_path / "res")
    return dataclasses.replace(
        prof, paths=dataclasses.replace(prof.paths, artifacts=art, results=res)
    )


@pytest.fixture(scope="module")
def splits():
    return split(simulate_corpus(24, seed=3), seed=0)


def _break_line(path: Path, lineno: int) -> None:
    """Insert an unclosed flow list before line `lineno` (1-based): a YAML syntax error there."""
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(lineno - 1, "broken: [unclosed\n")
    path.write_text("".join(lines))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    """The error's message, checked to be one line with no chained traceback above it."""
    err, msg = exc.value, str(exc.value)
    assert "\n" not in msg and err.__cause__ is None, msg
    assert err.__context__ is None or err.__suppress_context__, msg
    return msg


def _truncate(path: Path, keep: float = 0.5) -> None:
    body = path.read_bytes()
    path.write_bytes(body[: int(len(body) * keep)] if keep < 1 else body[:-8])


# ---------------------------------------------------------------- data banks


def _load_products(folder):
    from salesman_utils.world.knowledge import load_products

    return load_products(folder / "products.yaml")


def _load_pushy(folder):
    from salesman_utils.referee.pushy import load_pushy_cases

    return load_pushy_cases(folder / "pushy_merchants.yaml")


def _load_paraphrases(folder):
    from salesman_utils.referee.perception import load_paraphrases

    return load_paraphrases()


def _load_pairs(folder):
    from salesman_utils.judge.validation import load_pairs

    return load_pairs(folder / "judge_pairs.yaml")


BANKS = {
    "products.yaml": _load_products,
    "customer_templates.yaml": lambda folder: simulator.load_banks(),
    "personas.yaml": lambda folder: simulator.load_bank("personas"),
    "agent_templates_heldout.yaml": lambda folder: simulator.load_banks(),
    "pushy_merchants.yaml": _load_pushy,
    "perception_paraphrases.yaml": _load_paraphrases,
    "judge_pairs.yaml": _load_pairs,
}


@pytest.mark.parametrize("name", list(BANKS))
def test_a_yaml_error_in_a_bank_names_the_file_and_line(data, name):
    BANKS[name](data)  # the copy loads as it is
    _break_line(data / name, 12)
    _clear_caches()
    with pytest.raises(DataBankError) as exc:
        BANKS[name](data)
    msg = _one_line(exc)
    assert msg.startswith(f"{data / name}: line 1") and ": not valid YAML: " in msg, msg


def test_a_customer_bank_without_an_act_names_the_file_and_act(data):
    path = data / "customer_templates.yaml"
    text = path.read_text()
    start = text.index("\nhangup:")
    end = text.index("\nagreement:")
    path.write_text(text[:start] + text[end:])
    with pytest.raises(DataBankError, match=r"customer_templates\.yaml: missing hangup") as exc:
        simulator.load_banks()
    _one_line(exc)


def test_missing_bank_entries_name_the_entry(data):
    from salesman_utils.banks import read_yaml

    tpl = data / "agent_templates.yaml"
    bank = read_yaml(tpl)
    del bank["Objection_Handling"]["trust"]  # every objection type of the personas needs lines
    tpl.write_text(yaml.safe_dump(bank))
    with pytest.raises(
        DataBankError, match=r"agent_templates\.yaml: Objection_Handling: missing trust"
    ):
        simulator.load_banks()
    _clear_caches()
    personas = read_yaml(data / "personas.yaml")
    del personas["agents"]["skills"]["expert"]["faithful"]
    (data / "personas.yaml").write_text(yaml.safe_dump(personas))
    with pytest.raises(
        DataBankError, match=r"personas\.yaml: agents\.skills\.expert: missing faithful"
    ):
        simulator.load_bank("personas")


def test_a_product_without_a_field_names_the_product_and_field(data):
    path = data / "products.yaml"
    bank = yaml.safe_load(path.read_text())
    first = bank["products"][0]
    del first["summary"]
    del bank["products"][1]["promotion"]["terms"]
    path.write_text(yaml.safe_dump(bank))
    with pytest.raises(
        DataBankError, match=rf"products\[0\] \({first['id']}\): missing field\(s\) summary"
    ):
        _load_products(data)
    first["summary"] = "back"
    path.write_text(yaml.safe_dump(bank))
    second = bank["products"][1]["id"]
    with pytest.raises(
        DataBankError, match=rf"products\[1\] \({second}\): promotion: missing terms"
    ):
        _load_products(data)


def test_a_pushy_case_with_an_unknown_product_is_named(data):
    path = data / "pushy_merchants.yaml"
    path.write_text("cases:\n  - {product: nosuch, kind: price, text: 'How much?'}\n")
    with pytest.raises(DataBankError, match=r"pushy_merchants\.yaml: cases\[0\]: product 'nosuch'"):
        _load_pushy(data)


def _chat_help(data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SALESMAN_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "salesman_utils.agent.chat", "--help"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=data_dir)


@pytest.mark.parametrize("name", ["products.yaml", "customer_templates.yaml"])
def test_chat_help_works_with_a_broken_bank(tmp_path, name):
    """`SALESMAN_DATA_DIR` points the package at a copy of data/ (banks.DATA_DIR)."""
    folder = tmp_path / "data"
    shutil.copytree(REPO_DATA_DIR, folder)
    _break_line(folder / name, 20)
    out = _chat_help(folder)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout and "--product" in out.stdout


# ---------------------------------------------------------------- pure caches: rebuilt


def test_a_truncated_posterior_npy_or_model_json_is_refitted(profile, splits):
    from salesman_utils.agent import bayes

    first = bayes.posteriors_for(profile, splits)
    npy = next((Path(profile.paths.artifacts) / "bayes").glob("*/posterior_test.npy"))
    _truncate(npy, keep=1)  # its last 8 bytes cut
    with pytest.raises(ValueError, match="Failed to read all data"):
        np.load(npy)  # the error, which named no file
    with pytest.warns(ArtifactWarning, match=rf"{npy}: unreadable cache .*rebuilding"):
        again = bayes.posteriors_for(profile, splits)
    np.testing.assert_array_equal(first["test"], again["test"])
    np.testing.assert_array_equal(np.load(npy), first["test"])  # written whole again
    assert npy.with_name(npy.name + ".broken").exists()
    model = npy.with_name("model.json")
    _truncate(model)
    with pytest.warns(ArtifactWarning, match=rf"{model}: unreadable cache .*JSON"):
        bayes.posteriors_for(profile, splits)
    assert bayes.load_model(profile, splits).n_train == len(first["train"])


def test_a_truncated_parts_pickle_is_refitted(profile, splits, monkeypatch):
    from salesman_utils.agent import library
    from salesman_utils.agent import parts as P

    monkeypatch.setattr(P, "TextEmbedder", lambda prof: None)
    for cls in (P.IntentClassifier, P.IntentFSM, P.ReplyTagger, P.ActTagger):
        monkeypatch.setattr(cls, "fit", lambda *a, _n=cls.__name__, **k: _n)
    monkeypatch.setattr(library, "load_or_build", lambda *a, **k: None)
    post = {"train": None}
    P.build_parts(profile, splits, posteriors=post)
    cache = next((Path(profile.paths.artifacts) / "models" / "doga").glob("parts-*.pkl"))
    _truncate(cache)
    with pytest.raises((pickle.UnpicklingError, EOFError)):
        pickle.loads(cache.read_bytes())
    with pytest.warns(ArtifactWarning, match=r"parts-.*\.pkl: unreadable cache"):
        got = P.build_parts(profile, splits, posteriors=post)
    assert got.classifier == "IntentClassifier"
    assert pickle.loads(cache.read_bytes()).fsm == "IntentFSM"


def test_a_truncated_perception_pickle_is_refitted(profile, monkeypatch):
    from salesman_utils.referee import perception

    monkeypatch.setattr(perception.CustomerPerception, "fit", lambda *a: {"fitted": len(a)})
    perception.load_or_fit(profile)
    cache = next((Path(profile.paths.artifacts) / "models" / "referee").glob("perception-*.pkl"))
    cache.write_bytes(b"\x80\x04")  # a pickle cut after its header
    with pytest.warns(ArtifactWarning, match=r"perception-.*\.pkl: unreadable cache"):
        assert perception.load_or_fit(profile) == {"fitted": 3}


def test_a_truncated_planner_experiment_pickle_is_rerun(profile, monkeypatch):
    from salesman_utils.arena import planner_experiment as PE

    class Rerun(Exception):
        pass

    def rerun(*a, **k):
        raise Rerun

    monkeypatch.setattr(PE, "build_worlds", lambda *a: {})
    monkeypatch.setattr(PE.Planner, "from_classifier", lambda c: None)
    monkeypatch.setattr(PE, "experiment_key", lambda *a: "k")
    monkeypatch.setattr(PE, "reference_table", rerun)
    deploy = PE.deployed_planner_dir(profile)
    deploy.mkdir(parents=True)
    (deploy / "planner.pt").write_bytes(b"x")
    cache = Path(profile.paths.artifacts) / "models" / "planner" / "experiment-k.pkl"
    cache.write_bytes(pickle.dumps({"finals": list(range(100))})[:20])
    parts = SimpleNamespace(classifier=None)
    with pytest.warns(ArtifactWarning, match=r"experiment-k\.pkl: unreadable cache"):
        with pytest.raises(Rerun):
            PE.strategy_experiment(profile, {}, parts, None, None)
    cache.write_bytes(pickle.dumps({"finals": [1]}))
    assert PE.strategy_experiment(profile, {}, parts, None, None)["cached"]


def test_a_truncated_trained_judge_is_retrained(tmp_path, monkeypatch):
    from salesman_utils.judge import trained as J
    from salesman_utils.judge.rubric import METRICS

    monkeypatch.setattr(
        J, "train_judge", lambda d, s: SimpleNamespace(metrics=list(METRICS), train_note="stub")
    )
    judge, note = J.load_or_train([], tmp_path)
    assert note.startswith("trained")
    path = next(tmp_path.glob("trained_judge-*.pkl"))
    _truncate(path)
    with pytest.raises(ValueError, match=rf"{path.name}: unreadable judge checkpoint"):
        J.load_judge(path)
    with pytest.warns(ArtifactWarning, match=r"trained_judge-.*\.pkl: unreadable cache"):
        judge, note = J.load_or_train([], tmp_path)
    assert note.startswith("trained") and J.load_or_train([], tmp_path)[1].startswith("loaded")


def test_a_truncated_library_json_is_rebuilt_with_a_warning(profile, splits, monkeypatch):
    from salesman_utils import llm, models
    from salesman_utils.agent import library

    class Rebuilt(Exception):
        pass

    def rebuild(*a, **k):
        raise Rebuilt

    monkeypatch.setattr(models, "load_embedder", lambda prof: None)
    monkeypatch.setattr(llm, "make_backend", lambda *a, **k: None)
    monkeypatch.setattr(library, "build_library", rebuild)
    path = Path(profile.paths.artifacts) / "library" / "library.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"version": 1, "entries": [{"id": ')
    post = np.full(sum(len(d.turns) for d in splits["train"]), 0.5)
    with pytest.warns(ArtifactWarning, match=r"library\.json: cannot read a library"):
        with pytest.raises(Rebuilt):
            library.load_or_build(profile, splits, post)


def test_a_damaged_sqlite_response_cache_is_started_afresh(tmp_path):
    from salesman_utils.llm import ResponseCache

    path = tmp_path / "llm.sqlite"
    path.write_bytes(b"this is not a database" * 200)
    with pytest.warns(ArtifactWarning, match=rf"{path}: unreadable cache .*not a database"):
        cache = ResponseCache(path)
    cache.put_many({"k": {"reply": "hi"}})
    assert cache.get_many(["k"]) == {"k": {"reply": "hi"}}
    assert (tmp_path / "llm.sqlite.broken").read_bytes().startswith(b"this is not")
    cache._db.execute("INSERT OR REPLACE INTO cache VALUES ('bad', '{half')")
    assert cache.get_many(["k", "bad"]) == {"k": {"reply": "hi"}}  # an unreadable entry: a miss
    cache._db.close()
    big = ResponseCache(tmp_path / "big.sqlite")
    big.put_many({f"k{i}": "x" * 500 for i in range(2000)})
    big._db.close()
    _truncate(tmp_path / "big.sqlite", 0.3)
    with pytest.warns(ArtifactWarning, match=r"big\.sqlite: unreadable cache .*malformed"):
        assert len(ResponseCache(tmp_path / "big.sqlite")) == 0


# ---------------------------------------------------------------- trained adapters: named


def _write_safetensors(path: Path, n: int = 64) -> None:
    header = {"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + np.zeros(n, "<f4").tobytes())


@pytest.fixture()
def broken_adapter(profile):
    folder = Path(profile.paths.artifacts) / "models" / "grpo_bayes" / "adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"r": 8}')
    weights = folder / "adapter_model.safetensors"
    _write_safetensors(weights)
    check_adapter(folder)  # whole: passes
    _truncate(weights)
    return folder


def test_a_truncated_adapter_names_the_folder_and_the_retrain_command(profile, broken_adapter):
    safetensors = pytest.importorskip("safetensors")
    with pytest.raises(safetensors.SafetensorError, match="incomplete metadata"):
        safetensors.safe_open(str(broken_adapter / "adapter_model.safetensors"), "numpy")
    with pytest.raises(ArtifactError) as exc:
        check_adapter(broken_adapter, "smoke")
    msg = _one_line(exc)
    assert str(broken_adapter) in msg and "adapter_model.safetensors" in msg
    assert "--profile smoke --variant grpo_bayes --force" in msg and "--only 02" in msg


def test_adapter_loads_check_before_any_model_is_loaded(profile, broken_adapter):
    from salesman_utils.agent import training
    from salesman_utils.llm import load_local_model, make_backend

    with pytest.raises(ArtifactError, match=r"adapter_model\.safetensors: .*truncated"):
        load_local_model("no/such-model", str(broken_adapter), "float32", None)
    with pytest.raises(ArtifactError, match=r"--profile smoke --variant grpo_bayes"):
        make_backend({"kind": "local", "adapter": str(broken_adapter)}, profile=profile)
    with pytest.raises(ArtifactError, match=str(broken_adapter)):
        training._load_with_adapter(profile, broken_adapter)


# ---------------------------------------------------------------- the corpus


def test_a_split_with_a_line_deleted_names_the_file_and_both_counts(splits, tmp_path):
    save_corpus(splits, tmp_path)
    n = len(splits["train"])
    path = tmp_path / "train.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    with pytest.raises(CorpusFormatError) as exc:
        load_corpus(tmp_path, with_hidden=False, rebuild="RUN 01")
    msg = _one_line(exc)
    assert f"{path}: {n - 1} calls, but {tmp_path / 'manifest.json'} says {n}" in msg
    assert msg.endswith("rebuild: RUN 01")
    save_corpus(splits, tmp_path)
    hidden = tmp_path / "train.hidden.jsonl"
    hidden.write_text("".join(hidden.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(
        CorpusFormatError, match=r"train\.jsonl:1: call '.*' has no record in train"
    ):
        load_corpus(tmp_path)
    save_corpus(splits, tmp_path)
    (tmp_path / "manifest.json").write_text('{"splits": ')
    with pytest.raises(CorpusFormatError, match=r"manifest\.json: unreadable manifest"):
        load_corpus(tmp_path)
    (tmp_path / "manifest.json").unlink()
    assert load_corpus(tmp_path) == splits  # no manifest (hand-made corpora): nothing to compare
