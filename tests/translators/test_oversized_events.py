"""A provider that sends one endless event (issue 8, finding 7): each translator ends the
client's stream with a well-formed ``event: error`` once the event passes the cap, and
writes nothing more, however much the provider goes on sending."""

from __future__ import annotations

import json

from aimw.sse import DEFAULT_MAX_EVENT_SIZE, SSEDecoder
from aimw.translators.anthropic.passthrough import AnthropicEventStream
from aimw.translators.openai_chat import ChatStreamTranslator
from tests.asgi_helpers import anthropic_stream

PIECE = b"x" * 65536
START = b'event: message_start\ndata: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":3}}}\n\n'


def events(body: bytes) -> list[tuple[str, dict]]:
    decoder = SSEDecoder()
    return [(event.event, json.loads(event.data)) for event in [*decoder.feed(body), *decoder.flush()]]


def endless(stream, head: bytes) -> bytes:
    out = [stream.feed(head)]
    for _ in range(DEFAULT_MAX_EVENT_SIZE // len(PIECE) + 20):
        out.append(stream.feed(PIECE))
    out.append(stream.finish())
    return b"".join(out)


def test_a_chat_stream_ends_with_an_error_event():
    translator = ChatStreamTranslator("m")
    first = b'data: {"model":"m","choices":[{"delta":{"content":"hi"}}]}\n\n'
    body = endless(translator, first + b'data: {"choices":[{"delta":{"content":"')
    names = [name for name, _ in events(body)]
    assert names == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert "oversized stream event" in events(body)[-1][1]["error"]["message"]
    assert anthropic_stream(body).error == events(body)[-1][1]["error"]  # the whole stream: a well-formed error ending
    assert translator.done and translator.error.startswith("api_error")
    assert translator.fail("api_error", "later") == b""


def test_an_anthropic_stream_keeps_its_whole_events_then_ends_with_an_error_event():
    stream = AnthropicEventStream()
    body = endless(stream, START + b'event: content_block_delta\ndata: {"text":"')
    assert body.startswith(START)
    assert [name for name, _ in events(body)] == ["message_start", "error"]
    assert stream.done and stream.error.startswith("api_error") and stream.usage.input_tokens == 3
    assert stream.fail("api_error", "later") == b""


def test_an_anthropic_stream_of_many_small_events_is_not_capped():
    stream = AnthropicEventStream(max_event_size=1000)
    delta = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0}\n\n'
    body = stream.feed(START) + b"".join(stream.feed(delta) for _ in range(200)) + stream.finish()
    assert body == START + delta * 200
    assert stream.error is None and stream.has_content
