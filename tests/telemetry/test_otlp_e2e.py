"""End to end: the Anthropic Python SDK -> Hypercorn serving recipes.anthropic:app (a real
process) with only the standard OTEL_* variables set -> the fake Anthropic API on loopback;
the spans and GenAI metrics arrive by OTLP/HTTP at a recording receiver on loopback
(tests/telemetry/otlp_receiver.py), in one trace with the client's traceparent."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.e2e.harness import GatewayProcess, sdk_client
from tests.fakes.anthropic_server import MODEL, FakeAnthropicServer, capture_stream, message_reply
from tests.telemetry.otlp_receiver import OTLPReceiver, attributes_of

pytestmark = pytest.mark.e2e

GATEWAY_KEY = "sk-ant-gateway-otel-0001"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
ARRIVAL_TIMEOUT = 20.0  # seconds: a hang guard while the batches come (not a speed assertion)
USER = [{"role": "user", "content": "What is 1 + 1?"}]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Iterator[tuple[GatewayProcess, FakeAnthropicServer, OTLPReceiver]]:
    with OTLPReceiver() as receiver, FakeAnthropicServer(GATEWAY_KEY) as fake:
        env = {
            "ANTHROPIC_API_KEY": GATEWAY_KEY,
            "AIMW_UPSTREAM_URL": fake.url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_SERVICE_NAME": "team-gateway",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms between span batches
            "OTEL_METRIC_EXPORT_INTERVAL": "300",  # ms between metric exports
        }
        gateway = GatewayProcess("recipes.anthropic:app", env, tmp_path_factory.mktemp("otel"))
        try:
            yield gateway.start(), fake, receiver
        finally:
            gateway.stop()


def arrived(receiver: OTLPReceiver, count: int) -> list[tuple[dict[str, str], Span]]:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while len(servers := [item for item in receiver.spans() if item[1].kind == Span.SPAN_KIND_SERVER]) < count:
        assert time.monotonic() < deadline, f"{len(servers)} exchange spans arrived, {count} expected"
        time.sleep(0.05)
    return receiver.spans()


def test_spans_and_metrics_reach_an_otlp_collector(setup):
    gateway, fake, receiver = setup
    fake.enqueue(capture_stream(), message_reply("2", input_tokens=26, output_tokens=3))
    traceparent = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    client = sdk_client(gateway.url, "otel")
    with client.messages.stream(model=MODEL, max_tokens=64, messages=USER, extra_headers=traceparent) as stream:
        streamed = stream.get_final_message()
    answered = client.messages.create(model=MODEL, max_tokens=64, messages=USER, extra_headers=traceparent)

    spans = arrived(receiver, 2)
    resources = {resource["service.name"] for resource, _ in spans}
    servers = [span for _, span in spans if span.kind == Span.SPAN_KIND_SERVER]
    clients = [span for _, span in spans if span.kind == Span.SPAN_KIND_CLIENT]
    assert resources == {"team-gateway"}
    assert len(clients) == 2 and receiver.violations == [] and fake.violations == []
    assert {span.trace_id.hex() for span in servers + clients} == {TRACE_ID}
    assert {span.parent_span_id.hex() for span in servers} == {PARENT_ID}
    assert {span.parent_span_id for span in clients} == {span.span_id for span in servers}
    sent = [request.headers["traceparent"].split("-")[2] for request in fake.requests]
    assert sorted(sent) == sorted(span.span_id.hex() for span in clients)
    by_id = {attributes_of(span).get("gen_ai.response.id"): attributes_of(span) for span in servers}
    stream_span, answer_span = by_id[streamed.id], by_id[answered.id]
    assert stream_span["gen_ai.request.stream"] is True and answer_span["gen_ai.request.stream"] is False
    assert (stream_span["gen_ai.usage.input_tokens"], stream_span["gen_ai.usage.output_tokens"]) == (15, 9)
    assert answer_span["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert {servers[0].name, servers[1].name} == {f"chat {MODEL}"}

    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while "gen_ai.client.token.usage" not in {metric.name for metric in receiver.metrics()}:
        assert time.monotonic() < deadline, "no GenAI metrics arrived"
        time.sleep(0.05)
    names = {metric.name for metric in receiver.metrics()}
    assert {"gen_ai.server.request.duration", "gen_ai.server.time_to_first_token"} <= names
    assert gateway.alive() and "Traceback" not in gateway.output()
