"""SSERewriteMiddleware at the ASGI level: OpenAI chunks in (oddly split), Anthropic SSE out."""

from __future__ import annotations

import json
import math

import anyio
import pytest

from aimw.exchange import Usage, exchange_of
from aimw.middleware.sse_rewrite import SSERewriteMiddleware
from aimw.sse import DEFAULT_MAX_EVENT_SIZE
from aimw.token_estimate import CHARS_PER_TOKEN, estimate_input_tokens
from aimw.translators.anthropic import ANTHROPIC_MESSAGES
from aimw.translators.anthropic.messages import decode_request
from aimw.translators.openai_chat import OpenAIChat
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

GUARD = 10  # seconds: a hang guard only, never an assertion about speed

CHAT_SSE = (KONG / "openai" / "stream-captures" / "chat-good.sse").read_bytes()
CHAT_TEXT = "".join(
    json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
    for line in CHAT_SSE.decode().split("\n")
    if line.startswith("data: {")
)
UPSTREAM_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"content-length", b"2633"),
    (b"transfer-encoding", b"chunked"),
    (b"x-request-id", b"abc"),
]


def chunk(content: str | None = None, finish_reason: str | None = None, **extra) -> bytes:
    delta = {} if content is None else {"content": content}
    data = {
        "id": "c1",
        "model": "up-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def upstream(chunks, *, headers=UPSTREAM_HEADERS, **kwargs) -> InnerApp:
    """The app below answering ``chunks``, one body message each, as an event stream (unless
    ``headers`` say otherwise); with ``error`` it raises instead of finishing."""
    return InnerApp(chunks=chunks, headers=headers, **kwargs)


async def run(inner, *, model: str | None = "req-model") -> tuple[RecordingSend, dict]:
    scope = http_scope(body=b"{}")
    if model is not None:
        exchange_of(scope).request_model = model
    send = RecordingSend()
    await SSERewriteMiddleware(inner, wire_format=OpenAIChat())(
        scope, ScriptedReceive([b"{}"], disconnect_now=True), send
    )
    return send, scope


@pytest.mark.parametrize(
    "offsets", [(), (1,), (5, 6, 7, 700, 701, 1500), tuple(range(3, 2633, 97)), tuple(range(1, 2633))]
)
async def test_openai_stream_becomes_anthropic_stream(offsets):
    pieces = split_at(CHAT_SSE, *offsets)
    inner = upstream([*pieces, b""])
    send, scope = await run(inner)

    assert send.status == 200
    assert send.header(b"content-length") is None
    assert send.header(b"transfer-encoding") is None
    assert send.header(b"content-type") == b"text/event-stream; charset=utf-8"
    assert send.header(b"cache-control") == b"no-cache"
    assert send.header(b"x-request-id") == b"abc"

    bodies = send.body_messages
    assert 1 <= len(bodies) <= len(inner.chunks)  # at most one send per upstream read
    assert send.complete
    for message in bodies:  # only whole events are sent
        assert message["body"] == b"" or message["body"].endswith(b"\n\n")

    stream = anthropic_stream(send.body)
    assert stream.message["model"] == "gpt-4-0613"
    assert stream.events[0][1]["message"]["usage"]["input_tokens"] == 0
    assert stream.text == CHAT_TEXT and stream.text.startswith("The answer")
    assert stream.stop_reason == "end_turn"
    assert exchange_of(scope).error is None


async def test_events_go_out_as_soon_as_their_read_completes():
    pieces = [
        chunk("Hel")[:10],
        chunk("Hel")[10:] + chunk("lo")[:4],
        chunk("lo")[4:],
        chunk(finish_reason="stop"),
        b"data: [DONE]\n\n",
        b"",
    ]
    inner = upstream(pieces)
    send, _ = await run(inner)
    bodies = [m["body"] for m in send.body_messages]
    assert len(bodies) == 5  # the first read completed no event: nothing sent for it
    assert sse_events(bodies[0])[0][0] == "message_start"
    assert [name for name, _ in sse_events(bodies[0])] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
    ]
    assert sse_events(bodies[1])[0][1]["delta"]["text"] == "lo"
    assert [name for name, _ in sse_events(bodies[2])] == ["content_block_stop"]
    assert [name for name, _ in sse_events(bodies[3])] == ["message_delta", "message_stop"]
    assert bodies[4] == b""
    assert [m["more_body"] for m in send.body_messages] == [True, True, True, True, False]


async def test_usage_chunk_reaches_message_delta():
    pieces = [
        chunk("hi"),
        chunk(finish_reason="length"),
        b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}\n\n',
        b"data: [DONE]\n\n",
    ]
    send, scope = await run(upstream(pieces))
    stream = anthropic_stream(send.body)
    assert stream.stop_reason == "max_tokens"
    assert stream.events[-2][1]["usage"]["input_tokens"] == 11
    assert stream.events[-2][1]["usage"]["output_tokens"] == 7
    usage = exchange_of(scope).usage
    assert (usage.input_tokens, usage.output_tokens) == (11, 7)


async def test_stream_ending_without_finish_reason_is_closed():
    send, _ = await run(upstream([chunk("partial"), chunk(" answer")]))
    assert send.complete
    stream = anthropic_stream(send.body)
    assert stream.names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert stream.stop_reason == "end_turn"


async def test_truncated_last_frame_is_still_translated():
    send, _ = await run(upstream([chunk("a"), chunk("b").rstrip(b"\n")]))
    assert anthropic_stream(send.body).text == "ab"


async def test_empty_stream_is_still_well_formed():
    send, _ = await run(upstream([b""]), model=None)
    stream = anthropic_stream(send.body)
    assert stream.names == ["message_start", "message_delta", "message_stop"]
    assert stream.message["model"] == "unknown"


async def test_upstream_failure_mid_stream_ends_with_an_error_event():
    reason = "the upstream provider's answer broke off (ReadError)"
    inner = upstream([chunk("Hello"), chunk(" wor")[:20]], error=UpstreamBrokeOff(reason))
    send, scope = await run(inner)
    assert send.status == 200
    assert send.complete
    assert len(send.body_messages) <= len(inner.chunks) + 1
    stream = anthropic_stream(send.body)
    assert stream.names[0] == "message_start"
    assert stream.names[-1] == "error"
    assert stream.error == {"type": "api_error", "message": reason}
    assert "message_stop" not in stream.names
    assert exchange_of(scope).error == reason


async def test_failure_after_done_just_ends_the_stream():
    inner = upstream([chunk("Hi", finish_reason="stop"), b"data: [DONE]\n\n"], error=UpstreamBrokeOff("late"))
    send, scope = await run(inner)
    assert send.complete
    assert "error" not in anthropic_stream(send.body).names
    assert exchange_of(scope).error == "late"


async def test_failure_before_the_stream_started_is_raised():
    with pytest.raises(UpstreamBrokeOff):
        await run(upstream([chunk("x")], error=UpstreamBrokeOff("early"), error_before_start=True))


async def test_failure_after_the_stream_finished_is_raised():
    class FinishThenFail:
        async def __call__(self, scope, receive, send):
            await upstream([chunk("x", finish_reason="stop")])(scope, receive, send)
            raise RuntimeError("after the end")

    with pytest.raises(RuntimeError):
        await run(FinishThenFail())


@pytest.mark.parametrize("error", [RuntimeError("x"), UpstreamBrokeOff("x")])
async def test_failure_of_a_non_stream_response_is_raised(error):
    inner = upstream([b'{"a":'], headers=[(b"content-type", b"application/json")], error=error)
    with pytest.raises(type(error)):
        await run(inner)


@pytest.mark.parametrize(
    "status, headers, pieces",
    [
        (200, [(b"content-type", b"application/json"), (b"content-length", b"13")], [b'{"id":', b' "x"}', b""]),
        (429, [(b"content-type", b"text/event-stream")], [b"data: {}\n\n"]),
        (500, [(b"content-type", b"text/html")], [b"<html>oops</html>"]),
        (200, [], [b"data: no content-type\n\n"]),
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


async def test_concurrent_streams_on_one_instance_stay_apart():
    """Two streams interleaved read by read through the same middleware: no shared state."""
    a_turns = [anyio.Event() for _ in range(6)]
    b_turns = [anyio.Event() for _ in range(6)]

    async def provider(scope, receive, send):
        name = exchange_of(scope).request_model
        word, mine, theirs = (
            ("alpha", a_turns, b_turns) if name == "a" else ("beta", b_turns, [*a_turns[1:], anyio.Event()])
        )
        pieces = [chunk(word + str(i)) for i in range(5)] + [chunk(finish_reason="stop")]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for i, piece in enumerate(pieces):
            await mine[i].wait()  # a0 b0 a1 b1 ...: each read waits for the other stream's
            await send({"type": "http.response.body", "body": piece[:7], "more_body": True})
            await send({"type": "http.response.body", "body": piece[7:], "more_body": True})
            theirs[i].set()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    app = SSERewriteMiddleware(provider, wire_format=OpenAIChat())
    results: dict[str, RecordingSend] = {}

    async def one(name):
        scope = http_scope(body=b"{}")
        exchange_of(scope).request_model = name
        results[name] = RecordingSend()
        await app(scope, ScriptedReceive(disconnect_now=True), results[name])

    a_turns[0].set()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, "a")
            tg.start_soon(one, "b")

    for name, word in (("a", "alpha"), ("b", "beta")):
        stream = anthropic_stream(results[name].body)
        assert stream.message["model"] == "up-model"
        assert stream.text == "".join(word + str(i) for i in range(5))


async def test_a_stream_the_client_left_still_records_what_it_got():
    """UpstreamApp returns without ending the body when the client leaves: the log still has
    the model and first token."""
    inner = upstream([chunk("Hello"), chunk(" there")], finish=False)
    send, scope = await run(inner)
    exchange = exchange_of(scope)
    assert not send.complete
    assert exchange.response_model == "up-model"
    assert exchange.first_token_ns > 0


async def test_an_in_stream_error_is_recorded():
    error_chunk = b'data: {"error": {"message": "Model is overloaded", "code": 503}}\n\n'
    send, scope = await run(upstream([chunk("starting"), error_chunk, chunk("AFTER")]))
    stream = anthropic_stream(send.body)
    assert stream.events[-1] == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "Model is overloaded"}},
    )
    assert b"AFTER" not in send.body
    assert send.complete
    assert exchange_of(scope).error == "overloaded_error: Model is overloaded"


async def test_the_stream_records_its_usage_model_and_first_token():
    pieces = [
        chunk("hi"),
        chunk(finish_reason="stop"),
        b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,'
        b'"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":3}}}\n\n',
        b"data: [DONE]\n\n",
    ]
    send, scope = await run(upstream(pieces))
    exchange = exchange_of(scope)
    assert exchange.response_model == "up-model"
    assert exchange.first_token_ns > 0
    assert exchange.usage == Usage(input_tokens=7, output_tokens=7, cache_read_input_tokens=4, reasoning_tokens=3)
    assert anthropic_stream(send.body).events[-2][1]["usage"]["cache_read_input_tokens"] == 4
    assert exchange.error is None


PROVIDER_ERROR_ANTHROPIC = (
    b'event: message_start\ndata: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":3}}}\n\n'
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
)
PROVIDER_ERROR_OPENAI = (
    b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
    b'data: {"error": {"message": "Overloaded", "code": 503}}\n\n'
)


@pytest.mark.parametrize(
    "wire_format, body", [(ANTHROPIC_MESSAGES, PROVIDER_ERROR_ANTHROPIC), (OpenAIChat(), PROVIDER_ERROR_OPENAI)]
)
async def test_a_provider_error_then_a_broken_connection(wire_format, body):
    failure = UpstreamBrokeOff("the upstream provider's answer broke off (ServerDisconnectedError)")
    inner = upstream([body], headers=[(b"content-type", b"text/event-stream")], error=failure)
    scope, send = http_scope(body=b"{}"), RecordingSend()
    await SSERewriteMiddleware(inner, wire_format=wire_format)(
        scope, ScriptedReceive([b"{}"], disconnect_now=True), send
    )
    assert send.body.count(b"event: error") == 1  # the stream already ended with the provider's error
    assert exchange_of(scope).error == "overloaded_error: Overloaded"  # the cause, not its effect


async def test_a_gateway_failure_mid_stream_ends_with_an_error_event():
    """Not only the upstream's failures: a bug below, after the stream began, still ends it well formed."""

    first_event = PROVIDER_ERROR_OPENAI.split(b"\n\n")[0] + b"\n\n"
    inner = upstream([first_event], headers=[(b"content-type", b"text/event-stream")], error=KeyError("a bug"))
    scope, send = http_scope(body=b"{}"), RecordingSend()
    await SSERewriteMiddleware(inner, wire_format=OpenAIChat())(
        scope, ScriptedReceive([b"{}"], disconnect_now=True), send
    )
    names = anthropic_stream(send.body).names
    assert names[0] == "message_start" and names[-1] == "error"
    assert send.complete
    assert exchange_of(scope).error == "internal gateway error (KeyError)"


START_ANTHROPIC = PROVIDER_ERROR_ANTHROPIC.split(b"\n\n")[0] + b"\n\n"
OVERSIZED_EVENT = b"event: content_block_delta\ndata: " + b"x" * (DEFAULT_MAX_EVENT_SIZE + 1)


@pytest.mark.parametrize(
    "wire_format, pieces",
    [
        (OpenAIChat(), [chunk("Hi"), b"data: {not json\n\n"]),
        (OpenAIChat(), [chunk("Hi"), b"data: " + b"x" * (DEFAULT_MAX_EVENT_SIZE + 1)]),
        (ANTHROPIC_MESSAGES, [START_ANTHROPIC, OVERSIZED_EVENT]),
    ],
    ids=["chat-unreadable", "chat-oversized", "anthropic-oversized"],
)
async def test_a_cut_stream_ends_at_once_and_stops_the_provider(wire_format, pieces):
    """Finding 7: once the translator cut the stream, the app below is stopped at the send of
    that read (UpstreamApp then closes the provider's response) and the client's response ends
    with the error event, although the provider would go on sending and never end."""
    sent: list[bytes] = []
    stopped: list[BaseException] = []

    async def endless_provider(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        try:
            for piece in [*pieces, *[chunk("after the cut")] * 3]:
                sent.append(piece)
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await anyio.sleep_forever()
        except Exception as exc:
            stopped.append(exc)
            raise

    scope, send = http_scope(body=b"{}"), RecordingSend()
    with anyio.fail_after(GUARD):
        await SSERewriteMiddleware(endless_provider, wire_format=wire_format)(
            scope, ScriptedReceive([b"{}"], disconnect_now=True), send
        )

    assert sent == pieces  # nothing after the read that cut the stream was asked for
    assert len(stopped) == 1
    assert send.complete
    assert [name for name, _ in sse_events(send.body)][-1] == "error"
    assert exchange_of(scope).error.startswith("api_error: ")


# ---------------------------------------------------------------- the usage of a stream cut short

REQUEST = decode_request(
    b'{"model":"m","max_tokens":99,"system":"Answer briefly.","messages":[{"role":"user","content":"What is 1 + 1?"}]}'
)


async def run_request(inner) -> tuple[RecordingSend, dict]:
    """:func:`run` for a parsed request (as the translated stack has it)."""
    scope = http_scope(body=b"{}")
    exchange_of(scope).request_model = "req-model"
    exchange_of(scope).messages_request = REQUEST
    send = RecordingSend()
    await SSERewriteMiddleware(inner, wire_format=OpenAIChat())(
        scope, ScriptedReceive([b"{}"], disconnect_now=True), send
    )
    return send, scope


async def test_a_stream_the_client_left_has_its_usage_estimated():
    send, scope = await run_request(upstream([chunk("Hello"), chunk(" there, friend")], finish=False))
    exchange = exchange_of(scope)
    assert not send.complete
    assert b'"text":"Hello"' in send.body and b'"text":" there, friend"' in send.body
    assert exchange.usage == Usage(
        input_tokens=estimate_input_tokens(REQUEST), output_tokens=math.ceil(19 / CHARS_PER_TOKEN)
    )
    assert exchange.usage_estimated is True


async def test_a_stream_the_client_left_after_its_usage_came_keeps_the_providers():
    usage = b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3}}\n\n'
    _, scope = await run_request(upstream([chunk("Hello"), usage, chunk(" more")], finish=False))
    exchange = exchange_of(scope)
    assert exchange.usage == Usage(input_tokens=11, output_tokens=3)
    assert exchange.usage_estimated is False


async def test_a_stream_the_provider_broke_off_has_its_usage_estimated_too():
    send, scope = await run_request(upstream([chunk("Hello")], error=UpstreamBrokeOff("reset")))
    exchange = exchange_of(scope)
    assert anthropic_stream(send.body).error["message"] == "reset"
    assert exchange.usage.output_tokens == math.ceil(5 / CHARS_PER_TOKEN)
    assert exchange.usage_estimated is True


async def test_a_stream_that_ended_keeps_the_providers_usage_even_without_any():
    send, scope = await run_request(upstream([chunk("Hello", finish_reason="stop"), b"data: [DONE]\n\n"]))
    exchange = exchange_of(scope)
    assert send.complete
    assert exchange.usage == Usage()  # the provider said nothing; the answer was whole: nothing estimated
    assert exchange.usage_estimated is False
