"""Small ASGI plumbing shared by the middlewares: the request body read once and bounded,
replaying it downstream, header edits, and answering with an Anthropic error.

Header lists are ASGI's ``list[tuple[bytes, bytes]]`` with lower-case names (ASGI spec,
"HTTP Connection Scope").
"""

from __future__ import annotations

from collections.abc import Iterable

from aimw.errors import GatewayError, error_body
from aimw.exchange import exchange_of
from aimw.types import Headers, Message, Receive, Scope, Send

JSON_HEADERS = ((b"content-type", b"application/json"),)
_NO_OPTIONS: frozenset[bytes] = frozenset()


async def read_body(receive: Receive, limit: int) -> bytes:
    """Read the whole request body (bytes), at most ``limit`` bytes.

    Raises:
        GatewayError: 413 request_too_large past ``limit``.
        ClientDisconnected: the client went away before the body was complete.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise GatewayError(413, f"request body is larger than the gateway's limit of {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def request_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, read from ``receive`` once per exchange (at most ``limit`` bytes) and
    kept at ``Exchange.request_body``; a layer further down gets the kept body, whatever its
    own limit, without reading again.

    Raises:
        GatewayError: 413 request_too_large past ``limit``.
        ClientDisconnected: the client went away before the body was complete.
    """
    exchange = exchange_of(scope)
    if exchange.request_body is None:
        exchange.request_body = await read_body(receive, limit)
    return exchange.request_body


class ClientDisconnected(Exception):
    """The client closed the connection while aimw was reading its request."""


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then defers to the original (for ``http.disconnect``).

    It keeps no reference to ``body`` once yielded: a long stream's frames must not pin
    its request (50 KB from Claude Code, 1,000 streams at once: README, "Reliability")."""
    pending = [body]

    async def replay() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return await receive()

    return replay


def with_headers(
    headers: Iterable[tuple[bytes, bytes]],
    drop: frozenset[bytes] = frozenset(),
    add: Iterable[tuple[bytes, bytes]] = (),
) -> Headers:
    """``headers`` without the (lower-case) names in ``drop``, followed by ``add``."""
    kept = [(name, value) for name, value in headers if name.lower() not in drop]
    kept.extend(add)
    return kept


def connection_options(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The field names the ``Connection`` header lists (lower-case; empty without one): they
    are hop-by-hop, for this connection only, and never go on (RFC 9110 §7.6.1)."""
    for name, _ in headers:
        if name == b"connection":
            break
    else:
        return _NO_OPTIONS  # the common case, without building a set
    return frozenset(
        token.strip().lower() for name, value in headers if name == b"connection" for token in value.split(b",")
    )


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case) or None."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


async def send_body(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = JSON_HEADERS
) -> None:
    """Send a complete response with a correct ``content-length``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_error(send: Send, error: GatewayError, extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Answer with ``error`` in Anthropic's error shape."""
    await send_body(send, error.status, error_body(error.error_type, error.message), [*JSON_HEADERS, *extra_headers])


async def answer_error(scope: Scope, send: Send, error: GatewayError) -> None:
    """Answer with ``error`` in Anthropic's shape and record it as the exchange's outcome."""
    exchange_of(scope).fail(f"{error.error_type}: {error.message}")
    await send_error(send, error)
