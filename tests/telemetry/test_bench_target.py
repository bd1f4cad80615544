"""The bench's aimw-otel target: its command starts bench.otlp_sink with the gateway and
points the standard OTLP variable at it, and the sink accepts what the SDK's real OTLP/HTTP
exporters send (so the benchmark measures exporting, never failed retries)."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import anyio
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bench import otlp_sink
from bench.targets import TARGETS, RunContext

pytestmark = pytest.mark.anyio


def test_the_target_starts_the_sink_and_exports_to_it(tmp_path: Path):
    context = RunContext(python="/venv/bin/python", raw_dir=tmp_path, upstream_url="http://127.0.0.1:9", chunks=8)
    spec = TARGETS["aimw-otel"].build(context, 8001, 2, "stream-c32-w2.aimw-otel")
    endpoint = spec.env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    sink_port = endpoint.rsplit(":", 1)[1]
    assert endpoint == f"http://127.0.0.1:{sink_port}"
    assert spec.argv[:2] == ["sh", "-c"]
    script = spec.argv[2]
    assert f"/venv/bin/python -m bench.otlp_sink --port {sink_port} >" in script
    assert script.endswith(f"exec {shlex.join(['/venv/bin/python', '-m', 'hypercorn', 'recipes.huggingface:app'])}"
                           " --bind 127.0.0.1:8001 --workers 2 --backlog 2048")  # fmt: skip
    assert TARGETS["aimw-otel"].multiworker and TARGETS["aimw-otel"].api == "anthropic"


async def test_the_sink_accepts_the_sdk_exports():
    server = await asyncio.start_server(otlp_sink.serve_connection, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer_provider.get_tracer("test").start_span("chat m").end()
    reader = InMemoryMetricReader()
    MeterProvider(metric_readers=[reader]).get_meter("test").create_histogram("h").record(1.0)
    async with server:
        span_result = await anyio.to_thread.run_sync(
            OTLPSpanExporter(endpoint=f"{url}/v1/traces").export, spans.get_finished_spans()
        )
        metric_result = await anyio.to_thread.run_sync(
            OTLPMetricExporter(endpoint=f"{url}/v1/metrics").export, reader.get_metrics_data()
        )
    assert span_result == SpanExportResult.SUCCESS
    assert metric_result == MetricExportResult.SUCCESS
