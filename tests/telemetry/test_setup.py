"""aimw.telemetry's switch and set-up: when OpenTelemetry is on, the error that names the
extra when its packages are missing, malformed exporter choices."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aimw.gateway import passthrough_gateway
from aimw.providers.anthropic import ANTHROPIC
from aimw.settings import ConfigurationError, Settings
from aimw.telemetry import otel_enabled, traced
from tests.shared_data import REPO


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"AIMW_OTEL": "1"}, True),
        ({"AIMW_OTEL": "true"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://collector:4318/v1/metrics"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
        ({"OTEL_SERVICE_NAME": "gateway"}, False),  # naming the service exports nothing
        ({"AIMW_OTEL": "0", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "AIMW_OTEL": "1"}, True),  # asked for by name
    ],
)
def test_when_opentelemetry_is_on(environ, on):
    assert otel_enabled(environ) is on


def test_a_malformed_switch_is_refused():
    with pytest.raises(ConfigurationError, match="AIMW_OTEL must be 0 or 1"):
        otel_enabled({"AIMW_OTEL": "maybe"})


def test_off_the_app_itself_is_returned():
    def app(scope, receive, send):  # never called
        raise AssertionError

    assert traced(app, environ={}) is app


def test_configured_without_the_extra_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    settings = Settings(log_path=str(tmp_path / "aimw.log"))
    with pytest.raises(
        ConfigurationError, match=r"packages are missing \(opentelemetry\.sdk\.trace\): pip install 'aimw\[otel\]'"
    ):
        passthrough_gateway(ANTHROPIC, settings, secret=None)


SET_UP = "from aimw.telemetry.setup import providers; providers()"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER: unknown exporter 'zipkin' (otlp, console or none)"),
        ({"OTEL_METRICS_EXPORTER": "otlp,prometheus"}, "OTEL_METRICS_EXPORTER: unknown exporter 'prometheus'"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTLP over gRPC is not shipped"),
    ],
)
def test_exporters_aimw_cannot_build_stop_the_start(environ, message):
    """In a fresh process (the SDK's global providers can be set once per process)."""
    env = {"PATH": "/usr/bin:/bin", "AIMW_OTEL": "1", **environ}
    done = subprocess.run(
        [sys.executable, "-c", SET_UP], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert message in done.stderr
