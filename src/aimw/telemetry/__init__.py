"""OpenTelemetry for aimw (the optional extra ``aimw[otel]``): GenAI traces and metrics.

:func:`traced` puts aimw.middleware.tracing's TracingMiddleware over an app when
OpenTelemetry is configured (aimw.telemetry.setup says when), and returns the app itself
otherwise: off, nothing is added and aimw imports nothing of OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Mapping

from aimw.telemetry.setup import otel_enabled, providers
from aimw.types import ASGIApp

__all__ = ["otel_enabled", "traced"]


def traced(app: ASGIApp, *, log_payloads: bool = False, environ: Mapping[str, str] | None = None) -> ASGIApp:
    """``app`` under a TracingMiddleware when OpenTelemetry is on, else ``app`` itself.

    ``log_payloads`` (AIMW_LOG_PAYLOADS): the request and response bodies go on the exchange's
    span too, as they go to the log. ``environ``: the variables to read (default os.environ).

    Raises:
        ConfigurationError: OpenTelemetry is configured but the ``otel`` extra is missing, or
            its variables are malformed (aimw.telemetry.setup.providers).
    """
    if not otel_enabled(environ):
        return app
    tracer_provider, meter_provider = providers(environ)
    from aimw.middleware.tracing import TracingMiddleware

    return TracingMiddleware(
        app, tracer_provider=tracer_provider, meter_provider=meter_provider, log_payloads=log_payloads
    )
