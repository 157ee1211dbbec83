"""Chat backends: the sqlite cache, the local backend, and the HTTP backend's retry rules."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from salesman_utils.config import ProfileError
from salesman_utils.llm import BackendError, ChatBackend, ResponseCache, make_backend

HELLO = [[{"role": "user", "content": "Greet a bakery owner in one short sentence."}]]


# ---------------------------------------------------------------- cache


def test_cache_roundtrip_and_persistence(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    key = ResponseCache.make_key({"a": 1, "messages": [{"role": "user", "content": "é"}]})
    cache.put_many({key: "reply é"})
    assert ResponseCache(path).get_many([key, "missing"]) == {key: "reply é"}
    assert len(ResponseCache(path)) == 1


def test_cache_key_depends_on_every_sampling_parameter():
    base = {"id": {"kind": "local"}, "messages": HELLO[0], "params": {"seed": 0, "t": 0.0}}
    keys = {
        ResponseCache.make_key(base),
        ResponseCache.make_key({**base, "params": {"seed": 1, "t": 0.0}}),
        ResponseCache.make_key({**base, "params": {"seed": 0, "t": 0.7}}),
        ResponseCache.make_key({**base, "id": {"kind": "openai"}}),
    }
    assert len(keys) == 4


class _Counting(ChatBackend):
    """Counts generations; fails on the item whose text contains 'boom' (to test partial saves)."""

    kind = "counting"

    def __init__(self, cache):
        from salesman_utils.config import BackendSpec

        super().__init__(BackendSpec(batch_size=2), cache)
        self.generated: list[str] = []

    @property
    def model_id(self):
        return "counter"

    def _generate(self, batch, params):
        out = []
        for m in batch:
            if "boom" in m[-1]["content"]:
                raise RuntimeError("crash mid-batch")
            self.generated.append(m[-1]["content"])
            out.append(m[-1]["content"].upper())
        return out


def test_crash_mid_batch_keeps_what_was_done(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    items = [[{"role": "user", "content": t}] for t in ["a", "b", "c", "boom"]]
    backend = _Counting(cache)
    with pytest.raises(RuntimeError, match="crash"):
        backend.chat(items)
    assert backend.generated == ["a", "b", "c"]
    again = _Counting(cache)
    assert again.chat(items[:2]) == ["A", "B"]
    assert again.generated == []  # the first chunk (batch_size=2) was saved before the crash


def test_duplicates_are_generated_once(tmp_path):
    backend = _Counting(ResponseCache(tmp_path / "c.sqlite"))
    items = [[{"role": "user", "content": "x"}]] * 5
    assert backend.chat(items) == ["X"] * 5
    assert backend.generated == ["x"]


def test_stop_ends_a_reply_at_the_turn_break_and_keys_the_cache(tmp_path):
    from salesman_utils.llm import TURN_STOP

    backend = _Counting(ResponseCache(tmp_path / "c.sqlite"))
    items = [[{"role": "user", "content": "we can help.\nmerchant: no thanks"}]]
    assert backend.chat(items) == ["WE CAN HELP.\nMERCHANT: NO THANKS"]
    assert backend.chat(items, stop=TURN_STOP) == ["WE CAN HELP."]  # not the cached full text
    assert len(backend.generated) == 2


def test_bad_messages_are_named():
    backend = _Counting(None)
    with pytest.raises(ValueError, match=r"batch\[1\]\[0\].role"):
        backend.chat([[{"role": "user", "content": "ok"}], [{"role": "bot", "content": "x"}]])


def test_unknown_backend_kind():
    with pytest.raises(ProfileError, match="unknown 'vllm'"):
        make_backend({"kind": "vllm"})


def test_missing_api_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("SALESMAN_TEST_KEY", raising=False)
    with pytest.raises(BackendError, match="SALESMAN_TEST_KEY"):
        make_backend({"kind": "openai", "model": "m", "api_key_env": "SALESMAN_TEST_KEY"})


# ---------------------------------------------------------------- local backend


@pytest.mark.slow
def test_local_backend_is_cached_and_seeded(chat_backend):
    chat_backend.stats.update(calls=0, cache_hits=0, generated=0)
    first = chat_backend.chat(HELLO * 2, max_new_tokens=12, temperature=0.8, seed=3)
    assert all(isinstance(r, str) and r for r in first)
    again = chat_backend.chat(HELLO * 2, max_new_tokens=12, temperature=0.8, seed=3)
    assert again == first
    assert chat_backend.stats["generated"] == 1  # one unique conversation, generated once


@pytest.mark.slow
def test_local_greedy_batched_equals_single(chat_backend):
    prompts = [
        [{"role": "user", "content": "Name one fruit."}],
        [{"role": "user", "content": "Write one polite sentence to a restaurant owner about ads."}],
    ]
    batched = chat_backend.chat(prompts, max_new_tokens=10, seed=11)
    single = [chat_backend.chat([p], max_new_tokens=10, seed=12)[0] for p in prompts]
    assert batched == single  # left padding does not change greedy outputs


@pytest.mark.slow
def test_stop_criterion_is_built_once_and_stops_where_transformers_does(chat_backend):
    import torch

    from salesman_utils.llm import stop_criteria

    tok, model = chat_backend.tokenizer, chat_backend.model
    assert stop_criteria(tok, "\n") is stop_criteria(tok, "\n")
    assert stop_criteria(tok, "\n") is not stop_criteria(tok, ".")
    text = tok.apply_chat_template(
        [{"role": "user", "content": "List three fruits, one per line."}],
        tokenize=False,
        add_generation_prompt=True,
    )
    enc = tok([text], return_tensors="pt")
    kw = {"do_sample": False, "max_new_tokens": 24, "pad_token_id": tok.pad_token_id}
    with torch.inference_mode():
        theirs = model.generate(**enc, stop_strings=["\n"], tokenizer=tok, **kw)
        ours = model.generate(**enc, stopping_criteria=stop_criteria(tok, "\n"), **kw)
        free = model.generate(**enc, **kw)
    assert torch.equal(ours, theirs)
    assert ours.shape[1] < free.shape[1]  # it did stop early: the fruits come one per line


@pytest.mark.slow
def test_score_next_tokens_gives_logprobs(chat_backend):
    cands = [str(i) for i in range(1, 10)]
    (scores,) = chat_backend.score_next_tokens(
        [[{"role": "user", "content": "Rate 1 to 9 how polite 'Thank you!' is. Answer a digit."}]],
        cands,
        assistant_prefix="",
    )
    assert set(scores) == set(cands)
    assert all(v <= 0.0 for v in scores.values())
    import math

    assert 0.0 < sum(math.exp(v) for v in scores.values()) <= 1.0 + 1e-6


# ---------------------------------------------------------------- HTTP faults


def _completion(text: str) -> bytes:
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
        }
    ).encode()


class _Scripted(BaseHTTPRequestHandler):
    script: list[int] = []
    seen: list[int] = []

    def do_POST(self):  # noqa: N802 (http.server API)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = self.script.pop(0) if self.script else 200
        self.seen.append(status)
        body = _completion("hello") if status == 200 else b'{"error": {"message": "no"}}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted_server():
    _Scripted.script, _Scripted.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1", _Scripted
    server.shutdown()


def _http_backend(url, **kw):
    backend = make_backend({"kind": "openai", "model": "m", "base_url": url, **kw})
    backend.backoff_base = 0.01
    return backend


def test_http_retries_429_then_succeeds(scripted_server):
    url, handler = scripted_server
    handler.script = [429, 429, 503]
    assert _http_backend(url).chat(HELLO) == ["hello"]
    assert handler.seen == [429, 429, 503, 200]


def test_http_401_fails_at_once_with_clear_error(scripted_server, monkeypatch):
    url, handler = scripted_server
    handler.script = [401] * 5
    monkeypatch.setenv("SALESMAN_TEST_KEY", "sk-test-secret-value")
    backend = _http_backend(url, api_key_env="SALESMAN_TEST_KEY")
    with pytest.raises(BackendError) as err:
        backend.chat(HELLO)
    assert "401" in str(err.value) and "SALESMAN_TEST_KEY" in str(err.value)
    assert "sk-test-secret-value" not in str(err.value)
    assert handler.seen == [401]  # no retry


def test_http_404_names_the_model(scripted_server):
    url, handler = scripted_server
    handler.script = [404]
    with pytest.raises(BackendError, match="404.*'m'"):
        _http_backend(url).chat(HELLO)
    assert handler.seen == [404]


def test_http_gives_up_after_max_retries(scripted_server):
    url, handler = scripted_server
    handler.script = [500] * 10
    with pytest.raises(BackendError, match="gave up after 3 tries"):
        _http_backend(url, max_retries=2).chat(HELLO)
    assert handler.seen == [500, 500, 500]
