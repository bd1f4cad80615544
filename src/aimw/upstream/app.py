"""UpstreamApp: the terminal ASGI app that sends the request to the provider and streams the
answer back, recording one :class:`~aimw.exchange.Attempt` per call."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from urllib.parse import urlsplit

import httpx

from aimw.asgi import ClientDisconnected, connection_options, read_body
from aimw.errors import GatewayError
from aimw.exchange import Attempt, Exchange, exchange_of
from aimw.types import Headers, Receive, Scope, Send
from aimw.upstream.departure import CLIENT_CLOSED, ClientDeparture
from aimw.upstream.failures import UpstreamFailure, mapped_transport_errors
from aimw.upstream.pool import PoolSlots
from aimw.upstream.relay import relay
from aimw.upstream.transport import DEFAULT_MAX_CONNECTIONS, UpstreamTransport

DEFAULT_TIMEOUT = 600.0  # seconds between two reads: long generations stream for minutes
DEFAULT_POOL_TIMEOUT = 5.0  # seconds
DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024  # bytes
MAX_CONNECT_TIMEOUT = 30.0  # seconds

# RFC 9110 §7.6.1 hop-by-hop fields, the framing (the body is sent with its own length) and
# what the transport sets itself.
_NOT_FORWARDED = frozenset(
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
        b"content-length",
    )
)
_DEFAULT_PORTS = {"https": 443, "http": 80}
_MAX_CACHED_URLS = 256  # distinct upstream paths and queries kept parsed (then the cache restarts)
_BEFORE_ANSWER = mapped_transport_errors(answer_started=False)

ATTEMPT_HEADERS = "aimw.attempt_headers"
"""Scope key of an optional :data:`AttemptHeaders` hook, set by a layer above (the tracing
layer: ``traceparent`` naming the attempt's span). Absent, nothing is called."""
AttemptHeaders = Callable[[Attempt], Iterable[tuple[str, str]]]
"""Called once per attempt, after it is recorded and before its request is sent; returns the
headers (name, value) to set on that request, each replacing any of the same name."""


class UpstreamApp:
    """Forward each HTTP request to ``base_url`` + the scope's raw path and query.

    Args:
        base_url: scheme://host[:port] of the provider (or AIMW_UPSTREAM_URL).
        provider_name: Kong's provider name, for the attempt record and the
            ``x-aimw-llm-model: <provider>/<model>`` response header.
        timeout: seconds allowed between two reads (and to connect, at most 30 s).
        max_connections: size of the keep-alive pool.
        transport: an httpx transport to use instead of the default AiohttpTransport.
        route_type: Kong's route type for the attempt record.
        pool_timeout: seconds to wait for a free pool connection (then UpstreamBusy).
        max_body_size: request body limit (bytes); the layers above already bounded the
            client's, so this only guards the app used alone.
        model_header: send ``x-aimw-llm-model`` (Kong's ``model_name_header``).

    The body streams out and the answer streams back, asking for ``Accept-Encoding:
    identity`` so bytes pass unchanged; when the client leaves (after sending its body) the
    call is cancelled and its connection closed, whether the provider is still thinking or
    the answer is being relayed: the attempt's failure and the exchange's error say
    ``client closed request`` (ObserveMiddleware, above, logs when it left), and the app
    returns without raising (there is nobody to answer).

    Raises:
        GatewayError: 400 when the request target is not a path (``@host/x`` would change the host).
        UpstreamUnreachable / UpstreamTimeout / UpstreamBusy: before any response message was sent.
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
        route_type: str = "llm/v1/chat",
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        model_header: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_header = model_header
        self.max_body_size = max_body_size
        self._slots = PoolSlots(max_connections, pool_timeout)
        self.provider_name = provider_name
        self.route_type = route_type
        self.transport = UpstreamTransport(self.base_url, max_connections=max_connections, transport=transport)
        self._timeouts = _timeouts(timeout)
        parts = urlsplit(self.base_url)
        self._scheme = parts.scheme
        self._host = parts.hostname or ""
        self._port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
        self._ip = _ip_literal(self._host)
        self._requests = _Requests(self.base_url, self._timeouts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.transport.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.forward(scope, receive, send)

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = exchange_of(scope)
        path = _forwarded_path(scope)
        if not path.startswith("/"):
            raise GatewayError(400, "the request target must be a path starting with /")
        query: bytes = scope.get("query_string", b"")
        # RFC 9112 §6.3: a body only with content-length or transfer-encoding. It is read whole
        # before a connection is taken (a slow upload holds none), and sent with its own length.
        try:
            body = await read_body(receive, self.max_body_size) if _has_body(scope["headers"]) else None
        except ClientDisconnected:
            exchange.fail(CLIENT_CLOSED)
            return
        attempt = self._attempt(exchange, path, query)
        request = self._requests.build(scope, path + ("?" + attempt.upstream_query if query else ""), body)
        del body  # the request holds it; this frame must not pin it for the whole answer
        headers_for: AttemptHeaders | None = scope.get(ATTEMPT_HEADERS)
        if headers_for is not None:
            for name, value in headers_for(attempt):
                request.headers[name] = value
        model = exchange.request_model if self.model_header else None
        model_header = f"{self.provider_name}/{model}" if model else None
        async with ClientDeparture(receive, attempt) as departure:
            try:
                async with self._slots.one():
                    attempt.sent_ns = time.monotonic_ns()
                    await self._call(request, send, attempt, model_header)
            except UpstreamFailure as failure:
                attempt.failure, attempt.failure_kind = failure.reason, failure.kind
                raise
        if departure.cancelled_us:
            attempt.failure = CLIENT_CLOSED
            exchange.fail(CLIENT_CLOSED)

    async def _call(self, request: UpstreamRequest, send: Send, attempt: Attempt, model_header: str | None) -> None:
        with _BEFORE_ANSWER:
            response = await self.transport.get().handle_async_request(request)
        request.release_body()  # the transport holds what it still has to send
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


class _Requests:
    """Builds the upstream requests of one base URL as ``httpx.Request(method, url,
    headers=…, content=body)`` would (the same headers in the same order: ``Host`` first,
    ``Content-Length`` last), without httpx re-parsing the URL and re-scanning the headers
    each time."""

    __slots__ = ("base_url", "host_header", "timeouts", "urls")

    def __init__(self, base_url: str, timeouts: dict[str, float]) -> None:
        self.base_url = base_url
        self.timeouts = timeouts
        url = httpx.URL(base_url)
        self.host_header = (b"Host", url.netloc) if url.host else None  # as httpx would set it
        self.urls: dict[str, httpx.URL] = {}  # path and query -> parsed URL (bounded)

    def build(self, scope: Scope, target: str, body: bytes | None) -> UpstreamRequest:
        """The request for ``target`` (path and query) with the scope's forwarded headers."""
        url = self.urls.get(target)
        if url is None:
            if len(self.urls) >= _MAX_CACHED_URLS:
                self.urls.clear()
            url = self.urls[target] = httpx.URL(self.base_url + target)
        headers = forwarded_headers(scope["headers"])
        method: str = scope["method"]
        auto = [self.host_header] if self.host_header is not None else []
        if body:
            headers.append((b"Content-Length", b"%d" % len(body)))
        elif method.upper() in ("POST", "PUT", "PATCH"):
            auto.append((b"Content-Length", b"0"))
        if auto:
            headers[:0] = auto
        return UpstreamRequest(method, url, headers, body or b"", self.timeouts)


class UpstreamRequest(httpx.Request):
    """An httpx.Request whose body (bytes) is both its ``content`` (as ``content=`` would make
    it: httpx-aiohttp sends it with its length) and its ``stream`` (what other httpx transports
    read), and can be let go once the transport has it: the response keeps its request for as
    long as the answer streams, and a stream must not pin a request body (Claude Code's are
    ~50 KB; README, "Reliability")."""

    def __init__(self, method: str, url: httpx.URL, headers: Headers, body: bytes, timeouts: dict[str, float]) -> None:
        self.body = _RequestBody(body)
        super().__init__(method, url, headers=headers, stream=self.body, extensions={"timeout": timeouts})

    @property
    def content(self) -> bytes:
        return self.body.data

    def release_body(self) -> None:
        """Let the body go (``content`` and ``stream`` are then empty)."""
        self.body.data = b""


class _RequestBody(httpx.AsyncByteStream, httpx.SyncByteStream):
    """A request body as one chunk, that can be emptied."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


def _timeouts(timeout: float) -> dict[str, float]:
    """httpx's timeout extension (seconds): ``timeout`` between reads, at most 30 s to connect."""
    return {"connect": min(timeout, MAX_CONNECT_TIMEOUT), "read": timeout, "write": timeout, "pool": timeout}


def _forwarded_path(scope: Scope) -> str:
    """The raw path as the client sent it, percent-encoding kept (the routing layer above
    decided it: AnthropicEndpoints)."""
    raw_path: bytes | None = scope.get("raw_path")
    return raw_path.decode("latin-1") if raw_path else str(scope["path"])


def forwarded_headers(headers: Headers) -> Headers:
    """The request headers that go upstream: without hop-by-hop fields, framing, and the
    fields the client's ``Connection`` names (RFC 9110 §7.6.1), plus ``Accept-Encoding:
    identity`` so the answer's bytes pass unchanged."""
    named = connection_options(headers)
    dropped = _NOT_FORWARDED | named if named else _NOT_FORWARDED
    kept = [(name, value) for name, value in headers if name not in dropped]
    kept.append((b"accept-encoding", b"identity"))
    return kept


def _has_body(headers: Headers) -> bool:
    """RFC 9112 §6.3: whether a body comes (a plain loop: ``any()`` of a generator costs more)."""
    for name, _ in headers:
        if name == b"content-length" or name == b"transfer-encoding":
            break
    else:
        return False
    return True


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None
