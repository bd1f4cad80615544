"""UpstreamApp: the terminal ASGI app that sends the request to the provider and streams
the answer back.

One pooled httpx transport per app, opened at lifespan startup (or on the first request
when the server runs no lifespan) and closed at shutdown: by default httpx-aiohttp's
``AiohttpTransport`` (aiohttp's connection pool behind httpx's transport API), which
``bench/`` measured at 5x the stream throughput of httpx's own pool; requests go straight
to the transport, with none of AsyncClient's cookie, redirect or auth layers (a gateway
must not keep one user's cookies for the next). The request body is streamed out and the
response streamed back read by read, asking for ``Accept-Encoding: identity`` so bytes
pass unchanged. When the client disconnects, the upstream request is cancelled and its
connection closed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import urllib.request
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from aimw.asgi import ClientDisconnected, body_chunks, send_error
from aimw.errors import GatewayError
from aimw.exchange import Exchange, exchange_of
from aimw.types import Message, Receive, Scope, Send

logger = logging.getLogger("aimw.upstream")

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
# Hop-by-hop fields; date/server, which the serving gateway sets itself; cookies.
_NOT_RELAYED_RESPONSE_HEADERS = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"upgrade",
        b"trailer",
        b"proxy-connection",
        b"date",
        b"server",
        b"set-cookie",  # a provider's cookies are the gateway's business, never its clients'
    )
)


class UpstreamStreamError(GatewayError):
    """The provider's event stream broke off after it had started (502 api_error;
    SSERewriteMiddleware ends the client's stream with ``event: error``)."""

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

    Errors (Anthropic shape): a request target that is not a path -> 400; unreachable
    provider -> 502 api_error; no answer within ``timeout`` -> 504 timeout_error. An event
    stream that breaks off raises :class:`UpstreamStreamError` (SSERewriteMiddleware turns it
    into ``event: error``); any other answer that breaks off just ends, cut, with
    ``exchange.error`` saying so. When the client disconnects (after sending its body), the
    upstream call is cancelled, whether it is still waiting for the answer or relaying it.
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
        self.given_transport = transport
        self.transport: httpx.AsyncBaseTransport | None = None
        self._timeouts = {"connect": min(timeout, 30.0), "read": timeout, "write": timeout, "pool": timeout}

    def open_transport(self) -> httpx.AsyncBaseTransport:
        """The transport that carries requests upstream (opened once, shared by all requests)."""
        self.transport = self.given_transport or AiohttpTransport(
            limits=httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections),
            proxy=environment_proxy(self.base_url),
        )
        return self.transport

    async def close_transport(self) -> None:
        if self.transport is not None:
            await self.transport.aclose()
            self.transport = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.forward(scope, receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.open_transport()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close_transport()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = self.transport or self.open_transport()
        exchange = exchange_of(scope)
        exchange.provider_name = exchange.provider_name or self.provider_name
        path = self._path(scope)
        if not path.startswith("/"):  # "@host/…" or "http://host/…" would change the host
            await send_error(send, GatewayError(400, "the request target must be a path starting with /"))
            return
        url = self.base_url + path
        exchange.upstream_uri = url
        exchange.tried_targets.append(url)
        query = scope.get("query_string", b"")
        headers = [(name, value) for name, value in scope["headers"] if name.lower() not in _HOP_BY_HOP]
        headers.append((b"accept-encoding", b"identity"))
        body_sent = asyncio.Event()
        has_body = _has_body(scope["headers"])
        request = httpx.Request(
            scope["method"],
            url + ("?" + query.decode("latin-1") if query else ""),
            headers=headers,
            content=_request_body(receive, body_sent) if has_body else None,
            extensions={"timeout": self._timeouts},
        )
        if not has_body:
            body_sent.set()
        exchange.upstream_sent_ns = time.monotonic_ns()
        # One plain asyncio task per request watches for the client's departure (aiohttp ties
        # aimw to asyncio anyway; an anyio task group cost 23 % of the non-stream throughput).
        this_task = asyncio.current_task()
        departure = _ClientDeparture()
        watcher = asyncio.get_running_loop().create_task(
            departure.watch(receive, body_sent, this_task, exchange)
        )
        try:
            await self._call_upstream(transport, request, send, exchange)
        except asyncio.CancelledError:
            if not departure.cancelled_us:
                raise
            this_task.uncancel()  # our own cancellation: the client is gone, nothing to answer
        finally:
            watcher.cancel()

    def _path(self, scope: Scope) -> str:
        raw_path = scope.get("raw_path")  # as the client sent it, percent-encoding kept
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        if self.api_root:
            root = path.find(self.api_root)
            if root > 0:
                path = path[root:]
        return path

    async def _call_upstream(self, transport: httpx.AsyncBaseTransport, request: httpx.Request, send: Send, exchange: Exchange) -> None:
        try:
            response = await transport.handle_async_request(request)
        except (httpx.HTTPError, aiohttp.ClientError) as exc:
            await self._answer_failure(exc, send, exchange)
            return
        try:
            await self._relay(response, send, exchange)
        finally:
            await asyncio.shield(response.aclose())  # even when the client's departure cancelled us

    async def _answer_failure(self, exc: Exception, send: Send, exchange: Exchange) -> None:
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

    async def _relay(self, response: httpx.Response, send: Send, exchange: Exchange) -> None:
        # httpx keeps the provider's spelling; ASGI wants lower-case names (and the middlewares match on them).
        headers = [
            (name, value)
            for name, value in ((name.lower(), value) for name, value in response.headers.raw)
            if name not in _NOT_RELAYED_RESPONSE_HEADERS
        ]
        model_header = f"{exchange.provider_name}/{exchange.request_model}"
        if exchange.request_model and model_header.isascii() and model_header.isprintable():
            headers.append((b"x-aimw-llm-model", model_header.encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        try:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (httpx.HTTPError, aiohttp.ClientError) as exc:
            exchange.upstream_last_byte_ns = time.monotonic_ns()
            message = f"the upstream provider's answer broke off ({type(exc).__name__})"
            if (response.headers.get("content-type") or "").startswith("text/event-stream"):
                raise UpstreamStreamError(message) from exc
            exchange.error = message  # nothing can be said inside a JSON body: it ends here, cut
            logger.warning("%s", message)
        exchange.upstream_last_byte_ns = exchange.upstream_last_byte_ns or time.monotonic_ns()
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


async def _request_body(receive: Receive, body_sent: asyncio.Event) -> AsyncIterator[bytes]:
    async for chunk in body_chunks(receive):
        yield chunk
    body_sent.set()


class _ClientDeparture:
    """Cancels the request's task when the client goes: from the end of its body (before,
    the body's reader gets the disconnect) until the answer's last byte."""

    __slots__ = ("cancelled_us",)

    def __init__(self) -> None:
        self.cancelled_us = False

    async def watch(self, receive: Receive, body_sent: asyncio.Event, task: asyncio.Task, exchange: Exchange) -> None:
        await body_sent.wait()
        message: Message = await receive()
        while message["type"] != "http.disconnect":
            message = await receive()
        if not exchange.upstream_last_byte_ns:  # gone before the answer was complete
            exchange.error = exchange.error or "client disconnected"
            self.cancelled_us = True
            task.cancel()
