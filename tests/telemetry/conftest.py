"""OpenTelemetry's global providers for the tests, set once per session (the API allows one
global provider per process): spans kept in memory, metrics read on demand as deltas."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass
class Recorded:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def histograms(self) -> dict[str, list]:
        """Metric name -> its data points since the last call."""
        data = self.metrics.get_metrics_data()
        found: dict[str, list] = {}
        for resource_metrics in data.resource_metrics if data is not None else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


_GLOBAL: Recorded | None = None


def _installed() -> Recorded:
    global _GLOBAL
    if _GLOBAL is None:
        spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        reader = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _GLOBAL = Recorded(spans, reader)
    return _GLOBAL


@pytest.fixture
def otel(monkeypatch) -> Recorded:
    """OpenTelemetry on (AIMW_OTEL=1) with the in-memory providers, emptied for this test."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIMW_OTEL", "1")
    recorded = _installed()
    recorded.spans.clear()
    recorded.histograms()
    return recorded
