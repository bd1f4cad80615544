"""MetricsEndpoint: where Prometheus reads the gateway's metrics (aimw.sinks.prometheus lists
them), and the count of event streams in flight.

With metrics on (AIMW_METRICS=1, or AIMW_METRICS_BIND) it is the outermost layer, above
MemoryRelease and Observe; with metrics off it is not in the stack at all and prometheus-client
is not even imported (:func:`metrics_from_env` returns None).

- AIMW_METRICS=1: ``GET /metrics`` is answered here, in Prometheus' text format or OpenMetrics
  as the scraper's Accept header asks; it is never forwarded upstream, never logged as an
  exchange, and not subject to ClientGuard's Host check (a scraper names the gateway by any
  address). Anyone who reaches the port can read it: keep the port private, or use
  AIMW_METRICS_BIND. Every other request goes on unchanged.
- AIMW_METRICS_BIND=host:port: the metrics on a listener of their own instead (a thread in each
  worker serving prometheus-client's WSGI exposition), opened at lifespan startup and closed
  at shutdown; ``/metrics`` on the gateway's port is then 404, as with metrics off. With
  PROMETHEUS_MULTIPROC_DIR every worker listens on that port (SO_REUSEPORT) and whichever the
  kernel picks answers for all workers. Without it the port opens once: a second worker fails
  to start, saying why (its numbers would only be its own).
- Several Hypercorn workers: set PROMETHEUS_MULTIPROC_DIR (a directory for this gateway alone)
  in the environment before Hypercorn starts: prometheus-client's multiprocess mode, so that one
  scrape sums every worker (aimw.sinks.prometheus_files: the directory's clean-up at start is
  aimw's; no wipe is needed before Hypercorn starts). A worker shutting down takes its streams
  in flight out of the sums. Without it each worker counts alone and a scrape reads whichever
  worker took the connection.

Per HTTP request it costs one wrapped ``send`` (one call per response message, to see an
event stream start: ``aimw_streams_in_flight``); the counting itself is the sink's, once per
exchange.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from aimw.asgi import header_value, send_body
from aimw.settings import ConfigurationError, optional_env
from aimw.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from aimw.sinks.prometheus import PrometheusSink

METRICS_PATH = "/metrics"
# One sink per process in multiprocess mode (prometheus-client's files are the process's, one
# value per metric and labels): every gateway the process builds counts into it. Without the
# directory each gateway has its own.
_PROCESS_SINKS: dict[str, PrometheusSink] = {}


@dataclass(frozen=True, slots=True)
class Metrics:
    """The metrics of one gateway: the ``sink`` for ObserveMiddleware, and how they are read:
    ``serve`` on the gateway's ``GET /metrics``, or on the ``bind`` (host, port) listener."""

    sink: PrometheusSink
    serve: bool
    bind: tuple[str, int] | None

    def around(self, app: ASGIApp) -> MetricsEndpoint:
        """The MetricsEndpoint layer over ``app`` (the gateway with the sink in its Observe)."""
        return MetricsEndpoint(app, self.sink, serve=self.serve, bind=self.bind)


def metrics_from_env(environ: Mapping[str, str] = os.environ) -> Metrics | None:
    """The metrics AIMW_METRICS / AIMW_METRICS_BIND ask for, None when off (module docstring).

    Raises:
        ConfigurationError: AIMW_METRICS is not 0 or 1; AIMW_METRICS_BIND is not host:port;
            the PROMETHEUS_MULTIPROC_DIR directory cannot be created or read, or was not in
            the environment when prometheus-client was imported.
    """
    flag = optional_env("AIMW_METRICS", environ)
    if flag not in (None, "0", "1"):
        raise ConfigurationError(f"aimw: AIMW_METRICS must be 0 or 1, got {flag!r}")
    bind = _bind(optional_env("AIMW_METRICS_BIND", environ))
    if flag != "1" and bind is None:
        return None
    from aimw.sinks.prometheus import PrometheusSink  # prometheus-client only when metrics are on
    from aimw.sinks.prometheus_files import MULTIPROCESS_VARIABLE

    directory = optional_env(MULTIPROCESS_VARIABLE, environ)
    if directory is None:
        return Metrics(PrometheusSink(), serve=bind is None, bind=bind)
    sink = _PROCESS_SINKS.get(directory)
    if sink is None:
        try:
            sink = _PROCESS_SINKS[directory] = PrometheusSink(multiprocess_directory=directory)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"aimw: {MULTIPROCESS_VARIABLE} {directory!r} cannot be used: {exc}") from None
    return Metrics(sink, serve=bind is None, bind=bind)


class MetricsEndpoint:
    """Answer ``GET /metrics`` (when ``serve``), open the ``bind`` listener for the app's
    lifespan, and tell ``sink`` when event streams start and end.

    Args:
        app: the gateway below (Observe holding ``sink`` among its sinks).
        sink: the PrometheusSink to read and to tell.
        serve: answer ``GET /metrics`` on the gateway's port.
        bind: (host, port) of a listener of the metrics' own, or None.
    """

    __slots__ = ("app", "bind", "listener", "serve", "sink")

    def __init__(
        self, app: ASGIApp, sink: PrometheusSink, *, serve: bool = True, bind: tuple[str, int] | None = None
    ) -> None:
        self.app = app
        self.sink = sink
        self.serve = serve
        self.bind = bind
        self.listener: WSGIServer | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if self.serve and scope["path"] == METRICS_PATH and scope["method"] == "GET":
                await self.scrape(scope, send)
            else:
                await self.counting_streams(scope, receive, send)
        elif kind == "lifespan":
            await self.app(scope, receive, self.lifespan_send(send))
        else:
            await self.app(scope, receive, send)

    async def scrape(self, scope: Scope, send: Send) -> None:
        """The exposition, built in a worker thread (the event loop goes on meanwhile)."""
        accept = (header_value(scope["headers"], b"accept") or b"").decode("latin-1")
        body, content_type = await asyncio.to_thread(self.sink.encode, accept)
        await send_body(send, 200, body, [(b"content-type", content_type.encode("latin-1"))])

    async def counting_streams(self, scope: Scope, receive: Receive, send: Send) -> None:
        sink = self.sink
        streaming = False

        async def watched(message: Message) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start" and _is_event_stream(message):
                streaming = True
                sink.stream_started()
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            if streaming:
                sink.stream_ended()

    def lifespan_send(self, send: Send) -> Send:
        """``send`` for the lifespan: the listener opens once the app has started (or the
        startup fails, saying why) and closes, with this worker's streams in flight taken out
        of the multiprocess sums, once the app has shut down."""

        async def sent(message: Message) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.complete" and self.bind is not None:
                problem = self.open_listener(self.bind)
                if problem is not None:
                    message = {"type": "lifespan.startup.failed", "message": problem}
            elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.close_listener()
                self.sink.close()
            await send(message)

        return sent

    def open_listener(self, bind: tuple[str, int]) -> str | None:
        """Serve the metrics on ``bind`` from a daemon thread; the reason it failed, or None."""
        host, port = bind
        shared = self.sink.multiprocess_directory is not None  # every worker answers for all: share the port
        server_class: type[_Listener] = type(
            "MetricsListener",
            (_Listener,),
            {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET, "allow_reuse_port": shared},
        )
        try:
            listener = make_server(host, port, self.sink.wsgi_app(), server_class, handler_class=_QuietHandler)
        except (OSError, ValueError) as exc:
            hint = "" if shared else " (with several workers set PROMETHEUS_MULTIPROC_DIR: each then answers for all)"
            return f"aimw: AIMW_METRICS_BIND {host}:{port} cannot be opened: {exc}{hint}"
        threading.Thread(target=listener.serve_forever, name="aimw-metrics", daemon=True).start()
        self.listener = listener
        return None

    async def close_listener(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            await asyncio.to_thread(listener.shutdown)  # waits for serve_forever's loop to stop
            listener.server_close()


class _Listener(ThreadingMixIn, WSGIServer):
    """wsgiref's server with a thread per scrape (prometheus-client's ThreadingWSGIServer)."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, message_format: str, *args: object) -> None:
        """Scrapes are not logged."""


def _is_event_stream(message: Message) -> bool:
    return any(
        name == b"content-type" and value.startswith(b"text/event-stream") for name, value in message.get("headers", ())
    )


def _bind(value: str | None) -> tuple[str, int] | None:
    """AIMW_METRICS_BIND's (host, port): ``127.0.0.1:9464``, ``[::1]:9464``, ``0.0.0.0:9464``."""
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(
            f"aimw: AIMW_METRICS_BIND must be host:port (127.0.0.1:9464, [::1]:9464), got {value!r}"
        )
    return host, int(port)
