"""Property: however a provider's stream is cut into reads, the Anthropic stream is the same.

Each stream (or a prefix of it: a provider that broke off) is translated whole (one feed,
then finish), then cut at hypothesis-chosen offsets (mid-line, mid-CRLF, mid-UTF-8
character, byte by byte where it picks many): the output bytes must be the same (tool_use
ids aimw makes up are random: compared as placeholders), and so must the usage, the model
and the error the translator reports.

Streams: every recorded one under ../shared/fixtures/kong (OpenAI Chat Completions, Gemini
streamGenerateContent - Kong's JSON-array captures replayed as ``alt=sse`` events, as
tests/translators/test_gemini_stream.py does - and Anthropic's own, through the
pass-through), the bench's fake answers (bench.fake_upstream, bench.gemini: non-ASCII text
and JSON escapes), tool calls, reasoning and thought signatures shaped by the fakes'
helpers; each also with CRLF line ends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aimw.translators.anthropic.passthrough import AnthropicEventStream
from aimw.translators.gemini import GeminiStreamTranslator
from aimw.translators.openai_chat import ChatStreamTranslator
from bench import fake_upstream
from bench import gemini as bench_gemini
from bench.answer import Answer
from tests.fakes import gemini_server, openai_chat_server
from tests.fuzz.budget import fuzz
from tests.shared_data import KONG

MESSAGE_ID = "msg_fuzz_0001"
MODEL = "requested-model"
RANDOM_TOOL_USE_ID = re.compile(rb"toolu_[0-9a-f]{32}")


@dataclass(frozen=True)
class Stream:
    name: str
    wire: bytes
    translator: Callable[[], Any]  # a new StreamTranslator


def chat() -> ChatStreamTranslator:
    return ChatStreamTranslator(MODEL, message_id=MESSAGE_ID)


def gemini() -> GeminiStreamTranslator:
    return GeminiStreamTranslator(MODEL, message_id=MESSAGE_ID)


def chat_sse(chunks: list[dict]) -> bytes:
    return b"".join(b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\n\n" for c in chunks) + (
        b"data: [DONE]\n\n"
    )


def gemini_sse(responses: list[dict]) -> bytes:
    """``alt=sse``: one compact GenerateContentResponse per ``data:`` line."""
    return b"".join(
        b"data: " + json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n" for r in responses
    )


def _chat_streams() -> list[tuple[str, bytes]]:
    openai = KONG / "openai"
    calls = [
        openai_chat_server.ToolCall("call_0", "get_weather", {"city": "Zürich ☃", "note": 'say "hi"\n'}),
        openai_chat_server.ToolCall("call_1", "get_time", {"tz": "日本"}),
    ]
    return [
        ("kong chat-good.sse", (openai / "stream-captures" / "chat-good.sse").read_bytes()),
        ("kong real frame", (openai / "unit" / "real-stream-frames" / "llm-v1-chat.txt").read_bytes()),
        ("kong real frame aigw", (openai / "unit" / "real-stream-frames" / "llm-v1-chat.aigw-393.txt").read_bytes()),
        ("kong text-event-stream", (openai / "unit/streaming-chunk-formats/text-event-stream/input.bin").read_bytes()),
        (
            "kong text-event-stream aigw",
            (openai / "unit/streaming-chunk-formats/text-event-stream/input.aigw-393.bin").read_bytes(),
        ),
        ("bench answer", b"".join(fake_upstream.stream_events(Answer.of(12)))),
        ("tool calls", chat_sse(openai_chat_server.tool_call_chunks(calls, text=["Checking ", "… "]))),
        ("reasoning", chat_sse(openai_chat_server.text_chunks(["It is ", "2 ✓"], reasoning=["Let me ", "add."]))),
    ]


def _gemini_streams() -> list[tuple[str, bytes]]:
    captures = KONG / "gemini" / "stream-captures"
    formats = KONG / "gemini" / "unit" / "streaming-chunk-formats"
    thought = gemini_server.response(
        [{"text": "Let me think", "thought": True}], finish_reason=None, usage=(12, 0), thoughts=5, response_id="r1"
    )
    text = gemini_server.response([{"text": "Je vais voir ✓ "}], finish_reason=None, usage=(12, 3), response_id="r1")
    call = gemini_server.response(
        [{"functionCall": {"name": "get_weather", "args": {"city": "Zürich"}}, "thoughtSignature": "c2lnbmF0dXJl"}],
        usage=(12, 9),
        response_id="r1",
    )
    return [
        *(
            (f"kong {name}", gemini_sse(json.loads((captures / f"{name}.json-array.txt").read_text())))
            for name in ("streamGenerateContent-text", "streamGenerateContent-functionCall")
        ),
        ("kong thinking usage", gemini_sse(json.loads((formats / "gemini" / "input.json").read_text()))),
        ("bench answer", b"".join(bench_gemini.stream_events(Answer.of(12)))),
        ("thought, text, signed call", gemini_sse([thought, text, call])),
    ]


def _streams() -> list[Stream]:
    anthropic = (KONG / "anthropic" / "stream-captures" / "messages-stream-text.sse").read_bytes()
    kinds: list[tuple[str, Callable[[], Any], list[tuple[str, bytes]]]] = [
        ("openai", chat, _chat_streams()),
        ("gemini", gemini, _gemini_streams()),
        ("anthropic", AnthropicEventStream, [("kong messages-stream-text.sse", anthropic)]),
    ]
    streams = []
    for kind, translator, wires in kinds:
        for name, wire in wires:
            lf = wire.replace(b"\r\n", b"\n")
            streams.append(Stream(f"{kind}: {name}", lf, translator))
            streams.append(Stream(f"{kind}: {name} (CRLF)", lf.replace(b"\n", b"\r\n"), translator))
    return streams


STREAMS = _streams()


def translate(stream: Stream, pieces: list[bytes]) -> tuple[bytes, Any, Any, Any]:
    """(Anthropic bytes with random ids as placeholders, usage, model, error)."""
    translator = stream.translator()
    out = b"".join([translator.feed(piece) for piece in pieces]) + translator.finish()
    return RANDOM_TOOL_USE_ID.sub(b"toolu_X", out), translator.usage, translator.model, translator.error


def pieces_at(wire: bytes, cuts: set[int]) -> list[bytes]:
    bounds = [0, *sorted(cut for cut in cuts if 0 < cut < len(wire)), len(wire)]
    return [wire[start:end] for start, end in pairwise(bounds)]


def test_the_streams_are_there() -> None:
    assert len(STREAMS) >= 26
    assert all(stream.wire for stream in STREAMS)
    non_ascii = [stream.name for stream in STREAMS if any(byte > 0x7F for byte in stream.wire)]
    assert len(non_ascii) >= 8  # cuts can fall inside UTF-8 characters
    whole = {stream.name: translate(stream, [stream.wire]) for stream in STREAMS}
    assert all(out for out, *_ in whole.values())
    assert any(b'"type":"tool_use"' in out for out, *_ in whole.values())


@pytest.mark.parametrize("stream", STREAMS, ids=[stream.name for stream in STREAMS])
@fuzz(30)
@given(data=st.data())
def test_any_cut_of_a_stream_gives_the_same_anthropic_stream(stream: Stream, data: st.DataObject) -> None:
    """The whole stream, or the stream broken off anywhere (a provider that dropped the
    connection)."""
    broken = data.draw(st.booleans(), label="broken off")
    wire = stream.wire[: data.draw(st.integers(1, len(stream.wire)), label="end")] if broken else stream.wire
    cuts = data.draw(st.sets(st.integers(1, max(len(wire) - 1, 1)), max_size=min(len(wire), 200)), label="cuts")
    assert translate(stream, pieces_at(wire, cuts)) == translate(stream, [wire])
