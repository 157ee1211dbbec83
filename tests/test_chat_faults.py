"""Issue 27, the chat: a person at the keyboard (bad bytes, Ctrl-C, end of input, bad seeds) never
gets a traceback, the call always ends with one summary line and a saved transcript, and the opening
greets the merchant, not the rep. A model-free stand-in agent keeps these tests fast."""

from __future__ import annotations

import copy
import io
import json
import sys
from collections import Counter

import pytest

from salesman_utils.agent import chat
from salesman_utils.agent.chat import ChatSession, chat_turn, demo_merchant, run_cli
from salesman_utils.agent.doga import AgentTurn, safe_template
from salesman_utils.config import load_profile
from salesman_utils.world.knowledge import get_product

PRODUCT = "spotlight_ads"


class StandIn:
    """A model-free agent: says `opening` first, then a fixed line; keeps the states it saw. With a
    `tokenizer`, it tokenizes the merchant's words as the real agent's model would."""

    name = "stand-in"

    def __init__(self, profile, opening="Hello Alex,", outline=None, tokenizer=None):
        self.profile, self.opening, self.outline = profile, opening, outline
        self.tokenizer = tokenizer
        self.counters: Counter[str] = Counter()
        self.states: list = []

    def respond(self, state):
        self.states.append(state)
        for t in state.history:
            if t.speaker == "customer":
                if self.tokenizer is not None:
                    self.tokenizer(t.text)  # a lone surrogate here: TypeError
                t.text.encode("utf-8")  # strict: no surrogates reach the model
        first = not any(t.speaker == "agent" for t in state.history)
        reply = self.opening if first else "Our ads put your store at the top of the list."
        intent = "Opening" if first else "Product_Introduction"
        outline = list(self.outline or []) if first else ["Say something like: " + reply]
        self.counters["turns"] += 1
        return AgentTurn(intent, outline, [], reply, raw=reply, draft=reply)


@pytest.fixture()
def profile(tmp_path):
    prof = copy.deepcopy(load_profile("smoke"))
    prof.paths.artifacts = str(tmp_path / "art")  # absolute: the chats land in tmp_path
    return prof


def session_with(profile, **kw) -> ChatSession:
    product = get_product(PRODUCT)
    session = ChatSession(StandIn(profile, **kw), product, demo_merchant(product, 0))
    session.merchant_seed = 0
    return session


def saved(out: str, tmp_path) -> dict:
    """The one summary line's transcript file, checked to lie under the profile's artifacts."""
    (line,) = [ln for ln in out.splitlines() if ln.startswith("Call ended after")]
    path = line.rsplit("Transcript: ", 1)[1]
    assert path.startswith(str(tmp_path / "art" / "chats")) and path.endswith(".json")
    return json.loads(open(path, encoding="utf-8").read())


# ---------------------------------------------------------------- undecodable input


def test_invalid_utf8_on_stdin_is_replaced(profile, tmp_path, monkeypatch):
    """Bytes that are no UTF-8 used to reach the tokenizer as lone surrogates (TypeError), or
    to fail reading a strict stream (UnicodeDecodeError); they become U+FFFD."""
    for errors in ("strict", "surrogateescape"):  # a plain stream; Python's stdin in C/POSIX locale
        stdin = io.TextIOWrapper(io.BytesIO(b"caf\xe9 \xff\xfe ok?\n/quit\n"), "utf-8", errors)
        monkeypatch.setattr(sys, "stdin", stdin)
        session, out = session_with(profile), io.StringIO()
        assert run_cli(session, out=out) == 2
        heard = [t.text for t in session.history if t.speaker == "customer"]
        assert heard == ["caf\ufffd \ufffd\ufffd ok?"]
        assert "YOU: caf\ufffd" in out.getvalue()
        assert saved(out.getvalue(), tmp_path)["turns"][1]["text"] == heard[0]


def test_surrogates_reach_the_tokenizer_replaced(profile):
    """`chat_turn` from a notebook or a `lines` iterable: surrogate-escaped bytes are decoded with
    replacement before the (real) tokenizer sees them."""
    try:
        from transformers import AutoTokenizer

        from salesman_utils.models import default_chat_model_path

        tokenizer = AutoTokenizer.from_pretrained(default_chat_model_path())
    except Exception as exc:  # pragma: no cover - no embedded model here
        pytest.skip(f"embedded tokenizer not available: {exc}")
    bad = b"caf\xe9 ok".decode("utf-8", "surrogateescape")
    with pytest.raises(TypeError):
        tokenizer(bad)  # the reported failure
    session = session_with(profile, tokenizer=tokenizer)
    chat_turn(session, None)
    chat_turn(session, bad)
    chat_turn(session, "lone \ud800 surrogate")  # no escaped byte: replaced too
    heard = [t.text for t in session.history if t.speaker == "customer"]
    assert heard == ["caf\ufffd ok", "lone ? surrogate"]
    assert chat.clean_text(b"caf\xe9") == "caf\ufffd"


# ---------------------------------------------------------------- Ctrl-C and end of input


def interrupted_after(*texts):
    yield from texts
    raise KeyboardInterrupt


def test_ctrl_c_mid_call_prints_one_summary_and_saves_the_transcript(profile, tmp_path):
    session, out = session_with(profile), io.StringIO()
    with pytest.raises(chat.ChatInterrupted) as exc:
        run_cli(session, interrupted_after("Who is this?", "How much is it?"), out=out)
    assert exc.value.turns == 3
    text = out.getvalue()
    assert "Traceback" not in text
    summary = [ln for ln in text.splitlines() if "Call ended" in ln]
    assert len(summary) == 1
    assert "after 3 agent turns" in summary[0] and "Ctrl-C" in summary[0]
    assert "outcome unknown" in summary[0]
    doc = saved(text, tmp_path)
    assert doc["ended_by"] == "Ctrl-C" and doc["outcome"] == "unknown"
    assert doc["profile"] == "smoke" and doc["product"] == PRODUCT and doc["agent_turns"] == 3
    assert [t["speaker"] for t in doc["turns"]] == ["agent", "customer"] * 2 + ["agent"]
    assert doc["turns"][1]["text"] == "Who is this?"
    assert [t["intent"] for t in doc["turns"] if t["speaker"] == "agent"] == [
        "Opening",
        "Product_Introduction",
        "Product_Introduction",
    ]


def test_ctrl_c_while_the_agent_speaks(profile, tmp_path):
    """Interrupted inside the agent's turn: the merchant's last words are kept in the transcript."""
    session, out = session_with(profile), io.StringIO()

    def slow_respond(state, _orig=session.agent.respond):
        if len(state.history) >= 2:
            raise KeyboardInterrupt
        return _orig(state)

    session.agent.respond = slow_respond
    with pytest.raises(KeyboardInterrupt):
        run_cli(session, iter(["Hello?"]), out=out)
    doc = saved(out.getvalue(), tmp_path)
    assert [t["text"] for t in doc["turns"]][1:] == ["Hello?"] and doc["agent_turns"] == 1


def test_main_ctrl_c_and_eof_exit_cleanly(profile, tmp_path, monkeypatch, capsys):
    """Through `main`: Ctrl-C exits 130, end of input exits 0; neither prints a traceback."""
    monkeypatch.setattr(chat, "start_session", lambda *a, **k: session_with(profile))
    monkeypatch.setattr(sys, "stdin", interrupted_after("Hi"))
    with pytest.raises(SystemExit) as exc:
        chat.main(["--product", PRODUCT])
    assert exc.value.code == chat.EXIT_INTERRUPTED
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err
    assert saved(cap.out, tmp_path)["ended_by"] == "Ctrl-C"

    monkeypatch.setattr(sys, "stdin", io.StringIO("Hi\nWhat is it?\n"))  # no /quit: EOF
    chat.main(["--product", PRODUCT])
    cap = capsys.readouterr()
    doc = saved(cap.out, tmp_path)
    assert doc["ended_by"] == "end of input" and doc["agent_turns"] == 3

    def interrupted_load(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(chat, "start_session", interrupted_load)
    with pytest.raises(SystemExit) as exc:
        chat.main(["--product", PRODUCT])
    assert exc.value.code == chat.EXIT_INTERRUPTED
    assert (
        capsys.readouterr().err.strip() == "Interrupted while loading the agent; no call was made."
    )


def test_transcripts_are_never_overwritten(profile, tmp_path):
    a = chat.save_transcript(session_with(profile), "/quit")
    b = chat.save_transcript(session_with(profile), "/quit")
    assert a != b and a.parent == b.parent == tmp_path / "art" / "chats"


# ---------------------------------------------------------------- bad seeds


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--merchant-seed", "abc", "'abc' is not an integer"),
        ("--merchant-seed", "-1", "-1 is negative"),
        ("--merchant-seed", "1.5", "'1.5' is not an integer"),
        ("--max-new-tokens", "0", "0 is not >= 1"),
    ],
)
def test_bad_seed_is_an_argparse_error(flag, value, says, monkeypatch, capsys):
    monkeypatch.setattr(chat, "start_session", lambda *a, **k: pytest.fail("must not start"))
    with pytest.raises(SystemExit) as exc:
        chat.main(["--product", PRODUCT, flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(
        "usage: python -m salesman_utils.agent.chat"
    )  # the usage, then one error
    assert err[-1].startswith("python -m salesman_utils.agent.chat: error: argument " + flag)
    assert says in err[-1] and sum("error" in ln for ln in err) == 1
    assert not any("Traceback" in ln for ln in err)


def test_demo_merchant_refuses_a_negative_seed():
    product = get_product(PRODUCT)
    with pytest.raises(ValueError, match="merchant_seed must be an integer >= 0, got -1"):
        demo_merchant(product, -1)
    with pytest.raises(TypeError, match="merchant_seed"):
        demo_merchant(product, "abc")  # type: ignore[arg-type]


# ---------------------------------------------------------------- the opening names the merchant


def test_opening_greeting_the_rep_is_replaced_by_the_named_template(profile):
    """The reported opening: "Hello Alex," (Alex is the rep). It gives way to the turn's filled
    template line, which greets the merchant's owner; the model's words stay in `draft`."""
    product = get_product(PRODUCT)
    merchant = demo_merchant(product, 0)
    line = f"Hi {merchant.owner}, Alex from {product.platform}. Got two minutes?"
    session = session_with(profile, outline=["Greet", "Say something like: " + line])
    first = chat_turn(session, None)
    assert merchant.owner in first.reply and first.reply == line
    assert not first.reply.startswith("Hello Alex")
    assert first.draft == "Hello Alex," and first.guard["unnamed_opening"] == 1
    assert session.history[0].text == line and session.agent.counters["unnamed_opening"] == 1
    assert "unnamed_opening" in chat.format_turn(first)


def test_opening_without_a_template_uses_the_safe_line(profile):
    session = session_with(profile, outline=[])
    first = chat_turn(session, None)
    expected = safe_template("Opening", session.product, session.merchant.visible())
    assert first.reply == expected and session.merchant.owner in first.reply


def test_opening_that_names_the_merchant_is_kept(profile):
    product = get_product(PRODUCT)
    merchant = demo_merchant(product, 0)
    for said in (f"Good morning {merchant.owner}!", f"Is this {merchant.name}?"):
        session = session_with(profile, opening=said)
        first = chat_turn(session, None)
        assert first.reply == said and "unnamed_opening" not in first.guard
        # only the opening is checked: later turns are left alone
        assert chat_turn(session, "Yes?").reply.startswith("Our ads")
