"""SSERewriteMiddleware(wire_format=ANTHROPIC_MESSAGES): an Anthropic stream passes byte for byte,
headers untouched, released only at event boundaries; a mid-stream failure ends it with
the whole events so far and one ``event: error``."""

from __future__ import annotations

import json
import math
import random

import pytest

from aimw.exchange import Usage, exchange_of
from aimw.middleware.sse_rewrite import SSERewriteMiddleware
from aimw.token_estimate import CHARS_PER_TOKEN, estimate_input_tokens
from aimw.translators.anthropic import ANTHROPIC_MESSAGES
from aimw.translators.anthropic.messages import decode_request
from aimw.translators.anthropic.passthrough import AnthropicEventStream
from aimw.upstream import UpstreamBrokeOff
from tests.asgi_helpers import (
    InnerApp,
    RecordingSend,
    ScriptedReceive,
    anthropic_stream,
    http_scope,
    split_at,
    sse_events,
)
from tests.shared_data import KONG

pytestmark = pytest.mark.anyio

TEXT_SSE = (KONG / "anthropic" / "stream-captures" / "messages-stream-text.sse").read_bytes()
TEXT_SSE_CRLF = TEXT_SSE.replace(b"\n", b"\r\n")
# Anthropic's own headers, in the provider's order (UpstreamApp lower-cases the names)
UPSTREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"request-id", b"req_011CUpstream"),
    (b"anthropic-organization-id", b"org-1"),
    (b"x-aimw-llm-model", b"anthropic/claude-2.1"),
]


def boundaries(data: bytes, separator: bytes = b"\n\n") -> list[int]:
    """Offsets just past each event's blank line."""
    out, at = [], data.find(separator)
    while at >= 0:
        out.append(at + len(separator))
        at = data.find(separator, at + len(separator))
    return out


def test_the_fixture_is_a_real_anthropic_stream():
    stream = anthropic_stream(TEXT_SSE)
    assert stream.names[:2] == ["message_start", "content_block_start"]
    assert stream.names[-2:] == ["message_delta", "message_stop"]
    assert len(boundaries(TEXT_SSE)) == len(stream.events) == 11
    assert TEXT_SSE.endswith(b"\n\n") and b"\r" not in TEXT_SSE


def upstream(pieces, *, headers=UPSTREAM_HEADERS, **kwargs) -> InnerApp:
    """The Anthropic API below answering ``pieces``, one body message each, as an event
    stream (unless ``headers`` say otherwise); with ``error`` it raises instead of finishing."""
    return InnerApp(chunks=pieces, headers=headers, **kwargs)


async def run(inner) -> tuple[RecordingSend, dict]:
    scope = http_scope(body=b"{}")
    exchange_of(scope).request_model = "claude-2.1"
    send = RecordingSend()
    app = SSERewriteMiddleware(inner, wire_format=ANTHROPIC_MESSAGES)
    await app(scope, ScriptedReceive([b"{}"], disconnect_now=True), send)
    return send, scope


def random_splits(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    count = rng.randint(1, 40)
    return split_at(data, *(rng.randrange(1, len(data)) for _ in range(count)))


def assert_whole_events(send: RecordingSend, separator: bytes = b"\n\n") -> None:
    for message in send.body_messages:
        body = message["body"]
        assert body == b"" or body.endswith(separator), body[-40:]


SPLITS = [
    pytest.param([TEXT_SSE], id="one-read"),
    pytest.param(split_at(TEXT_SSE, *range(1, len(TEXT_SSE))), id="every-byte"),
    pytest.param(split_at(TEXT_SSE, *boundaries(TEXT_SSE)), id="at-boundaries"),
    pytest.param(split_at(TEXT_SSE, *(b - 1 for b in boundaries(TEXT_SSE))), id="between-the-two-newlines"),
    pytest.param(split_at(TEXT_SSE, *(b + 1 for b in boundaries(TEXT_SSE))), id="one-byte-past"),
    *(pytest.param(random_splits(TEXT_SSE, seed), id=f"random-{seed}") for seed in range(25)),
]


@pytest.mark.parametrize("pieces", SPLITS)
async def test_any_split_comes_out_byte_identical(pieces):
    inner = upstream(pieces)
    send, scope = await run(inner)

    assert send.start == inner.start  # status and headers exactly as the provider sent them
    assert send.body == TEXT_SSE
    assert send.complete
    assert_whole_events(send)
    assert len(send.body_messages) <= len(pieces)  # at most one send per upstream read
    for message in send.body_messages[:-1]:
        assert message["body"], "a read that completes no event sends nothing"
    for message in send.body_messages:  # each send parses on its own: whole events only
        if message["body"]:
            sse_events(message["body"])
    exchange = exchange_of(scope)
    assert exchange.error is None
    assert exchange.usage.reasoning_tokens == 0


async def test_events_are_released_as_soon_as_their_read_completes():
    first, second = boundaries(TEXT_SSE)[:2]
    pieces = [TEXT_SSE[:10], TEXT_SSE[10 : first + 5], TEXT_SSE[first + 5 : second], TEXT_SSE[second:]]
    send, _ = await run(upstream(pieces))
    assert [m["body"] for m in send.body_messages] == [TEXT_SSE[:first], TEXT_SSE[first:second], TEXT_SSE[second:]]
    assert [m["more_body"] for m in send.body_messages] == [True, True, False]


async def test_a_read_with_a_blank_line_at_its_start_holds_the_partial_event():
    first = boundaries(TEXT_SSE)[0]
    pieces = [TEXT_SSE[: first - 2], TEXT_SSE[first - 2 : first + 5], TEXT_SSE[first + 5 :]]
    send, _ = await run(upstream(pieces))
    assert [m["body"] for m in send.body_messages] == [TEXT_SSE[:first], TEXT_SSE[first:]]


@pytest.mark.parametrize("seed", range(10))
async def test_crlf_event_separators(seed):
    pieces = random_splits(TEXT_SSE_CRLF, seed) if seed else split_at(TEXT_SSE_CRLF, *range(1, len(TEXT_SSE_CRLF)))
    send, _ = await run(upstream(pieces))
    assert send.body == TEXT_SSE_CRLF
    assert send.complete
    assert_whole_events(send, b"\r\n\r\n")
    bodies = [m["body"] for m in send.body_messages if m["body"]]
    assert all(body.count(b"\r\n\r\n") >= 1 for body in bodies)


async def test_a_trailing_event_without_its_blank_line_is_still_delivered():
    cut = TEXT_SSE.rstrip(b"\n")
    send, _ = await run(upstream(split_at(cut, 100, len(cut) - 3)))
    assert send.body == cut
    assert send.complete


async def test_empty_stream():
    send, scope = await run(upstream([b""]))
    assert send.body == b"" and send.complete
    assert exchange_of(scope).error is None


# ---------------------------------------------------------------- what the stream said, recorded

CUMULATIVE_SSE = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",'
    b'"model":"provider-model-7b","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":100,'
    b'"output_tokens":1,"cache_creation_input_tokens":5,"cache_read_input_tokens":20}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"2"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":30}}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":42}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


@pytest.mark.parametrize("pieces", [[TEXT_SSE], random_splits(TEXT_SSE, 7)])
async def test_the_stream_records_its_usage_model_and_first_token(pieces):
    send, scope = await run(upstream(pieces))
    assert send.body == TEXT_SSE
    exchange = exchange_of(scope)
    assert exchange.usage == Usage(input_tokens=15, output_tokens=9)
    assert exchange.response_model == "claude-2.1"
    assert exchange.first_token_ns > 0


async def test_cumulative_usage_replaces_never_adds():
    send, scope = await run(upstream(split_at(CUMULATIVE_SSE, 3, 200, 201, 700)))
    assert send.body == CUMULATIVE_SSE
    exchange = exchange_of(scope)
    assert exchange.usage == Usage(
        input_tokens=100, output_tokens=42, cache_creation_input_tokens=5, cache_read_input_tokens=20
    )
    assert exchange.response_model == "provider-model-7b"


async def test_an_error_event_from_the_provider_is_recorded():
    start = CUMULATIVE_SSE[: boundaries(CUMULATIVE_SSE)[0]]
    error = b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"stream failed"}}\n\n'
    send, scope = await run(upstream([start, error]))
    assert send.body == start + error  # passed on as it came, no second error event
    exchange = exchange_of(scope)
    assert exchange.error == "api_error: stream failed"
    assert exchange.usage.input_tokens == 100
    assert exchange.first_token_ns == 0  # no content reached the client


# ---------------------------------------------------------------- failures mid-stream


def expected_after_failure(sent: bytes, separator: bytes = b"\n\n") -> bytes:
    """The whole events within ``sent``: everything up to its last event boundary."""
    last = sent.rfind(separator)
    return sent[: last + len(separator)] if last >= 0 else b""


def assert_one_error_at_the_end(send: RecordingSend, whole_events: bytes) -> None:
    assert send.complete
    assert send.body_messages[-1]["more_body"] is False
    body = send.body
    assert body.startswith(whole_events)
    tail = body[len(whole_events) :]
    [(name, data)] = sse_events(tail)
    assert name == "error"
    assert data == {"type": "error", "error": {"type": "api_error", "message": data["error"]["message"]}}
    assert data["error"]["message"]
    assert anthropic_stream(body).error == data["error"]  # the whole stream: a well-formed error ending
    assert body.count(b"event: error") == 1
    assert_whole_events(send)


@pytest.mark.parametrize(
    "cut", [1, 30, *boundaries(TEXT_SSE)[:-1], *(b + 7 for b in boundaries(TEXT_SSE)[:-1]), len(TEXT_SSE) - 5]
)
async def test_failure_mid_stream_sends_whole_events_then_one_error(cut):
    sent = TEXT_SSE[:cut]
    reason = "the upstream provider's answer broke off (ReadError)"
    inner = upstream(random_splits(sent, cut) if cut > 1 else [sent], error=UpstreamBrokeOff(reason))
    send, scope = await run(inner)
    assert send.status == 200
    assert_one_error_at_the_end(send, expected_after_failure(sent))
    assert b"message_stop" not in send.body
    assert sse_events(send.body)[-1][1]["error"]["message"] == reason
    assert exchange_of(scope).error == reason


async def test_failure_at_every_offset():
    for cut in range(1, len(TEXT_SSE) - len(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')):
        sent = TEXT_SSE[:cut]
        send, _ = await run(upstream(split_at(sent, cut // 2), error=UpstreamBrokeOff("gone")))
        assert_one_error_at_the_end(send, expected_after_failure(sent))


async def test_failure_mid_event_with_crlf_separators():
    cut = boundaries(TEXT_SSE_CRLF, b"\r\n\r\n")[3] + 12
    sent = TEXT_SSE_CRLF[:cut]
    send, _ = await run(upstream(split_at(sent, 5, 100, 101), error=UpstreamBrokeOff("x")))
    whole = expected_after_failure(sent, b"\r\n\r\n")
    assert send.body.startswith(whole) and whole.endswith(b"\r\n\r\n")
    assert send.body[len(whole) :].startswith(b"event: error\n")
    assert send.body.count(b"event: error") == 1
    assert send.complete


async def test_failure_before_any_byte_sends_only_the_error():
    send, _ = await run(upstream([], error=UpstreamBrokeOff("x")))
    assert send.start["headers"] == UPSTREAM_HEADERS
    assert_one_error_at_the_end(send, b"")


async def test_failure_after_message_stop_just_ends_the_stream():
    send, scope = await run(upstream(split_at(TEXT_SSE, 500), error=UpstreamBrokeOff("reset after the end")))
    assert send.body == TEXT_SSE
    assert send.complete
    assert b"event: error" not in send.body
    assert exchange_of(scope).error == "reset after the end"


async def test_message_stop_inside_text_does_not_count_as_the_end():
    start, stop = boundaries(TEXT_SSE)[0], boundaries(TEXT_SSE)[1]
    tricky = (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"event: message_stop"}}\n\n'
    )
    sent = TEXT_SSE[:stop] + tricky
    send, _ = await run(upstream([sent[:start], sent[start:]], error=UpstreamBrokeOff("x")))
    assert_one_error_at_the_end(send, sent)


async def test_failure_before_the_response_started_is_raised():
    with pytest.raises(UpstreamBrokeOff):
        await run(upstream([TEXT_SSE], error=UpstreamBrokeOff("early"), error_before_start=True))


async def test_failure_after_the_stream_finished_is_raised():
    async def finish_then_fail(scope, receive, send):
        await upstream([TEXT_SSE])(scope, receive, send)
        raise RuntimeError("after the end")

    with pytest.raises(RuntimeError):
        await run(finish_then_fail)


# ---------------------------------------------------------------- other answers pass untouched


@pytest.mark.parametrize(
    "status, headers, pieces",
    [
        (200, [(b"content-type", b"application/json"), (b"content-length", b"13")], [b'{"id":', b' "x"}']),
        (
            529,
            [(b"content-type", b"text/event-stream")],
            [
                b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",',
                b'"message":"Overloaded"}}\n\n',
            ],
        ),
        (429, [(b"content-type", b"application/json"), (b"retry-after", b"7")], [b'{"type":"error"}']),
        (200, [], [b"event: ping\ndata: {}", b"\n\n"]),
    ],
)
async def test_other_responses_pass_untouched(status, headers, pieces):
    inner = upstream(pieces, status=status, headers=headers)
    send, _ = await run(inner)
    assert send.messages == [
        {"type": "http.response.start", "status": status, "headers": headers},
        *(
            {"type": "http.response.body", "body": piece, "more_body": i < len(pieces) - 1}
            for i, piece in enumerate(pieces)
        ),
    ]


async def test_failure_of_a_json_answer_is_raised():
    inner = upstream([b'{"a":'], headers=[(b"content-type", b"application/json")], error=RuntimeError("x"))
    with pytest.raises(RuntimeError):
        await run(inner)


async def test_lifespan_passes_through():
    inner = InnerApp()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await SSERewriteMiddleware(inner, wire_format=ANTHROPIC_MESSAGES)(scope, ScriptedReceive(), RecordingSend())
    assert inner.scopes == [scope]


# ---------------------------------------------------------------- the usage of a stream cut short


async def test_a_stream_the_client_left_gets_its_output_estimated_from_what_it_got():
    """The real capture (Anthropic pads its events with spaces) up to its last text delta:
    message_start's input stands, its output count (1) does not; the output is estimated
    from the deltas' text, "1 + 1 = 2", padding left out."""
    last_delta = boundaries(TEXT_SSE)[7]
    send, scope = await run(upstream(random_splits(TEXT_SSE[:last_delta], 3), finish=False))
    assert send.body == TEXT_SSE[:last_delta] and not send.complete
    exchange = exchange_of(scope)
    assert exchange.usage == Usage(input_tokens=15, output_tokens=math.ceil(len("1 + 1 = 2") / CHARS_PER_TOKEN))
    assert exchange.usage_estimated is True


async def test_a_stream_that_ended_has_message_deltas_output_not_an_estimate():
    _, scope = await run(upstream([TEXT_SSE]))
    assert exchange_of(scope).usage == Usage(input_tokens=15, output_tokens=9)
    assert exchange_of(scope).usage_estimated is False


async def test_without_message_starts_usage_the_input_is_estimated_from_the_request_body():
    body = b'{"model":"claude-x","max_tokens":9,"messages":[{"role":"user","content":"What is 1 + 1, twice?"}]}'
    start = b'event: message_start\ndata: {"type":"message_start","message":{"model":"m"}}\n\n'
    delta = event(
        "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "2"}}
    )
    scope = http_scope(body=body)
    exchange_of(scope).request_body = body  # as StripFields kept it (the pass-through parses nothing)
    send = RecordingSend()
    app = SSERewriteMiddleware(upstream([start, delta], finish=False), wire_format=ANTHROPIC_MESSAGES)
    await app(scope, ScriptedReceive([body], disconnect_now=True), send)
    exchange = exchange_of(scope)
    assert exchange.usage == Usage(input_tokens=estimate_input_tokens(decode_request(body)), output_tokens=1)
    assert exchange.usage_estimated is True


def event(name: str, payload: dict, padding: int = 0) -> bytes:
    """An event as Anthropic writes it: compact JSON, spaces before its last brace."""
    data = json.dumps(payload, separators=(",", ":"))
    return f"event: {name}\ndata: {data[:-1]}{' ' * padding}}}\n\n".encode()


def block(index: int, content_block: dict, delta_type: str, field: str, pieces: list[str]) -> list[bytes]:
    start = {"type": "content_block_start", "index": index, "content_block": content_block}
    deltas = [
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": index, "delta": {"type": delta_type, field: piece}},
            padding=n % 7,
        )
        for n, piece in enumerate(pieces)
    ]
    return [
        event("content_block_start", start),
        *deltas,
        event("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


def test_content_chars_are_the_deltas_json_escaped_content_whatever_the_block():
    text = ["Hello", ' "quoted"\nline', " caf\u00e9 ☕"]
    thinking = ["Let me", " think."]
    tool_input = ['{"city": ', '"Oslo"}']
    events = [
        *block(0, {"type": "thinking", "thinking": ""}, "thinking_delta", "thinking", thinking),
        *block(1, {"type": "text", "text": ""}, "text_delta", "text", text),
        *block(
            12,
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}},
            "input_json_delta",
            "partial_json",
            tool_input,
        ),
    ]
    stream = AnthropicEventStream()
    for piece in events:
        stream.feed(piece)
    stream.finish()
    escaped = sum(len(json.dumps(piece)) - 2 for piece in [*thinking, *text, *tool_input])
    assert stream.content_chars == escaped
    assert stream.has_content


def test_content_chars_of_a_stream_written_otherwise_never_go_below_zero():
    odd = b'event: content_block_delta\ndata: {"delta": {"text": ""}, "index": 0}\n\n'  # not Anthropic's order
    stream = AnthropicEventStream()
    stream.feed(odd * 3)
    assert stream.content_chars >= 0
