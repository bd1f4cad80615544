"""A recording OTLP/HTTP receiver on loopback (a threaded HTTP server), as an OpenTelemetry
Collector's otlphttp receiver takes them: ``POST /v1/traces`` and ``POST /v1/metrics`` with
``Content-Type: application/x-protobuf`` bodies (ExportTraceServiceRequest /
ExportMetricsServiceRequest, decoded with opentelemetry-proto), answered ``200`` with an
empty response message (OTLP specification, "OTLP/HTTP"). Anything else is a violation,
answered 404 / 415."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

_MESSAGES = {"/v1/traces": ExportTraceServiceRequest, "/v1/metrics": ExportMetricsServiceRequest}


class OTLPReceiver:
    """Use as a context manager; ``spans()`` and ``metrics()`` are what arrived so far."""

    def __init__(self) -> None:
        self.traces: list[ExportTraceServiceRequest] = []
        self.metric_exports: list[ExportMetricsServiceRequest] = []
        self.violations: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._receive(self)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def spans(self) -> list[tuple[dict[str, str], Span]]:
        """(resource attributes, span) of every span received."""
        with self._lock:
            return [
                (_strings(resource_spans.resource.attributes), span)
                for export in self.traces
                for resource_spans in export.resource_spans
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans
            ]

    def metrics(self) -> list[Metric]:
        with self._lock:
            return [
                metric
                for export in self.metric_exports
                for resource_metrics in export.resource_metrics
                for scope_metrics in resource_metrics.scope_metrics
                for metric in scope_metrics.metrics
            ]

    def _receive(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
        if handler.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        message_type = _MESSAGES.get(handler.path)
        problem = None
        if message_type is None:
            problem, status = f"unexpected path {handler.path!r}", 404
        elif handler.headers.get("Content-Type") != "application/x-protobuf":
            problem, status = f"unexpected content type {handler.headers.get('Content-Type')!r}", 415
        else:
            message = message_type.FromString(body)
            with self._lock:
                (self.traces if handler.path == "/v1/traces" else self.metric_exports).append(message)
            status = 200
        if problem is not None:
            with self._lock:
                self.violations.append(problem)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/x-protobuf")
        handler.send_header("Content-Length", "0")
        handler.end_headers()


def _strings(attributes) -> dict[str, str]:
    return {attribute.key: attribute.value.string_value for attribute in attributes}


def attributes_of(span: Span) -> dict[str, object]:
    """A span's attributes as Python values (strings, ints, bools, lists of strings)."""
    out: dict[str, object] = {}
    for attribute in span.attributes:
        value = attribute.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            out[attribute.key] = [item.string_value for item in value.array_value.values]
        else:
            out[attribute.key] = getattr(value, kind)
    return out
