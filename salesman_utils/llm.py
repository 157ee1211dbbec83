"""One chat interface, two implementations (local transformers, OpenAI-compatible HTTP), one cache.

`make_backend(spec)` returns a `ChatBackend`; `backend.chat(batch_of_message_lists, **sampling)`
returns one reply per conversation. Every call goes through a persistent sqlite cache keyed by
(backend kind, model, adapter, messages, sampling parameters, seed), so re-executing a notebook
re-pays nothing and gives identical outputs; results are written as each chunk finishes, so a crash
mid-batch keeps what was done. API keys are read from the environment variable the spec names and
never appear in keys, logs or errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from salesman_utils.artifacts import check_adapter, discard, reason
from salesman_utils.config import BackendSpec, Profile, ProfileError, _build, paths
from salesman_utils.models import resolve_chat_model

Messages = list[dict[str, str]]


# One spoken turn ends at a line break: `chat(..., stop=TURN_STOP)` for policy replies.
TURN_STOP = "\n"


class BackendError(RuntimeError):
    """A backend failed in a way retrying cannot fix (bad key, unknown model, bad request)."""


# ---------------------------------------------------------------- cache


class ResponseCache:
    """Persistent key -> JSON value store (sqlite, WAL). Safe to share between backends."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:  # "file is not a database": a cache, so rebuilt
            self._db = self._reopen(exc, None)

    @staticmethod
    def _damaged(exc: Exception) -> bool:
        """The file is not a database or is corrupt (not: locked, busy, disk full)."""
        return getattr(exc, "sqlite_errorname", "") in {"SQLITE_NOTADB", "SQLITE_CORRUPT"}

    def _reopen(self, exc: Exception, db: sqlite3.Connection | None) -> sqlite3.Connection:
        """A damaged cache file is moved aside (one-line warning) and started afresh."""
        if not self._damaged(exc):
            raise exc
        if db is not None:
            db.close()
        discard(self.path, reason(exc), companions=("-wal", "-shm"))
        return self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT)")
            db.commit()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    @staticmethod
    def make_key(payload: dict[str, Any]) -> str:
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i : i + 500])
                q = f"SELECT key, value FROM cache WHERE key IN ({','.join('?' * len(chunk))})"
                try:
                    rows = self._db.execute(q, chunk).fetchall()
                except sqlite3.DatabaseError as exc:  # "database disk image is malformed"
                    self._db = self._reopen(exc, self._db)
                    return {}
                for k, v in rows:
                    try:
                        found[k] = json.loads(v)
                    except (TypeError, ValueError):
                        pass  # an unreadable entry is a miss: regenerated and replaced
        return found

    def put_many(self, items: dict[str, Any]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO cache (key, value) VALUES (?, ?)",
                [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()],
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM cache").fetchone()[0]


_CACHES: dict[str, ResponseCache] = {}


def get_cache(path: str | Path) -> ResponseCache:
    key = str(Path(path).resolve())
    if key not in _CACHES:
        _CACHES[key] = ResponseCache(key)
    return _CACHES[key]


# ---------------------------------------------------------------- base


class ChatBackend(ABC):
    """`chat(batch, max_new_tokens, temperature, top_p, seed)` -> one reply string per conversation."""

    kind = "abstract"

    def __init__(self, spec: BackendSpec, cache: ResponseCache | None):
        self.spec = spec
        self.cache = cache
        self.stats = {"calls": 0, "cache_hits": 0, "generated": 0}

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.model_id}"

    @property
    @abstractmethod
    def model_id(self) -> str: ...

    def identity(self) -> dict[str, Any]:
        """What, besides the request, decides the output (part of every cache key)."""
        return {"kind": self.kind, "model": self.model_id}

    @abstractmethod
    def _generate(self, batch: list[Messages], params: dict[str, Any]) -> list[str]: ...

    def _chunks(self, n: int) -> int:
        return max(1, self.spec.batch_size)

    def chat(
        self,
        batch: Sequence[Messages],
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        desc: str | None = None,
        stop: str | None = None,
    ) -> list[str]:
        """Replies for each conversation of `batch`, from the cache where possible.

        `stop`: a string that ends the reply (not included), e.g. ``"\n"`` for one spoken turn:
        a model that writes past its turn (a second paragraph, the merchant's line, the prompt's
        next section) is cut there instead of running on to `max_new_tokens`."""
        batch = [_check_messages(m, i) for i, m in enumerate(batch)]
        params: dict[str, Any] = {
            "max_new_tokens": int(max_new_tokens),
            "temperature": float(temperature),
            "top_p": float(top_p),
            "seed": int(seed),
        }
        if stop:  # only then in the cache key: replies cached without a stop stay valid
            params["stop"] = stop
        keys = [
            ResponseCache.make_key({"id": self.identity(), "messages": m, "params": params})
            for m in batch
        ]
        done = self.cache.get_many(keys) if self.cache is not None else {}
        self.stats["calls"] += len(batch)
        self.stats["cache_hits"] += sum(k in done for k in keys)
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        # similar lengths share a batch: left padding then wastes little prefill compute
        todo_idx = sorted(
            (i for k, i in first.items() if k not in done), key=lambda i: message_chars(batch[i])
        )
        step = self._chunks(len(todo_idx))
        with tqdm(total=len(todo_idx), desc=desc or self.name, disable=not todo_idx) as bar:
            for start in range(0, len(todo_idx), step):
                idx = todo_idx[start : start + step]
                replies = self._generate([batch[i] for i in idx], params)
                if stop:
                    replies = [r.split(stop, 1)[0].strip() for r in replies]
                new = {keys[i]: r for i, r in zip(idx, replies, strict=True)}
                if self.cache is not None:
                    self.cache.put_many(new)
                done.update(new)
                self.stats["generated"] += len(idx)
                bar.update(len(idx))
        return [done[k] for k in keys]


def message_chars(messages: Messages) -> int:
    """Characters of a conversation: the cheap length key that groups similar prompts in a batch."""
    return sum(len(m["content"]) for m in messages)


def _check_messages(messages: Any, index: int) -> Messages:
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"batch[{index}]: expected a non-empty list of messages")
    for j, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"batch[{index}][{j}]: a message needs 'role' and 'content'")
        if m["role"] not in {"system", "user", "assistant"}:
            raise ValueError(f"batch[{index}][{j}].role: unknown role {m['role']!r}")
    return [{"role": m["role"], "content": str(m["content"])} for m in messages]


# ---------------------------------------------------------------- local


_LOADED: dict[tuple, tuple[Any, Any]] = {}


def load_local_model(model: str, adapter: str | None, dtype: str, device: str | None):
    """(model, tokenizer) loaded once per process; a LoRA adapter is merged for fast generation."""
    key = (model, adapter, dtype, device)
    if key not in _LOADED:
        if adapter and Path(adapter).is_dir():
            check_adapter(adapter)  # a damaged file: ArtifactError naming it, how to retrain
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        net = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype))
        if adapter:
            from peft import PeftModel

            if not (Path(adapter) / "adapter_config.json").exists():
                raise BackendError(f"adapter {adapter}: no adapter_config.json there")
            net = PeftModel.from_pretrained(net, adapter).merge_and_unload()
        net.to(device or "cpu").eval()
        _LOADED[key] = (net, tok)
    return _LOADED[key]


_STOPS: dict[tuple[int, str], tuple[Any, Any]] = {}


def stop_criteria(tokenizer: Any, stop: str) -> Any:
    """transformers' `StopStringCriteria` for `stop`, built once per tokenizer and string.

    `generate(stop_strings=...)` builds it on every call, and its own cache misses because the
    fast tokenizer's vocabulary comes back in a different order each time: about half a second
    per call on this CPU, as long as decoding a dozen tokens. The criterion keeps no state between
    calls, so one object serves them all (the same stops, the same replies)."""
    from transformers import StoppingCriteriaList, StopStringCriteria

    key = (id(tokenizer), stop)
    if key not in _STOPS or _STOPS[key][0] is not tokenizer:
        _STOPS[key] = (tokenizer, StoppingCriteriaList([StopStringCriteria(tokenizer, [stop])]))
    return _STOPS[key][1]


def _adapter_digest(adapter: str | None) -> str | None:
    if not adapter:
        return None
    weights = sorted(Path(adapter).glob("adapter_model.*"))
    if not weights:
        raise BackendError(f"adapter {adapter}: no adapter_model.* weights there")
    return hashlib.sha256(weights[0].read_bytes()).hexdigest()[:16]


class LocalBackend(ChatBackend):
    """transformers in-process: chat template, left padding, batched, seeded sampling."""

    kind = "local"

    def __init__(self, spec: BackendSpec, cache: ResponseCache | None):
        super().__init__(spec, cache)
        self._model_path = resolve_chat_model(spec.model)
        self.model, self.tokenizer = load_local_model(
            self._model_path, spec.adapter, spec.dtype, spec.device
        )
        self._digest = _adapter_digest(spec.adapter)

    @property
    def model_id(self) -> str:
        return self.spec.model or "embedded:SmolLM2-135M-Instruct"

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "adapter": self._digest, "dtype": self.spec.dtype}

    def _encode(self, batch: list[Messages], assistant_prefix: str = ""):
        texts = [
            self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
            + assistant_prefix
            for m in batch
        ]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return enc.to(self.model.device)

    def _generate(self, batch: list[Messages], params: dict[str, Any]) -> list[str]:
        import torch

        enc = self._encode(batch)
        sample = params["temperature"] > 0
        kwargs: dict[str, Any] = {"do_sample": sample, "max_new_tokens": params["max_new_tokens"]}
        if sample:
            kwargs.update(temperature=params["temperature"], top_p=params["top_p"])
        if params.get("stop"):  # stop decoding there (`chat` cuts the text at the same string)
            kwargs.update(stopping_criteria=stop_criteria(self.tokenizer, params["stop"]))
        torch.manual_seed(params["seed"])
        with torch.inference_mode():
            out = self.model.generate(**enc, pad_token_id=self.tokenizer.pad_token_id, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    def score_next_tokens(
        self,
        batch: Sequence[Messages],
        candidates: Sequence[str],
        assistant_prefix: str = "",
    ) -> list[dict[str, float]]:
        """Log-probability of each candidate's FIRST token as the next token after the assistant
        turn has started with `assistant_prefix` (cached like `chat`)."""
        import torch

        batch = [_check_messages(m, i) for i, m in enumerate(batch)]
        ids = {c: self.tokenizer.encode(c, add_special_tokens=False)[0] for c in candidates}
        keys = [
            ResponseCache.make_key(
                {
                    "id": self.identity(),
                    "messages": m,
                    "prefix": assistant_prefix,
                    "candidates": list(candidates),
                    "op": "score_next_tokens",
                }
            )
            for m in batch
        ]
        done = self.cache.get_many(keys) if self.cache is not None else {}
        todo = sorted(
            (i for i, k in enumerate(keys) if k not in done), key=lambda i: message_chars(batch[i])
        )
        step = max(1, self.spec.batch_size)
        for start in tqdm(range(0, len(todo), step), desc="scoring", disable=not todo):
            idx = todo[start : start + step]
            enc = self._encode([batch[i] for i in idx], assistant_prefix)
            with torch.inference_mode():
                logits = self.model(**enc, logits_to_keep=1).logits[:, -1, :].float()
            logp = torch.log_softmax(logits, dim=-1)
            new = {
                keys[i]: {c: float(logp[row, tid]) for c, tid in ids.items()}
                for row, i in enumerate(idx)
            }
            if self.cache is not None:
                self.cache.put_many(new)
            done.update(new)
        return [done[k] for k in keys]


# ---------------------------------------------------------------- OpenAI-compatible HTTP


class OpenAIBackend(ChatBackend):
    """Any OpenAI-compatible server (OpenAI, vLLM, `transformers serve`, Ollama) via `openai`.

    Bounded concurrency (`max_concurrency` threads); retries with exponential backoff and jitter on
    429, 5xx, timeouts and dropped connections; an immediate `BackendError` on 400/401/403/404.
    """

    kind = "openai"

    def __init__(self, spec: BackendSpec, cache: ResponseCache | None):
        super().__init__(spec, cache)
        import openai

        if not spec.model:
            raise ProfileError("backend kind 'openai' needs `model` (the served model's name)")
        key = "EMPTY"
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env, "")
            if not key:
                raise BackendError(
                    f"environment variable {spec.api_key_env} is not set: export your API key "
                    f"there (it is read from the environment only)"
                )
        self._openai = openai
        self.client = openai.OpenAI(
            base_url=spec.base_url, api_key=key, max_retries=0, timeout=spec.timeout_s
        )
        self.backoff_base = 0.5

    @property
    def model_id(self) -> str:
        return str(self.spec.model)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "base_url": self.spec.base_url}

    def _chunks(self, n: int) -> int:
        return max(1, self.spec.max_concurrency * 4)

    def _one(self, messages: Messages, params: dict[str, Any]) -> str:
        oa = self._openai
        retryable = (
            oa.RateLimitError,
            oa.APITimeoutError,
            oa.APIConnectionError,
            oa.InternalServerError,
        )
        for attempt in range(self.spec.max_retries + 1):
            try:
                resp = self.client.chat.completions.create(
                    model=self.model_id,
                    messages=messages,
                    max_tokens=params["max_new_tokens"],
                    temperature=params["temperature"],
                    top_p=params["top_p"],
                    seed=params["seed"],
                )
                return (resp.choices[0].message.content or "").strip()
            except retryable as exc:
                status = getattr(exc, "status_code", None)
                if attempt == self.spec.max_retries:
                    raise BackendError(
                        f"{self.spec.base_url or 'OpenAI'}: gave up after {attempt + 1} tries "
                        f"({type(exc).__name__}{f' {status}' if status else ''})"
                    ) from None
                delay = self.backoff_base * 2**attempt
                time.sleep(delay + random.uniform(0, delay))
            except oa.APIStatusError as exc:
                hint = {
                    401: f"unauthorized: check the key in ${self.spec.api_key_env or '(none set)'}",
                    403: "forbidden: the key may not use this model",
                    404: f"not found: is model {self.model_id!r} served at this base_url?",
                }.get(exc.status_code, "request rejected")
                raise BackendError(
                    f"{self.spec.base_url or 'OpenAI'}: HTTP {exc.status_code} {hint}"
                ) from None
        raise AssertionError("unreachable")

    def _generate(self, batch: list[Messages], params: dict[str, Any]) -> list[str]:
        out: list[str | None] = [None] * len(batch)
        with ThreadPoolExecutor(max_workers=max(1, self.spec.max_concurrency)) as pool:
            futures = {pool.submit(self._one, m, params): i for i, m in enumerate(batch)}
            for fut in as_completed(futures):
                out[futures[fut]] = fut.result()
        return [o or "" for o in out]


# ---------------------------------------------------------------- factory


def make_backend(
    spec: BackendSpec | dict[str, Any],
    profile: Profile | None = None,
    cache_path: str | Path | None = None,
) -> ChatBackend:
    """Build a backend from a profile section or dict (`kind: local|openai`, `model`, ...).

    The cache file is `cache_path`, else `<profile artifacts>/cache/llm.sqlite`, else no cache
    when neither is given; `spec.cache: false` disables it.
    """
    if isinstance(spec, dict):
        spec = _build(BackendSpec, spec, "backend spec: ")
    if profile is not None and spec.model is None and profile.models.chat_model:
        spec = BackendSpec(**{**spec.__dict__, "model": profile.models.chat_model})
    if cache_path is None and profile is not None:
        cache_path = paths(profile).cache / "llm.sqlite"
    cache = get_cache(cache_path) if (cache_path and spec.cache) else None
    if spec.kind == "local" and spec.adapter and profile is not None:
        check_adapter(spec.adapter, profile.name)  # the retrain command names the profile
    if spec.kind == "local":
        return LocalBackend(spec, cache)
    if spec.kind == "openai":
        return OpenAIBackend(spec, cache)
    raise ProfileError(f"backend kind: unknown {spec.kind!r} (allowed: local, openai)")
