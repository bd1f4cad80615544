"""RateLimitMiddleware: token rate limits and budgets per consumer (Kong's
ai-rate-limiting-advanced), under the client-auth layer and above everything that reads a
request (DESIGN.md §1).

Before a request that may spend tokens (a ``POST`` other than ``count_tokens``), the
usage of its identifier is read in every window (aimw.rate_limiting): at or over a limit,
the answer is ``429 rate_limit_error`` with ``retry-after`` (whole seconds until every
window over its limit is under it again) and Kong's headers (``X-AI-RateLimit-Limit-<window>-
<provider>``, ``-Remaining-``, ``-Reset-``, ``-Retry-After-``, and ``X-AI-RateLimit-Reset``
/ ``-Retry-After``), and nothing goes upstream. Otherwise the request goes on and its
response carries the Limit and Remaining headers (as of before it; Kong's access-phase
figures). When the exchange is over, whatever its end (a stream's end, an error, the
client leaving mid-stream, a cancellation), the usage on its Exchange (``usage``, counted
by the layer that wrote the answer, or estimated for a stream cut short) is added to the
windows of the provider that answered.

Requests in flight are not counted until they end (as in Kong): N concurrent requests of
one identifier can each be admitted under the limit, so a window may end up over it by
what they used.
"""

from __future__ import annotations

import hashlib

from aimw.asgi import header_value, send_error
from aimw.errors import GatewayError
from aimw.exchange import Exchange, exchange_of
from aimw.rate_limiting.counters import Counters, CountersUnavailable
from aimw.rate_limiting.policy import Limits, judge
from aimw.types import ASGIApp, Headers, Message, Receive, Scope, Send

FREE_PATH_SUFFIX = "/count_tokens"  # counting tokens spends none: never refused
_BEARER = b"bearer "
_DIGEST_PREFIX = b"aimw:rl:"


class RateLimitMiddleware:
    """Refuse requests over their limits; count every exchange's usage.

    Args:
        app: the gateway below.
        limits: the compiled ``rate_limiting`` section (aimw.rate_limiting.Limits).
        counters: where usage is counted (LocalCounters, RedisCounters), opened and closed
            with the ASGI lifespan.

    Errors (Anthropic shape): 429 rate_limit_error over a limit; 529 overloaded_error, with
    ``retry-after``, while the shared counters are unreachable and the section says
    ``fail_closed`` (the gateway cannot tell whether the request is within its limits: a
    temporary unavailability, which aimw answers 529 everywhere, and Anthropic's clients
    back off on).
    """

    def __init__(self, app: ASGIApp, *, limits: Limits, counters: Counters) -> None:
        self.app = app
        self.limits = limits
        self.counters = counters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._opening(receive), self._closing(send))
            return
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].endswith(FREE_PATH_SUFFIX):
            await self.app(scope, receive, send)
            return
        exchange = exchange_of(scope)
        limits = self.limits
        identifier = self.identifier(scope, exchange)
        consumer = exchange.consumer
        windows = limits.consumer_windows.get(consumer.username, limits.windows) if consumer else limits.windows
        try:
            reading = await self.counters.read(identifier, windows)
        except CountersUnavailable as unavailable:
            error = GatewayError(529, f"{unavailable}; try again shortly")
            exchange.fail(f"{error.error_type}: {error.message}")
            await send_error(send, error, [(b"retry-after", str(unavailable.retry_after).encode())])
            return
        verdict = judge(limits, windows, reading)
        if verdict.over:
            message = limits.error_message + ("" if limits.error_hide_providers else ", ".join(verdict.over))
            exchange.fail(f"rate_limit_error: {message}")
            await send_error(send, GatewayError(429, message), verdict.headers)
            return
        try:
            await self.app(scope, receive, _with_headers(send, verdict.headers) if verdict.headers else send)
        finally:
            amounts = limits.amounts(
                windows, exchange.provider_name, exchange.request_model or exchange.response_model, exchange.usage
            )
            if any(amounts):
                await self.counters.add(identifier, windows, amounts)

    def identifier(self, scope: Scope, exchange: Exchange) -> str:
        """Whose usage this request counts as (Kong's identifiers): ``consumer:<consumer
        id>``; ``credential:<credential id>`` of the consumer's key, or on a gateway without
        consumers ``credential:<keyed SHA-256 of the key presented, 32 hex digits>`` (never
        the key); ``header:<keyed SHA-256 of the value>``; else (no consumer, key or header)
        ``ip:<client address>``, Kong's fallback."""
        kind, consumer = self.limits.identifier, exchange.consumer
        if kind == "consumer" and consumer is not None:
            return f"consumer:{consumer.id}"
        if kind == "credential":
            if consumer is not None:
                return f"credential:{consumer.credential_id}"
            key = presented_key(scope["headers"])
            if key:
                return f"credential:{_digest(key)}"
        elif kind == "header" and self.limits.header_name is not None:
            value = header_value(scope["headers"], self.limits.header_name)
            if value:
                return f"header:{_digest(value)}"
        client = scope.get("client")
        return f"ip:{client[0] if client else 'unknown'}"

    def _opening(self, receive: Receive) -> Receive:
        """``receive`` for the lifespan: the counters open before the app hears of startup."""

        async def opening() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.counters.open()
            return message

        return opening

    def _closing(self, send: Send) -> Send:
        """``send`` for the lifespan: the counters close once the app has shut down."""

        async def closing(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.counters.close()
            await send(message)

        return closing


def presented_key(headers: Headers) -> bytes | None:
    """The key the client presented: ``x-api-key``, else an ``Authorization: Bearer`` token."""
    key = header_value(headers, b"x-api-key")
    if key:
        return key.strip()
    authorization = header_value(headers, b"authorization")
    if authorization and authorization[:7].lower() == _BEARER:
        return authorization[7:].strip() or None
    return None


def _digest(value: bytes) -> str:
    """32 hex digits of a SHA-256 of ``value`` keyed with aimw's own prefix (not the bare
    digest the consumers file may hold for a key)."""
    return hashlib.sha256(_DIGEST_PREFIX + value).hexdigest()[:32]


def _with_headers(send: Send, headers: Headers) -> Send:
    """``send`` adding ``headers`` to the response's start."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *headers]}
        await send(message)

    return sending
