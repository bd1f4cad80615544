"""TracingMiddleware through the real gateway stacks (aimw.gateway) in front of the fake
Anthropic API on loopback (a real HTTP server checking what the API checks), with the SDK's
in-memory span exporter and metric reader: the GenAI attributes, the exchange span continuing
the client's traceparent, one child span per attempt whose id the provider got as its
parent, error.type, payloads only when asked, and nothing at all when OpenTelemetry is off."""

from __future__ import annotations

import json
import re
import socket
import threading

import anyio
import pytest
import yaml
from opentelemetry.trace import SpanKind, StatusCode

from aimw.config import load_config
from aimw.gateway import config_gateway, passthrough_gateway
from aimw.middleware.tracing import TracingMiddleware
from aimw.providers.anthropic import ANTHROPIC
from aimw.settings import Settings
from aimw.upstream import UpstreamApp
from tests.asgi_helpers import RecordingSend, ScriptedReceive, http_scope, split_at
from tests.fakes.anthropic_server import (
    FakeAnthropicServer,
    anthropic_error,
    capture_bytes,
    capture_stream,
    message_reply,
    stream_reply,
    text_events,
)

pytestmark = pytest.mark.anyio

GUARD = 10  # seconds: a hang guard only
PROVIDER_KEY = "sk-ant-gateway-key-0001"
MODEL = "claude-sonnet-4-5-20250929"
CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"
TRACEPARENT_FORMAT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")  # W3C Trace Context


def body(*, stream: bool = False, model: str = MODEL, **fields) -> bytes:
    request = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "What is 1 + 1?"}]}
    return json.dumps({**request, "stream": stream, **fields}).encode()


def headers(*extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"anthropic-version", b"2023-06-01"), *extra]


async def post(app, data: bytes, request_headers=None) -> RecordingSend:
    scope = http_scope("POST", "/v1/messages", headers=request_headers or headers(), body=data)
    send = RecordingSend()
    with anyio.fail_after(GUARD):
        await app(scope, ScriptedReceive(split_at(data, 5)), send)
    return send


def upstream_apps(app) -> list[UpstreamApp]:
    """Every UpstreamApp in ``app``'s stack (through Failover's legs)."""
    found, pending = [], [app]
    while pending:
        layer = pending.pop()
        if isinstance(layer, UpstreamApp):
            found.append(layer)
        pending.extend(leg.app for leg in getattr(layer, "legs", ()))
        if hasattr(layer, "app"):
            pending.append(layer.app)
    return found


def layers(app) -> list[object]:
    out = []
    while app is not None:
        out.append(app)
        app = getattr(app, "app", None)
    return out


async def closed(app) -> None:
    for upstream in upstream_apps(app):
        await upstream.transport.close()


@pytest.fixture
def anthropic():
    with FakeAnthropicServer(PROVIDER_KEY) as server:
        yield server
    assert server.violations == []


def passthrough(server: FakeAnthropicServer, tmp_path, **environ: str):
    settings = Settings.from_env(
        {"AIMW_UPSTREAM_URL": server.url, "AIMW_LOG_PATH": str(tmp_path / "aimw.log"), **environ}
    )
    return passthrough_gateway(ANTHROPIC, settings, secret=PROVIDER_KEY)


def by_kind(spans, kind: SpanKind):
    return [span for span in spans if span.kind == kind]


# ---------------------------------------------------------------- off


async def test_off_no_layer_is_added_and_nothing_is_recorded(anthropic, tmp_path, monkeypatch, request):
    recorded = request.getfixturevalue("otel")  # the providers exist: only the switch is off
    monkeypatch.setenv("AIMW_OTEL", "0")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # AIMW_OTEL=0 wins
    anthropic.enqueue(message_reply("2"))
    app = passthrough(anthropic, tmp_path)
    answer = await post(app, body(), headers((b"traceparent", TRACEPARENT.encode())))
    await closed(app)

    assert answer.status == 200
    assert not any(isinstance(layer, TracingMiddleware) for layer in layers(app))
    assert recorded.finished() == []
    assert recorded.histograms() == {}
    (sent,) = anthropic.requests
    assert "traceparent" not in sent.headers  # the client's is not on the allowlist; none is added


# ---------------------------------------------------------------- spans


async def test_a_stream_is_one_server_span_continuing_the_client_trace_and_one_client_span(anthropic, tmp_path, otel):
    anthropic.enqueue(capture_stream())
    app = passthrough(anthropic, tmp_path)
    answer = await post(app, body(stream=True), headers((b"traceparent", TRACEPARENT.encode())))
    await closed(app)
    assert answer.status == 200 and answer.complete

    spans = otel.finished()
    (exchange,) = by_kind(spans, SpanKind.SERVER)
    (attempt,) = by_kind(spans, SpanKind.CLIENT)
    assert len(spans) == 2
    assert exchange.name == f"chat {MODEL}"
    assert format(exchange.context.trace_id, "032x") == CLIENT_TRACE_ID
    assert format(exchange.parent.span_id, "016x") == CLIENT_SPAN_ID and exchange.parent.is_remote
    assert attempt.parent.span_id == exchange.context.span_id
    assert attempt.context.trace_id == exchange.context.trace_id
    # the captured stream: claude-2.1, 15 input and 9 output tokens, stop_reason end_turn
    capture = capture_bytes()
    message_id = re.search(rb'"id":"(msg_[^"]+)"', capture).group(1).decode()
    assert dict(exchange.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": MODEL,
        "gen_ai.request.stream": True,
        "gen_ai.response.model": "claude-2.1",
        "gen_ai.response.id": message_id,
        "gen_ai.response.finish_reasons": ("end_turn",),
        "gen_ai.usage.input_tokens": 15,
        "gen_ai.usage.output_tokens": 9,
        "server.address": "127.0.0.1",
        "server.port": anthropic.port,
        "http.response.status_code": 200,
    }
    assert exchange.status.status_code == StatusCode.UNSET
    assert attempt.name == f"chat {MODEL}"
    assert dict(attempt.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": MODEL,
        "server.address": "127.0.0.1",
        "server.port": anthropic.port,
        "http.response.status_code": 200,
    }
    assert exchange.start_time <= attempt.start_time < attempt.end_time <= exchange.end_time


async def test_the_provider_gets_a_traceparent_naming_the_attempt_span(anthropic, tmp_path, otel):
    anthropic.enqueue(message_reply("2"), message_reply("3"))
    app = passthrough(anthropic, tmp_path)
    await post(app, body(), headers((b"traceparent", TRACEPARENT.encode()), (b"tracestate", b"vendor=1")))
    await post(app, body())  # no traceparent from the client: a new trace
    await closed(app)

    first, second = anthropic.requests
    attempts = by_kind(otel.finished(), SpanKind.CLIENT)
    for sent, attempt in zip((first, second), attempts, strict=True):
        trace_id, parent_id = TRACEPARENT_FORMAT.fullmatch(sent.headers["traceparent"]).groups()
        assert trace_id == format(attempt.context.trace_id, "032x")
        assert parent_id == format(attempt.context.span_id, "016x")
    assert first.headers["traceparent"].split("-")[1] == CLIENT_TRACE_ID
    assert first.headers["tracestate"] == "vendor=1"
    assert second.headers["traceparent"].split("-")[1] != CLIENT_TRACE_ID
    (root,) = [span for span in by_kind(otel.finished(), SpanKind.SERVER) if span.parent is None]
    assert attempts[1].parent.span_id == root.context.span_id


async def test_a_json_answer_has_its_id_and_stop_reason(anthropic, tmp_path, otel):
    anthropic.enqueue(message_reply("2", input_tokens=26, output_tokens=3))
    app = passthrough(anthropic, tmp_path)
    answer = await post(app, body())
    await closed(app)

    (exchange,) = by_kind(otel.finished(), SpanKind.SERVER)
    attributes = exchange.attributes
    assert attributes["gen_ai.response.id"] == answer.json()["id"]
    assert attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert attributes["gen_ai.request.stream"] is False
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (26, 3)
    assert exchange.parent is None


async def test_a_provider_error_sets_error_type_on_both_spans(anthropic, tmp_path, otel):
    anthropic.enqueue(anthropic_error(429, "rate_limit_error", "Number of requests has exceeded your rate limit"))
    app = passthrough(anthropic, tmp_path)
    answer = await post(app, body(stream=True))
    await closed(app)
    assert answer.status == 429

    (exchange,) = by_kind(otel.finished(), SpanKind.SERVER)
    (attempt,) = by_kind(otel.finished(), SpanKind.CLIENT)
    assert exchange.attributes["error.type"] == "rate_limit_error"
    assert exchange.attributes["http.response.status_code"] == 429
    assert exchange.status.status_code == StatusCode.ERROR
    assert "gen_ai.response.finish_reasons" not in exchange.attributes
    assert attempt.attributes["error.type"] == "429"
    assert attempt.status.status_code == StatusCode.ERROR


async def test_an_unreachable_provider_is_error_type_unreachable(tmp_path, otel):
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        settings = Settings.from_env({"AIMW_UPSTREAM_URL": url, "AIMW_LOG_PATH": str(tmp_path / "aimw.log")})
        app = passthrough_gateway(ANTHROPIC, settings, secret=PROVIDER_KEY)
        answer = await post(app, body())
        await closed(app)
    assert answer.status == 502

    (exchange,) = by_kind(otel.finished(), SpanKind.SERVER)
    (attempt,) = by_kind(otel.finished(), SpanKind.CLIENT)
    assert exchange.attributes["error.type"] == attempt.attributes["error.type"] == "unreachable"
    assert "http.response.status_code" not in attempt.attributes


async def test_failover_gives_one_child_span_per_attempt(tmp_path, otel):
    with FakeAnthropicServer(PROVIDER_KEY) as primary, FakeAnthropicServer(PROVIDER_KEY) as secondary:
        primary.enqueue(anthropic_error(500, "api_error", "Internal server error"))
        secondary.enqueue(message_reply("from the secondary", model="claude-secondary"))
        target = {"auth": {"header_name": "x-api-key", "header_value": PROVIDER_KEY}}
        config = {
            "llm_format": "anthropic",
            "balancer": {"algorithm": "priority", "failover_criteria": ["http_500", "non_idempotent"]},
            "targets": [
                {**target, "weight": 100, "model": {"provider": "anthropic", "options": {"upstream_url": primary.url}}},
                {
                    **target,
                    "weight": 50,
                    "model": {"provider": "anthropic", "options": {"upstream_url": secondary.url}},
                },
            ],
        }
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        app = config_gateway(load_config(str(path), {}), Settings(log_path=str(tmp_path / "aimw.log")))
        answer = await post(app, body())
        await closed(app)
        assert answer.status == 200, answer.body
        sent = [request.headers["traceparent"] for request in (*primary.requests, *secondary.requests)]
        ports = (primary.port, secondary.port)

    spans = otel.finished()
    (exchange,) = by_kind(spans, SpanKind.SERVER)
    first, second = sorted(by_kind(spans, SpanKind.CLIENT), key=lambda span: span.start_time)
    assert {first.parent.span_id, second.parent.span_id} == {exchange.context.span_id}
    assert (first.attributes["server.port"], second.attributes["server.port"]) == ports
    assert first.attributes["error.type"] == "500" and "error.type" not in second.attributes
    assert first.end_time <= second.start_time
    assert [TRACEPARENT_FORMAT.fullmatch(value).group(2) for value in sent] == [
        format(first.context.span_id, "016x"),
        format(second.context.span_id, "016x"),
    ]
    assert exchange.attributes["server.port"] == ports[1]
    assert exchange.attributes["gen_ai.response.model"] == "claude-secondary"
    assert "error.type" not in exchange.attributes


# ---------------------------------------------------------------- payloads


async def test_payloads_are_recorded_only_with_aimw_log_payloads(anthropic, tmp_path, otel):
    anthropic.enqueue(message_reply("private answer"), message_reply("private answer"))
    quiet = passthrough(anthropic, tmp_path)
    await post(quiet, body())
    await closed(quiet)
    (silent,) = by_kind(otel.finished(), SpanKind.SERVER)
    assert silent.events == ()
    assert "private" not in json.dumps(dict(silent.attributes))
    otel.spans.clear()

    logging_app = passthrough(anthropic, tmp_path, AIMW_LOG_PAYLOADS="1")
    request_body = body()
    answer = await post(logging_app, request_body)
    await closed(logging_app)
    (logged,) = by_kind(otel.finished(), SpanKind.SERVER)
    prompt, completion = logged.events
    assert (prompt.name, completion.name) == ("gen_ai.content.prompt", "gen_ai.content.completion")
    assert json.loads(prompt.attributes["gen_ai.prompt"]) == json.loads(request_body)
    assert completion.attributes["gen_ai.completion"] == answer.body.decode()


# ---------------------------------------------------------------- metrics


async def test_the_genai_metrics_of_a_stream_and_of_an_error(anthropic, tmp_path, otel):
    anthropic.enqueue(capture_stream(), anthropic_error(529, "overloaded_error", "Overloaded"))
    app = passthrough(anthropic, tmp_path)
    await post(app, body(stream=True))
    await post(app, body())
    await closed(app)

    histograms = otel.histograms()
    tokens = {point.attributes["gen_ai.token.type"]: point for point in histograms["gen_ai.client.token.usage"]}
    assert (tokens["input"].sum, tokens["output"].sum) == (15, 9)
    assert tokens["input"].attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": "claude-2.1",
        "server.address": "127.0.0.1",
        "server.port": anthropic.port,
        "gen_ai.token.type": "input",
    }
    assert tokens["input"].explicit_bounds[:3] == (1, 4, 16)
    durations = {point.attributes.get("error.type"): point for point in histograms["gen_ai.server.request.duration"]}
    assert set(durations) == {None, "overloaded_error"}
    assert all(point.count == 1 and point.sum > 0 for point in durations.values())
    assert [point.count for point in histograms["gen_ai.client.operation.duration"]] == [1, 1]
    (first_token,) = histograms["gen_ai.server.time_to_first_token"]  # successful answers only
    assert first_token.count == 1 and 0 < first_token.sum <= durations[None].sum
    (per_token,) = histograms["gen_ai.server.time_per_output_token"]
    assert per_token.count == 1 and per_token.explicit_bounds[0] == 0.01


async def test_a_client_that_leaves_mid_stream_is_error_type_client_closed(anthropic, tmp_path, otel):
    gate = threading.Event()
    events = text_events()
    anthropic.enqueue(stream_reply([*events[:2], gate, *events[2:]]))
    app = passthrough(anthropic, tmp_path)
    data = body(stream=True)
    receive, send = ScriptedReceive([data]), RecordingSend()
    try:
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as group:
                group.start_soon(app, http_scope("POST", "/v1/messages", headers=headers(), body=data), receive, send)
                await send.first_body.wait()
                receive.release()  # the client goes while the provider holds the rest
    finally:
        gate.set()
        await closed(app)

    (exchange,) = by_kind(otel.finished(), SpanKind.SERVER)
    (attempt,) = by_kind(otel.finished(), SpanKind.CLIENT)
    assert exchange.attributes["error.type"] == attempt.attributes["error.type"] == "client_closed"
    assert exchange.attributes["http.response.status_code"] == 200  # what went out before it left


async def test_a_client_trace_not_sampled_records_metrics_and_propagates_but_exports_no_span(anthropic, tmp_path, otel):
    anthropic.enqueue(message_reply("2"))
    app = passthrough(anthropic, tmp_path)
    unsampled = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-00"  # the default sampler follows the parent's flag
    answer = await post(app, body(), headers((b"traceparent", unsampled.encode())))
    await closed(app)

    assert answer.status == 200
    assert otel.finished() == []
    (sent,) = anthropic.requests
    trace_id, _ = TRACEPARENT_FORMAT.fullmatch(sent.headers["traceparent"]).groups()
    assert trace_id == CLIENT_TRACE_ID and sent.headers["traceparent"].endswith("-00")
    assert [point.count for point in otel.histograms()["gen_ai.server.request.duration"]] == [1]
