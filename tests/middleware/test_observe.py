"""ObserveMiddleware: owns the Exchange, stamps timings and sizes, computes the figures once,
emits one ObservedExchange per exchange to each sink, and never changes a byte."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from aimw.asgi import ClientDisconnected, read_body
from aimw.exchange import Attempt, Usage, exchange_of
from aimw.middleware.observe import MAX_LOGGED_PAYLOAD, ObserveMiddleware
from tests.asgi_helpers import InnerApp, RecordingSend, ScriptedReceive, call, http_scope, split_at

pytestmark = pytest.mark.anyio

REQUEST_BODY = b'{"messages":[{"role":"user","content":"What is 1 + 1?"}],"max_tokens":512,"stream":true}'
SSE_BODY = (
    b'event: message_start\ndata: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":3}}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"2"}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)
JSON_MESSAGE = b'{"id":"msg_2","type":"message","role":"assistant","model":"json-model","content":[],"usage":{}}'
MS = 1_000_000  # ns


def attempt(sent_ns: int = 0, last_byte_ns: int = 0, failure: str | None = None) -> Attempt:
    return Attempt(
        "huggingface",
        "meta-llama/Llama-3.3-70B-Instruct",
        "https",
        "router.huggingface.co",
        443,
        "/v1/chat/completions",
        sent_ns=sent_ns,
        last_byte_ns=last_byte_ns,
        failure=failure,
    )


class RecordingSink:
    def __init__(self) -> None:
        self.observed = []

    def emit(self, observed) -> None:
        self.observed.append(observed)


def gateway(chunks, content_type=b"text/event-stream; charset=utf-8", *, fill=None, error=None) -> InnerApp:
    """Stands in for the stack below Observe: reads the body, calls ``fill(exchange)`` the way
    the real layers fill it, answers ``chunks`` with ``content_type`` (or raises ``error``
    before answering)."""
    on_request = (lambda scope: fill(exchange_of(scope))) if fill is not None else None
    headers = [(b"content-type", content_type)]
    return InnerApp(chunks=chunks, headers=headers, error=error, error_before_start=True, on_request=on_request)


def answered_in_50_ms(exchange) -> None:
    """One attempt sent 1 ms after the request came, answered in 50 ms; first token after 20 ms."""
    sent = exchange.received_ns + 1 * MS
    exchange.attempts.append(attempt(sent, sent + 50 * MS))
    exchange.first_token_ns = sent + 20 * MS
    exchange.usage = Usage(
        input_tokens=100, output_tokens=42, cache_creation_input_tokens=5, cache_read_input_tokens=20
    )


def scope_for(body=REQUEST_BODY):
    return http_scope(query=b"beta=true", headers=[(b"content-type", b"application/json")], body=body)


async def test_the_sinks_get_the_finished_exchange_and_its_figures():
    sink = RecordingSink()
    app = ObserveMiddleware(
        gateway(split_at(SSE_BODY, 30), fill=answered_in_50_ms), sinks=[sink], input_cost=3.0, output_cost=15.0
    )
    scope = scope_for()
    before_ms = int(time.time() * 1000)
    await call(app, scope, split_at(REQUEST_BODY, 10))
    after_ms = int(time.time() * 1000)

    [observed] = sink.observed
    exchange = exchange_of(scope)
    assert observed.scope is scope and observed.exchange is exchange
    assert observed.status == 200
    assert observed.response_headers == [(b"content-type", b"text/event-stream; charset=utf-8")]
    assert (observed.request_size, observed.response_size) == (len(REQUEST_BODY), len(SSE_BODY))
    assert observed.streamed is True
    assert before_ms <= observed.started_at_ms <= after_ms
    assert (observed.payload_request, observed.payload_response) == (None, None)
    assert 0 < exchange.received_ns <= exchange.first_byte_ns <= exchange.last_byte_ns

    figures = observed.figures
    assert figures.request_ms == (exchange.last_byte_ns - exchange.received_ns) // MS
    assert figures.proxy_ms == 50
    assert figures.gateway_ms == max(figures.request_ms - 50, 0)
    assert figures.time_to_first_token_ms == 20
    assert figures.time_per_token_ms == round(50 / 42, 3)
    assert (figures.prompt_tokens, figures.completion_tokens, figures.total_tokens) == (125, 42, 167)
    assert figures.cost == round((125 * 3.0 + 42 * 15.0) / 1e6, 8)


async def test_every_sink_gets_the_same_observation_once():
    sinks = [RecordingSink(), RecordingSink()]
    app = ObserveMiddleware(gateway([JSON_MESSAGE], b"application/json"), sinks=sinks)
    for _ in range(3):
        await call(app, scope_for(), [REQUEST_BODY])
    first, second = (sink.observed for sink in sinks)
    assert len(first) == len(second) == 3
    assert all(a is b for a, b in zip(first, second, strict=True))
    assert len({id(observed.exchange) for observed in first}) == 3  # one Exchange per request


async def test_the_figures_come_from_the_last_attempt():
    def failed_over(exchange) -> None:
        start = exchange.received_ns
        exchange.attempts.append(attempt(start + 1 * MS, 0, "the upstream provider did not answer in time"))
        exchange.attempts.append(attempt(start + 300 * MS, start + 330 * MS))
        exchange.first_token_ns = start + 310 * MS
        exchange.usage = Usage(input_tokens=10, output_tokens=3)

    sink = RecordingSink()
    await call(ObserveMiddleware(gateway([SSE_BODY], fill=failed_over), sinks=[sink]), scope_for(), [REQUEST_BODY])
    figures = sink.observed[0].figures
    assert (figures.proxy_ms, figures.time_to_first_token_ms, figures.time_per_token_ms) == (30, 10, 10.0)


@pytest.mark.parametrize(
    "fill",
    [
        pytest.param(None, id="no-attempt"),
        pytest.param(lambda exchange: exchange.attempts.append(attempt()), id="never-sent"),
        pytest.param(lambda exchange: exchange.attempts.append(attempt(exchange.received_ns, 0)), id="no-answer"),
    ],
)
async def test_figures_without_an_answer_are_zero(fill):
    sink = RecordingSink()
    await call(ObserveMiddleware(gateway([SSE_BODY], fill=fill), sinks=[sink]), scope_for(), [REQUEST_BODY])
    figures = sink.observed[0].figures
    assert (figures.proxy_ms, figures.time_to_first_token_ms, figures.time_per_token_ms) == (0, 0, 0)
    assert (figures.prompt_tokens, figures.completion_tokens, figures.cost) == (0, 0, 0)
    assert figures.gateway_ms == figures.request_ms


@pytest.mark.parametrize(
    "content_type, streamed",
    [(b"text/event-stream", True), (b"text/event-stream; charset=utf-8", True), (b"application/json", False)],
)
async def test_streamed_is_read_from_the_content_type(content_type, streamed):
    sink = RecordingSink()
    await call(ObserveMiddleware(gateway([b"x"], content_type), sinks=[sink]), scope_for(), [REQUEST_BODY])
    assert sink.observed[0].streamed is streamed


@pytest.mark.parametrize(
    "chunks, content_type",
    [
        ([*split_at(SSE_BODY, 1, 2, 3, 50, 90), b""], b"text/event-stream"),
        ([JSON_MESSAGE[:9], JSON_MESSAGE[9:]], b"application/json"),
        ([b"<html>", b"</html>"], b"text/html"),
    ],
)
async def test_client_bytes_identical_with_and_without_the_middleware(chunks, content_type):
    bare = await call(gateway(chunks, content_type), scope_for(), split_at(REQUEST_BODY, 4))
    observed = await call(
        ObserveMiddleware(gateway(chunks, content_type), sinks=[RecordingSink()], log_payloads=True),
        scope_for(),
        split_at(REQUEST_BODY, 4),
    )
    assert observed.messages == bare.messages
    assert len(observed.body_messages) == len(chunks)


@pytest.mark.parametrize("log_payloads", [False, True])
async def test_payloads_only_when_asked(log_payloads):
    sink = RecordingSink()
    app = ObserveMiddleware(gateway(split_at(SSE_BODY, 7)), sinks=[sink], log_payloads=log_payloads)
    await call(app, scope_for(), split_at(REQUEST_BODY, 5, 6))
    [observed] = sink.observed
    if log_payloads:
        assert (observed.payload_request, observed.payload_response) == (REQUEST_BODY, SSE_BODY)
    else:
        assert (observed.payload_request, observed.payload_response) == (None, None)


async def test_payloads_are_cut_at_the_limit():
    big_request = b"r" * (MAX_LOGGED_PAYLOAD + 10)
    big_response = b"a" * (MAX_LOGGED_PAYLOAD - 5) + b"b" * 20
    sink = RecordingSink()
    app = ObserveMiddleware(gateway(split_at(big_response, 100), b"application/json"), sinks=[sink], log_payloads=True)
    response = await call(app, scope_for(big_request), split_at(big_request, 1000, MAX_LOGGED_PAYLOAD - 1))
    assert response.body == big_response
    [observed] = sink.observed
    assert observed.payload_request == big_request[:MAX_LOGGED_PAYLOAD]
    assert observed.payload_response == big_response[:MAX_LOGGED_PAYLOAD]
    assert (observed.request_size, observed.response_size) == (len(big_request), len(big_response))


async def test_an_unexpected_failure_is_answered_500_recorded_and_logged_in_one_line(caplog):
    """Issue 8, finding 10: the outermost catch-all answers in Anthropic's shape, with one
    log line and no traceback a client could have printed at will."""

    def boom(exchange) -> None:  # raised in this module: the log line names where
        raise RuntimeError("boom")

    sink = RecordingSink()
    app = ObserveMiddleware(gateway([], fill=boom), sinks=[sink])
    response = await call(app, scope_for(), [REQUEST_BODY])
    assert response.status == 500
    assert json.loads(response.body) == {
        "type": "error",
        "error": {"type": "api_error", "message": "internal gateway error"},
    }
    [observed] = sink.observed
    assert observed.status == 500 and observed.response_size == len(response.body)
    assert observed.exchange.error == "RuntimeError in the gateway"
    assert observed.request_size == len(REQUEST_BODY)
    [record] = [r for r in caplog.records if r.name == "aimw.observe"]
    assert record.getMessage().startswith("unexpected failure in the gateway: RuntimeError at test_observe.py:")
    assert record.exc_info is None


async def test_a_failure_after_the_answer_started_propagates():
    sink = RecordingSink()
    app = ObserveMiddleware(InnerApp(headers=(), chunks=[], error=RuntimeError("late")), sinks=[sink])
    with pytest.raises(RuntimeError, match="late"):
        await call(app, scope_for(), [REQUEST_BODY])
    assert sink.observed[0].status == 200 and sink.observed[0].exchange.error == "RuntimeError in the gateway"


async def test_the_reason_recorded_below_is_kept_over_the_exception():
    sink = RecordingSink()
    app = ObserveMiddleware(
        gateway([], fill=lambda exchange: exchange.fail("upstream timed out"), error=RuntimeError("boom")), sinks=[sink]
    )
    await call(app, scope_for(), [REQUEST_BODY])
    assert sink.observed[0].exchange.error == "upstream timed out"


async def test_a_client_that_left_mid_stream_is_still_observed():
    left_mid_stream = InnerApp(headers=[(b"content-type", b"text/event-stream")], chunks=[SSE_BODY[:40]], finish=False)
    sink = RecordingSink()
    scope = scope_for()
    await call(ObserveMiddleware(left_mid_stream, sinks=[sink]), scope, [REQUEST_BODY])
    [observed] = sink.observed
    assert observed.response_size == 40
    assert observed.exchange.first_byte_ns > 0
    assert observed.exchange.last_byte_ns == 0  # the body never ended
    assert observed.figures.request_ms >= 0


async def test_lifespan_passes_through_and_emits_nothing():
    inner = InnerApp()
    sink = RecordingSink()
    await ObserveMiddleware(inner, sinks=[sink])({"type": "lifespan"}, ScriptedReceive(), RecordingSend())
    assert [scope["type"] for scope in inner.scopes] == ["lifespan"]
    assert sink.observed == []


# ---------------------------------------------------------------- clients that leave


class LeavingClient:
    """The stack below Observe as it behaves when the client leaves at some point: it reads
    the body as the real layers do (returning when the client left during it), sends
    ``start`` and ``chunks`` (the last ending the body with ``finish``), then waits for the
    client's ``http.disconnect`` as the upstream app's departure watch does (and records the
    failure it would). With ``after`` it then raises that exception."""

    def __init__(self, start=None, chunks=(), *, finish=False, after=None) -> None:
        self.start = start
        self.chunks = list(chunks)
        self.finish = finish
        self.after = after
        self.disconnects = 0

    async def __call__(self, scope, receive, send) -> None:
        try:
            await read_body(receive, 1 << 20)
        except ClientDisconnected:
            return
        if self.start is not None:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", self.start)]})
        for index, chunk in enumerate(self.chunks):
            more = not (self.finish and index == len(self.chunks) - 1)
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
        message = await receive()
        assert message["type"] == "http.disconnect"
        self.disconnects += 1
        exchange_of(scope).fail("client closed request")  # what UpstreamApp records, without knowing when
        if self.after is not None:
            raise self.after


async def leave(inner: LeavingClient, chunks=(REQUEST_BODY,), *, complete=True):
    sink = RecordingSink()
    scope = scope_for()
    send = RecordingSend()
    receive = ScriptedReceive(chunks, disconnect_now=True, complete=complete)
    await ObserveMiddleware(inner, sinks=[sink])(scope, receive, send)
    [observed] = sink.observed
    return observed, send


async def test_a_client_that_leaves_during_its_upload_is_logged_as_499():
    observed, send = await leave(LeavingClient(), [REQUEST_BODY[:30]], complete=False)
    assert observed.status == 499
    assert observed.exchange.client_closed == "upload"
    assert observed.exchange.error == "client closed request during upload (after 30 bytes of its body)"
    assert observed.request_size == 30
    assert send.messages == []  # nobody to answer


async def test_a_client_that_leaves_while_the_provider_thinks_is_logged_as_499():
    inner = LeavingClient()
    observed, send = await leave(inner)
    assert inner.disconnects == 1
    assert observed.status == 499
    assert observed.exchange.client_closed == "waiting"
    assert observed.exchange.error == "client closed request while waiting for the provider"  # not the layer's
    assert observed.response_headers == []
    assert send.messages == []


async def test_a_client_that_leaves_mid_stream_is_logged_as_499_with_what_it_got():
    observed, send = await leave(LeavingClient(b"text/event-stream", [SSE_BODY[:40]]))
    assert send.status == 200  # what went out is untouched
    assert observed.status == 499
    assert observed.exchange.client_closed == "stream"
    assert observed.exchange.error == "client closed request mid-stream (after HTTP 200 and 40 bytes)"
    assert observed.response_headers == [(b"content-type", b"text/event-stream")]
    assert (observed.response_size, observed.streamed) == (40, True)


async def test_a_client_that_leaves_during_a_json_answer_is_logged_as_499():
    observed, _ = await leave(LeavingClient(b"application/json", [JSON_MESSAGE[:10]]))
    assert observed.status == 499
    assert observed.exchange.client_closed == "answer"
    assert observed.exchange.error == "client closed request during the answer (after HTTP 200 and 10 bytes)"


async def test_a_client_that_leaves_after_the_last_byte_is_no_departure():
    observed, send = await leave(LeavingClient(b"application/json", [JSON_MESSAGE], finish=True))
    assert send.complete
    assert observed.status == 200
    assert observed.exchange.client_closed is None
    assert observed.exchange.error == "client closed request"  # only what the layer below said


@pytest.mark.parametrize("after", [asyncio.CancelledError(), RuntimeError("boom")])
async def test_a_departure_that_ends_in_an_exception_is_still_one_499_line(after):
    sink = RecordingSink()
    app = ObserveMiddleware(LeavingClient(b"text/event-stream", [SSE_BODY[:40]], after=after), sinks=[sink])
    with pytest.raises(type(after)):
        await call(app, scope_for(), [REQUEST_BODY])
    [observed] = sink.observed
    assert observed.status == 499
    assert observed.exchange.error.startswith("client closed request mid-stream")


async def test_a_departure_while_nothing_was_answered_and_the_gateway_failed_is_499():
    sink = RecordingSink()
    app = ObserveMiddleware(LeavingClient(after=RuntimeError("boom")), sinks=[sink])
    await call(app, scope_for(), [REQUEST_BODY])  # the 500 it answers goes nowhere
    [observed] = sink.observed
    assert observed.status == 499
    assert observed.exchange.error == "client closed request while waiting for the provider"
