"""The OpenAI-compatible backend against a real `transformers serve` on 127.0.0.1 (no mock)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from salesman_utils.llm import make_backend
from salesman_utils.models import default_chat_model_path

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_model(tmp_path_factory):
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which(
        "transformers"
    )
    assert exe, "the `transformers` CLI is missing: pip install 'transformers[serving]'"
    model = str(default_chat_model_path())
    port = _free_port()
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [exe, "serve", model, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, f"transformers serve exited; see {log.name}"
            assert time.time() < deadline, f"transformers serve did not start; see {log.name}"
            time.sleep(1)
        yield f"{url}/v1", model
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_http_backend_against_transformers_serve(served_model, tmp_path):
    base_url, model = served_model
    spec = {"kind": "openai", "model": model, "base_url": base_url, "max_concurrency": 2}
    backend = make_backend(spec, cache_path=tmp_path / "c.sqlite")
    batch = [
        [{"role": "user", "content": "Say hello to a florist."}],
        [{"role": "user", "content": "Say hello to a baker."}],
    ]
    replies = backend.chat(batch, max_new_tokens=16)
    assert len(replies) == 2 and all(r.strip() for r in replies)
    assert backend.stats["generated"] == 2
    # a re-run is served from the cache: no request reaches the server
    again = make_backend(spec, cache_path=tmp_path / "c.sqlite")
    assert again.chat(batch, max_new_tokens=16) == replies
    assert again.stats["generated"] == 0
