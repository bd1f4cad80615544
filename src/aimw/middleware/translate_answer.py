"""The answer half of TranslateMiddleware: one provider response on its way back to the
client. Event streams pass (SSERewriteMiddleware rewrote them); every other answer is
gathered (capped) and answered in Anthropic's shape; failures are answered while nothing has
reached the client. Used by TranslateMiddleware only."""

from __future__ import annotations

import time

import msgspec

from aimw.asgi import JSON_HEADERS, answer_error, header_value, send_body
from aimw.errors import GatewayError, redact_bytes, redact_registered
from aimw.exchange import Exchange
from aimw.types import Headers, Message, Scope, Send, WireFormat
from aimw.upstream.failures import UpstreamBusy, UpstreamFailure, UpstreamStatusError, UpstreamTimeout

# The provider's response headers that reach the client of a translated provider: the rest
# (cookies, organisation and project ids, the provider's own framing) is the operator's.
RELAYED_RESPONSE_HEADERS = frozenset((b"retry-after", b"x-aimw-llm-model", b"x-request-id", b"request-id"))
_STREAM_HEADERS = frozenset((b"content-type", b"cache-control"))  # as SSERewriteMiddleware set them
_NOT_RELAYED_PASSTHROUGH = frozenset((b"content-length", b"location"))


class _ErrorView(msgspec.Struct):
    type: str = ""
    message: str = ""


class _ErrorBodyView(msgspec.Struct):
    error: _ErrorView | None = None


_error_view = msgspec.json.Decoder(_ErrorBodyView)


def anthropic_error_for(failure: UpstreamFailure) -> GatewayError:
    """The Anthropic error a client gets for an upstream failure: 504 timeout_error for a
    timeout, 529 overloaded_error when the pool stayed busy, else 502 api_error."""
    if isinstance(failure, UpstreamTimeout):
        return GatewayError(504, failure.reason, "timeout_error")
    if isinstance(failure, UpstreamBusy):
        return GatewayError(529, failure.reason, "overloaded_error")
    return GatewayError(502, failure.reason, "api_error")


class TranslatedAnswer:
    """One response on its way back (per request). ``send`` is the ASGI send given to the
    leg; ``translating`` says a Messages answer is expected (else a pass-through path's
    answer goes back as it is, errors and redirects aside)."""

    __slots__ = (
        "_chunks",
        "_size",
        "_start",
        "client_send",
        "exchange",
        "max_size",
        "model",
        "relaying",
        "started",
        "translating",
        "wire_format",
    )

    def __init__(self, wire_format: WireFormat, send: Send, exchange: Exchange, max_size: int) -> None:
        self.wire_format = wire_format
        self.client_send = send
        self.exchange = exchange
        self.max_size = max_size  # bytes of a gathered answer
        self.model = ""
        self.translating = False
        self.relaying = False  # an event stream: every message passes as it is
        self.started = False  # http.response.start reached the client
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self._size = 0

    async def send(self, message: Message) -> None:
        if self.relaying:
            await self.client_send(message)
            return
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            content_type = header_value(headers, b"content-type") or b""
            if 200 <= message["status"] < 300 and content_type.startswith(b"text/event-stream"):
                self.relaying = self.started = True
                await self.client_send({**message, "headers": self._stream_headers(headers)})
            else:
                self._start = message
            return
        chunk = message.get("body", b"")
        self._size += len(chunk)
        if self._size > self.max_size:
            raise GatewayError(502, "the upstream answer is larger than the gateway's limit", "api_error")
        if chunk:
            self._chunks.append(chunk)
        if not message.get("more_body", False) and self._start is not None:
            await self._answer(self._start, b"".join(self._chunks))

    async def fail(self, scope: Scope, error: GatewayError) -> None:
        """Answer ``error`` if nothing reached the client yet; else only record it."""
        if self.started:
            self.exchange.fail(f"{error.error_type}: {error.message}")
            return
        await answer_error(scope, self.client_send, error)

    async def _answer(self, start: Message, body: bytes) -> None:
        status: int = start["status"]
        if 300 <= status < 400:  # never followed, never relayed: Location could send the client anywhere
            self._mark_attempt(f"provider answered a redirect (HTTP {status})")
            raise GatewayError(502, f"the upstream provider answered a redirect (HTTP {status})", "api_error")
        headers = self._json_headers(start.get("headers", ()))
        if status >= 400:
            self._mark_attempt(UpstreamStatusError(status, body).reason)
            delay = self.wire_format.retry_after(status, body)
            if delay is not None and header_value(headers, b"retry-after") is None:
                headers.append((b"retry-after", b"%d" % delay))
            status, body = self.wire_format.error_to_anthropic(status, redact_bytes(body))
            self.exchange.fail(_error_outcome(body, status))
        elif self.translating:
            body = self._translated(body)
        self.started = True
        await send_body(self.client_send, status, body, headers)

    def _translated(self, body: bytes) -> bytes:
        try:
            answer = self.wire_format.response_to_anthropic(body, self.model)
        except GatewayError as error:
            self._mark_attempt(error.message)
            raise
        exchange = self.exchange
        exchange.usage = answer.usage
        exchange.response_model = answer.model or self.model
        exchange.first_token_ns = time.monotonic_ns()
        return answer.body

    def _mark_attempt(self, failure: str) -> None:
        if self.exchange.attempts:
            self.exchange.attempts[-1].failure = failure

    def _json_headers(self, headers: Headers) -> Headers:
        """Anthropic's own: all but length and Location; others: JSON plus retry-after,
        request ids, x-ratelimit-*. Registered secrets redacted from the values."""
        if self.wire_format.passthrough:
            relayed = [(name, value) for name, value in headers if name not in _NOT_RELAYED_PASSTHROUGH]
        else:
            relayed = [*JSON_HEADERS, *_relayed(headers, frozenset())]
        return [(name, redact_registered(value)) for name, value in relayed]

    def _stream_headers(self, headers: Headers) -> Headers:
        relayed = headers if self.wire_format.passthrough else _relayed(headers, _STREAM_HEADERS)
        return [(name, redact_registered(value)) for name, value in relayed if name != b"location"]


def _relayed(headers: Headers, also: frozenset[bytes]) -> Headers:
    return [
        (name, value)
        for name, value in headers
        if name in RELAYED_RESPONSE_HEADERS or name in also or name.startswith(b"x-ratelimit-")
    ]


def _error_outcome(body: bytes, status: int) -> str:
    """``error_type: message`` of an Anthropic error body, for the log."""
    try:
        error = _error_view.decode(body).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        error = None
    return f"{error.type}: {error.message}" if error is not None else f"HTTP {status}"
