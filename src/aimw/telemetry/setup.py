"""Whether OpenTelemetry is on, and its tracer and meter providers (OpenTelemetry Python SDK,
configured from the standard ``OTEL_*`` environment variables).

On when ``AIMW_OTEL=1``, or when any of ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``,
``OTEL_TRACES_EXPORTER`` or ``OTEL_METRICS_EXPORTER`` (other than ``none``) is set;
``AIMW_OTEL=0`` or ``OTEL_SDK_DISABLED=true`` keeps it off whatever else is set. Off, no
layer is added and aimw imports nothing of OpenTelemetry.

On, the providers are the application's own when it configured the SDK already (e.g. under
``opentelemetry-instrument``); otherwise aimw builds them and makes them the global ones:
``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (comma-separated: ``otlp``, the
default, ``console``, ``none``) pick the exporters, OTLP over HTTP/protobuf (the SDK's
exporters read ``OTEL_EXPORTER_OTLP_*``: endpoint, default http://localhost:4318, headers,
timeout, compression); spans go through a BatchSpanProcessor (``OTEL_BSP_*``), metrics
through a PeriodicExportingMetricReader (``OTEL_METRIC_EXPORT_INTERVAL``, ms); the resource
comes from ``OTEL_SERVICE_NAME`` (default ``aimw``) and ``OTEL_RESOURCE_ATTRIBUTES``; the
sampler from ``OTEL_TRACES_SAMPLER``. Both providers flush at process exit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aimw.settings import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

INSTALL_HINT = "pip install 'aimw[otel]'"
DEFAULT_SERVICE_NAME = "aimw"
_TRUE = frozenset(("1", "true", "yes", "on"))
_FALSE = frozenset(("0", "false", "no", "off"))
_ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
_EXPORTER_CHOICES = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER")


def otel_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether OpenTelemetry is on (see the module docstring).

    Raises:
        ConfigurationError: AIMW_OTEL is neither 0/1 (false/true, no/yes, off/on).
    """
    env = os.environ if environ is None else environ
    flag = env.get("AIMW_OTEL", "").strip().lower()
    if flag in _TRUE:
        return True
    if flag in _FALSE:
        return False
    if flag:
        raise ConfigurationError(f"aimw: AIMW_OTEL must be 0 or 1, got {flag!r}")
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if any(env.get(name, "").strip() for name in _ENDPOINTS):
        return True
    return any(_names(env.get(name, "")) - {"none"} for name in _EXPORTER_CHOICES)


def providers(environ: Mapping[str, str] | None = None) -> tuple[TracerProvider, MeterProvider]:
    """The SDK's global tracer and meter providers, built from ``environ`` and installed when
    the application has not configured its own.

    Raises:
        ConfigurationError: the ``otel`` extra is not installed (naming ``pip install
            'aimw[otel]'``); an unknown exporter name; OTLP over gRPC asked for (aimw ships
            the HTTP/protobuf exporter).
    """
    env = os.environ if environ is None else environ
    try:
        return _installed(env)
    except ImportError as exc:
        raise ConfigurationError(
            f"aimw: OpenTelemetry is configured (AIMW_OTEL / OTEL_*) but its packages are missing "
            f"({exc.name}): {INSTALL_HINT}"
        ) from None


def _installed(env: Mapping[str, str]) -> tuple[TracerProvider, MeterProvider]:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tracer_provider = trace.get_tracer_provider()
    if not isinstance(tracer_provider, TracerProvider):
        resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
        tracer_provider = TracerProvider(resource=resource)
        for span_exporter in _span_exporters(env):
            tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        trace.set_tracer_provider(tracer_provider)
    meter_provider = metrics.get_meter_provider()
    if not isinstance(meter_provider, MeterProvider):
        readers = [PeriodicExportingMetricReader(exporter) for exporter in _metric_exporters(env)]
        meter_provider = MeterProvider(metric_readers=readers, resource=tracer_provider.resource)
        metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def _names(value: str) -> set[str]:
    return {name.strip().lower() for name in value.split(",") if name.strip()}


def _exporter_names(env: Mapping[str, str], signal: str) -> list[str]:
    """The exporters OTEL_<signal>_EXPORTER names (otlp when unset), none left out.

    Raises:
        ConfigurationError: an unknown name; OTLP over gRPC.
    """
    variable = f"OTEL_{signal}_EXPORTER"
    names = _names(env.get(variable, "")) or {"otlp"}
    unknown = names - {"otlp", "console", "none"}
    if unknown:
        raise ConfigurationError(f"aimw: {variable}: unknown exporter {sorted(unknown)[0]!r} (otlp, console or none)")
    protocol = env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    if "otlp" in names and protocol.strip().lower() == "grpc":
        raise ConfigurationError(
            "aimw: OTLP over gRPC is not shipped: set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (port 4318), "
            "or configure the SDK yourself (opentelemetry-instrument) and aimw uses it"
        )
    return sorted(names - {"none"})


def _span_exporters(env: Mapping[str, str]) -> list[SpanExporter]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return [
        ConsoleSpanExporter() if name == "console" else OTLPSpanExporter() for name in _exporter_names(env, "TRACES")
    ]


def _metric_exporters(env: Mapping[str, str]) -> list[MetricExporter]:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

    return [
        ConsoleMetricExporter() if name == "console" else OTLPMetricExporter()
        for name in _exporter_names(env, "METRICS")
    ]
