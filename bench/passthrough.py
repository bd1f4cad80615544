"""A plain pass-through proxy on aimw's server stack: the floor of one Python hop.

Hypercorn + a pure ASGI app + one pooled httpx transport (httpx-aiohttp's AiohttpTransport,
aimw's default), like aimw's UpstreamApp but with no translation, no logging, no per-request
record: the request (body read whole) goes to ``BENCH_UPSTREAM_URL`` + path + query, the
response streams back read by read.

    BENCH_UPSTREAM_URL=http://127.0.0.1:9999 hypercorn bench.passthrough:app
"""

from __future__ import annotations

import os

import httpx
from httpx_aiohttp import AiohttpTransport

_HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade")
)
_NOT_FORWARDED = _HOP_BY_HOP | {b"host", b"content-length", b"accept-encoding"}
MAX_BODY_SIZE = 8 * 1024 * 1024  # bytes
_TIMEOUTS = {"connect": 30.0, "read": 600.0, "write": 600.0, "pool": 600.0}  # seconds
_NO_UPSTREAM = "bench.passthrough: set BENCH_UPSTREAM_URL to the upstream's http://host:port"


class PassThroughApp:
    """Forward every HTTP request to ``base_url`` unchanged (hop-by-hop fields aside).

    Args:
        base_url: scheme://host[:port] of the upstream.
        max_connections: size of the keep-alive pool.
    """

    def __init__(self, base_url: str, *, max_connections: int = 512) -> None:
        self.base_url = base_url.strip().rstrip("/")
        self.max_connections = max_connections
        self.client: httpx.AsyncBaseTransport | None = None

    def open_client(self) -> httpx.AsyncBaseTransport:
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
        self.client = AiohttpTransport(limits=limits)
        return self.client

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if not self.base_url.startswith(("http://", "https://")):
                        await send({"type": "lifespan.startup.failed", "message": _NO_UPSTREAM})
                        return
                    self.open_client()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.client is not None:
                        await self.client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "http":
            await self.forward(scope, receive, send)

    async def forward(self, scope, receive, send) -> None:
        client = self.client or self.open_client()
        body = await _read_body(receive)
        headers = [(name, value) for name, value in scope["headers"] if name.lower() not in _NOT_FORWARDED]
        headers.append((b"accept-encoding", b"identity"))
        query = scope.get("query_string", b"")
        url = self.base_url + scope["path"] + ("?" + query.decode("latin-1") if query else "")
        request = httpx.Request(scope["method"], url, headers=headers, content=body, extensions={"timeout": _TIMEOUTS})
        try:
            response = await client.handle_async_request(request)
        except Exception as exc:  # httpx's errors, or aiohttp's that httpx-aiohttp leaves as they are
            message = f"upstream unreachable: {type(exc).__name__}".encode()
            await send(
                {"type": "http.response.start", "status": 502, "headers": [(b"content-length", b"%d" % len(message))]}
            )
            await send({"type": "http.response.body", "body": message})
            return
        try:
            response_headers = [
                (name, value) for name, value in response.headers.raw if name.lower() not in _HOP_BY_HOP
            ]
            await send({"type": "http.response.start", "status": response.status_code, "headers": response_headers})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _read_body(receive) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_SIZE:
            raise ValueError(f"request body over {MAX_BODY_SIZE} bytes")
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


app = PassThroughApp(os.environ.get("BENCH_UPSTREAM_URL", ""))
