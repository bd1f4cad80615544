"""UpstreamApp: the terminal ASGI app that sends the request to the provider and streams
the answer back.

One pooled httpx transport per app, opened at lifespan startup (or on the first request
when the server runs no lifespan) and closed at shutdown: by default httpx-aiohttp's
``AiohttpTransport`` (aiohttp's connection pool behind httpx's transport API), which
``bench/`` measured at 5x the stream throughput of httpx's own pool; requests go straight
to the transport, with none of AsyncClient's cookie, redirect or auth layers (a gateway
must not keep one user's cookies for the next). The request body is streamed out and the
response streamed back read by read, asking for ``Accept-Encoding: identity`` so bytes
pass unchanged. When the client disconnects during an event stream, the upstream request
is cancelled and its connection closed.
"""

from __future__ import annotations

import ipaddress
import time
import urllib.request
from urllib.parse import urlsplit

import aiohttp
import anyio
import httpx
from httpx_aiohttp import AiohttpTransport

from aimw.asgi import ClientDisconnected, body_chunks, send_error
from aimw.errors import GatewayError
from aimw.exchange import exchange_of
from aimw.types import Message, Receive, Scope, Send

# RFC 9110 §7.6.1 hop-by-hop fields, plus what httpx computes itself.
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
# Hop-by-hop fields, and date/server, which the serving gateway sets itself.
_NOT_RELAYED_RESPONSE_HEADERS = frozenset(
    (b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"trailer", b"proxy-connection", b"date", b"server")
)


class UpstreamStreamError(GatewayError):
    """The provider's response failed after it had started: 502 api_error when nothing has
    reached the client yet (a buffered answer), ``event: error`` on a rewritten stream."""

    def __init__(self, message: str) -> None:
        super().__init__(502, message, "api_error")


class UpstreamApp:
    """Forward each HTTP request to ``base_url`` + the scope's path and query.

    Args:
        base_url: scheme://host[:port] of the provider (or AIMW_UPSTREAM_URL).
        provider_name: for the ``x-aimw-llm-model: <provider>/<model>`` response header
            (Kong's X-Kong-LLM-Model) and the log.
        timeout: seconds allowed between two reads (and to connect, at most 30 s).
        max_connections: size of the keep-alive pool.
        transport: an httpx transport to use instead of the default AiohttpTransport
            (``httpx.AsyncHTTPTransport()``, or the demo's in-process emulator).
        api_root: when set (e.g. ``"/v1/"``), the forwarded path starts at its first
            occurrence, dropping a client-side prefix (``/anything/v1/messages`` ->
            ``/v1/messages``); for providers reached without TranslateMiddleware.

    Errors (Anthropic shape): unreachable provider -> 502 api_error; no answer within
    ``timeout`` -> 504 timeout_error. A failure after the response started raises
    :class:`UpstreamStreamError` (SSERewriteMiddleware turns it into ``event: error``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        provider_name: str = "upstream",
        timeout: float = 600.0,
        max_connections: int = 512,
        transport: httpx.AsyncBaseTransport | None = None,
        api_root: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_root = api_root
        self.provider_name = provider_name
        self.timeout = timeout
        self.max_connections = max_connections
        self.transport = transport
        self.client: httpx.AsyncBaseTransport | None = None
        self._timeouts = {"connect": min(timeout, 30.0), "read": timeout, "write": timeout, "pool": timeout}

    def open_client(self) -> httpx.AsyncBaseTransport:
        """The transport that carries requests upstream (opened once, shared by all requests)."""
        self.client = self.transport or AiohttpTransport(
            limits=httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections),
            proxy=environment_proxy(self.base_url),
        )
        return self.client

    async def close_client(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.forward(scope, receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.open_client()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close_client()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.client or self.open_client()
        exchange = exchange_of(scope)
        exchange.provider_name = exchange.provider_name or self.provider_name
        raw_path = scope.get("raw_path")  # as the client sent it, percent-encoding kept
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        if self.api_root:
            root = path.find(self.api_root)
            if root > 0:
                path = path[root:]
        url = self.base_url + path
        exchange.upstream_uri = url
        exchange.tried_targets.append(url)
        query = scope.get("query_string", b"")
        headers = [(name, value) for name, value in scope["headers"] if name.lower() not in _HOP_BY_HOP]
        headers.append((b"accept-encoding", b"identity"))
        request = httpx.Request(
            scope["method"],
            url + ("?" + query.decode("latin-1") if query else ""),
            headers=headers,
            content=body_chunks(receive) if _has_body(scope["headers"]) else None,
            extensions={"timeout": self._timeouts},
        )
        exchange.upstream_sent_ns = time.monotonic_ns()
        try:
            response = await client.handle_async_request(request)
        except (httpx.HTTPError, aiohttp.ClientError) as exc:
            await self._answer_failure(exc, send, exchange)
            return
        try:
            if (response.headers.get("content-type") or "").startswith("text/event-stream"):
                await self._relay_watching(response, receive, send, exchange)
            else:  # a JSON answer is already generated: it arrives at once
                await self._relay(response, send, exchange)
        finally:
            await response.aclose()

    async def _answer_failure(self, exc: Exception, send: Send, exchange) -> None:
        """Answer a request the upstream never answered: 504 past the timeout, 502 otherwise;
        nothing when the client itself went away while its body was being sent."""
        causes = _causes(exc)
        if any(isinstance(cause, ClientDisconnected) for cause in causes):
            exchange.error = exchange.error or "client disconnected"
        elif any(isinstance(cause, TimeoutError) for cause in causes) or (
            isinstance(exc, httpx.TimeoutException) and not any(isinstance(c, aiohttp.ClientError) for c in causes)
        ):
            exchange.error = "upstream timed out"
            await send_error(send, GatewayError(504, "the upstream provider did not answer in time", "timeout_error"))
        else:
            name = type(causes[-1]).__name__
            exchange.error = f"upstream unreachable: {name}"
            await send_error(send, GatewayError(502, f"the upstream provider is unreachable ({name})", "api_error"))

    async def _relay_watching(self, response: httpx.Response, receive: Receive, send: Send, exchange) -> None:
        """_relay, cancelled when the client disconnects (a stream may run for minutes)."""
        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(_cancel_on_disconnect, receive, task_group.cancel_scope, exchange)
                await self._relay(response, send, exchange)
                task_group.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # anyio wraps even a single failure; callers want it bare
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    async def _relay(self, response: httpx.Response, send: Send, exchange) -> None:
        # httpx keeps the provider's spelling; ASGI wants lower-case names (and the middlewares match on them).
        headers = [
            (name, value)
            for name, value in ((name.lower(), value) for name, value in response.headers.raw)
            if name not in _NOT_RELAYED_RESPONSE_HEADERS
        ]
        if exchange.request_model:
            headers.append((b"x-aimw-llm-model", f"{exchange.provider_name}/{exchange.request_model}".encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        try:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (httpx.HTTPError, aiohttp.ClientError) as exc:
            exchange.upstream_last_byte_ns = time.monotonic_ns()
            raise UpstreamStreamError(f"the upstream provider's answer broke off ({type(exc).__name__})") from exc
        exchange.upstream_last_byte_ns = time.monotonic_ns()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def environment_proxy(url: str) -> httpx.Proxy | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY`` / ``HTTP_PROXY`` /
    ``ALL_PROXY``, minus ``NO_PROXY`` hosts), as httpx's own client would use; None if none,
    and always None for this machine's loopback (a proxy elsewhere cannot reach it)."""
    host = urlsplit(url).hostname
    if host is None or _is_loopback(host) or urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(urlsplit(url).scheme) or proxies.get("all")
    return httpx.Proxy(proxy) if proxy else None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it, outermost first (httpx-aiohttp re-raises aiohttp's errors
    as httpx ones, not always the closest kind: the original tells the real story)."""
    chain = [exc]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and cause not in chain:
        chain.append(cause)
    return chain


def _has_body(headers) -> bool:
    """RFC 9112 §6.3: a request has a body only with content-length or transfer-encoding."""
    return any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in headers)


async def _cancel_on_disconnect(receive: Receive, cancel_scope: anyio.CancelScope, exchange) -> None:
    message: Message = await receive()
    while message["type"] != "http.disconnect":
        message = await receive()
    if not exchange.upstream_last_byte_ns:  # gone before the answer was complete
        exchange.error = exchange.error or "client disconnected"
        cancel_scope.cancel()
