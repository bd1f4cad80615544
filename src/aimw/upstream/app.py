"""UpstreamApp: the terminal ASGI app that sends the request to the provider and streams the
answer back, recording one :class:`~aimw.exchange.Attempt` per call."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx

from aimw.asgi import ClientDisconnected, body_chunks
from aimw.errors import GatewayError
from aimw.exchange import Attempt, Exchange, exchange_of
from aimw.types import Headers, Receive, Scope, Send
from aimw.upstream.departure import ClientDeparture
from aimw.upstream.failures import UpstreamFailure, mapped_transport_errors
from aimw.upstream.relay import relay
from aimw.upstream.transport import DEFAULT_MAX_CONNECTIONS, UpstreamTransport

DEFAULT_TIMEOUT = 600.0  # seconds between two reads: long generations stream for minutes
MAX_CONNECT_TIMEOUT = 30.0  # seconds

# RFC 9110 §7.6.1 hop-by-hop fields, plus what the transport computes itself.
_HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"accept-encoding",
    )
)
_DEFAULT_PORTS = {"https": 443, "http": 80}


class UpstreamApp:
    """Forward each HTTP request to ``base_url`` + the scope's raw path and query.

    Args:
        base_url: scheme://host[:port] of the provider (or AIMW_UPSTREAM_URL).
        provider_name: Kong's provider name, for the attempt record and the
            ``x-aimw-llm-model: <provider>/<model>`` response header.
        timeout: seconds allowed between two reads (and to connect, at most 30 s).
        max_connections: size of the keep-alive pool.
        transport: an httpx transport to use instead of the default AiohttpTransport.
        api_root: when set (e.g. ``"/v1/"``), the forwarded path starts at its first
            occurrence, dropping a client-side prefix (``/x/v1/messages`` -> ``/v1/messages``).
        route_type: Kong's route type for the attempt record.

    The body streams out and the answer streams back, asking for ``Accept-Encoding:
    identity`` so bytes pass unchanged; when the client leaves (after sending its body) the
    call is cancelled and its connection closed, whether the provider is still thinking or
    the answer is being relayed.

    Raises:
        GatewayError: 400 when the request target is not a path (``@host/x`` would change the host).
        UpstreamUnreachable / UpstreamTimeout: before any response message was sent.
        UpstreamBrokeOff: after ``http.response.start`` was sent.
    """

    def __init__(
        self,
        base_url: str,
        *,
        provider_name: str = "upstream",
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        transport: httpx.AsyncBaseTransport | None = None,
        api_root: str | None = None,
        route_type: str = "llm/v1/chat",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.provider_name = provider_name
        self.api_root = api_root
        self.route_type = route_type
        self.transport = UpstreamTransport(self.base_url, max_connections=max_connections, transport=transport)
        self._timeouts = {
            "connect": min(timeout, MAX_CONNECT_TIMEOUT),
            "read": timeout,
            "write": timeout,
            "pool": timeout,
        }
        parts = urlsplit(self.base_url)
        self._scheme = parts.scheme
        self._host = parts.hostname or ""
        self._port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
        self._ip = _ip_literal(self._host)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.transport.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.forward(scope, receive, send)

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = exchange_of(scope)
        path = _forwarded_path(scope, self.api_root)
        if not path.startswith("/"):
            raise GatewayError(400, "the request target must be a path starting with /")
        query: bytes = scope.get("query_string", b"")
        attempt = self._attempt(exchange, path, query)
        headers: Headers = [(name, value) for name, value in scope["headers"] if name.lower() not in _HOP_BY_HOP]
        headers.append((b"accept-encoding", b"identity"))
        body_sent = asyncio.Event()
        has_body = any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])
        request = httpx.Request(  # RFC 9112 §6.3: a body only with content-length or transfer-encoding
            scope["method"],
            self.base_url + path + ("?" + query.decode("latin-1") if query else ""),
            headers=headers,
            content=_request_body(receive, body_sent) if has_body else None,
            extensions={"timeout": self._timeouts},
        )
        if not has_body:
            body_sent.set()
        model_header = f"{self.provider_name}/{exchange.request_model}" if exchange.request_model else None
        attempt.sent_ns = time.monotonic_ns()
        async with ClientDeparture(receive, body_sent, attempt) as departure:
            try:
                await self._call(request, send, attempt, model_header)
            except UpstreamFailure as failure:
                attempt.failure = failure.reason
                raise
            except ClientDisconnected:  # gone while its body was being sent: nobody to answer
                departure.cancelled_us = True
        if departure.cancelled_us:
            attempt.failure = "client disconnected"
            exchange.fail("client disconnected")

    async def _call(self, request: httpx.Request, send: Send, attempt: Attempt, model_header: str | None) -> None:
        with mapped_transport_errors(answer_started=False):
            response = await self.transport.get().handle_async_request(request)
        try:
            await relay(response, send, attempt, model_header)
        finally:
            await asyncio.shield(response.aclose())  # even when the client's departure cancelled us

    def _attempt(self, exchange: Exchange, path: str, query: bytes) -> Attempt:
        exchange.provider_name = self.provider_name
        attempt = Attempt(
            provider=self.provider_name,
            model=exchange.request_model,
            upstream_scheme=self._scheme,
            host=self._host,
            port=self._port,
            upstream_uri=path,
            upstream_query=query.decode("latin-1"),
            route_type=self.route_type,
            ip=self._ip,
        )
        exchange.attempts.append(attempt)
        return attempt


def _forwarded_path(scope: Scope, api_root: str | None) -> str:
    """The raw path as the client sent it (percent-encoding kept), from ``api_root`` on."""
    raw_path: bytes | None = scope.get("raw_path")
    path: str = raw_path.decode("latin-1") if raw_path else scope["path"]
    if api_root:
        root = path.find(api_root)
        if root > 0:
            path = path[root:]
    return path


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


async def _request_body(receive: Receive, body_sent: asyncio.Event) -> AsyncIterator[bytes]:
    async for chunk in body_chunks(receive):
        yield chunk
    body_sent.set()
