"""SSERewriteMiddleware: rewrites a provider's event stream into Anthropic's, event by event,
and records what the stream said (usage, model, first token, in-stream errors).

Each upstream read becomes at most one ASGI ``send`` of the Anthropic events it completed;
nothing is buffered beyond a partial event. A failure after the stream began (the upstream's,
or the gateway's own) ends the client's stream with an Anthropic ``event: error``. For Anthropic's own format the
bytes and headers pass unchanged, cut only at event boundaries. A stream its translator cut
(an oversized or unreadable event, a provider's in-stream error) is read no further: the app
below is stopped, which closes the upstream response and frees its connection, then the
client's response ends with the error event, however long the provider would have gone on.

A stream that ends before its end (the client left, the provider broke off, the translator
cut it) is recorded with the usage the provider reported so far, and aimw's estimate where
it reported none (aimw.token_estimate.usage_so_far: output from the content written,
input from the request), marked as estimated (``Exchange.usage_estimated``).
"""

from __future__ import annotations

import logging
import time

from aimw.asgi import header_value, with_headers
from aimw.errors import GatewayError, where_it_failed
from aimw.exchange import Exchange, exchange_of
from aimw.token_estimate import estimate_input_tokens, usage_so_far
from aimw.translators.anthropic.messages import decode_request
from aimw.types import ASGIApp, Message, Receive, Scope, Send, StreamTranslator, WireFormat
from aimw.upstream.failures import UpstreamFailure

logger = logging.getLogger("aimw.sse_rewrite")

_DROPPED_HEADERS = frozenset(
    (b"content-length", b"content-type", b"content-encoding", b"transfer-encoding", b"cache-control")
)
_STREAM_HEADERS = ((b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"))


class _Cut(Exception):
    """Raised from ``send`` through the app below once the translator cut the stream: the
    upstream app closes its response whatever ends its relay. ``tail``: the last bytes for
    the client (whole events, then the error event)."""

    def __init__(self, tail: bytes) -> None:
        super().__init__("the stream translator cut the stream")
        self.tail = tail


class SSERewriteMiddleware:
    """Rewrite 2xx ``text/event-stream`` answers with ``wire_format.new_stream``.

    Args:
        app: the app that returns the provider's response.
        wire_format: the target's WireFormat object.

    Other responses pass untouched. The message_start model is the provider's (from its
    first chunk), else the exchange's request_model. The stream's usage, model, first-token
    time and in-stream error are recorded on the exchange, also when the client leaves
    mid-stream (what it got).
    """

    def __init__(self, app: ASGIApp, *, wire_format: WireFormat) -> None:
        self.app = app
        self.wire_format = wire_format

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = exchange_of(scope)
        stream: StreamTranslator | None = None
        finished = False

        async def rewriting_send(message: Message) -> None:
            nonlocal stream, finished
            if message["type"] == "http.response.start":
                content_type = header_value(message.get("headers", ()), b"content-type") or b""
                if 200 <= message["status"] < 300 and content_type.startswith(b"text/event-stream"):
                    stream = self.wire_format.new_stream(exchange.request_model or "unknown")
                    if stream.rewrites_headers:
                        headers = with_headers(message.get("headers", ()), drop=_DROPPED_HEADERS, add=_STREAM_HEADERS)
                        message = {**message, "headers": headers}
                await send(message)
                return
            if stream is None:
                await send(message)
                return
            body = stream.feed(message.get("body", b""))
            if not exchange.first_token_ns and stream.has_content:
                exchange.first_token_ns = time.monotonic_ns()
            more_body = message.get("more_body", False)
            if more_body and stream.cut:
                raise _Cut(body)
            if not more_body:
                body += stream.finish()
                finished = True
            if body or not more_body:
                await send({"type": "http.response.body", "body": body, "more_body": more_body})

        try:
            await self.app(scope, receive, rewriting_send)
        except _Cut as cut:
            await send({"type": "http.response.body", "body": cut.tail, "more_body": False})
        except Exception as exc:
            if stream is None or finished:
                raise
            if isinstance(exc, UpstreamFailure):
                reason = exc.reason
                logger.warning("upstream stream failed: %s", reason)
            else:
                reason = f"internal gateway error ({type(exc).__name__})"
                logger.error("stream failed in the gateway: %s", where_it_failed(exc))
            if stream.error is not None:  # the provider said why before the stream broke
                exchange.fail(stream.error)
            exchange.fail(reason)
            await send({"type": "http.response.body", "body": stream.fail("api_error", reason), "more_body": False})
        finally:
            if stream is not None:
                _record(stream, exchange, complete=finished and stream.error is None)


def _record(stream: StreamTranslator, exchange: Exchange, *, complete: bool) -> None:
    usage = stream.usage
    if not complete:
        usage, exchange.usage_estimated = usage_so_far(usage, stream.content_chars, lambda: _input_tokens_of(exchange))
    exchange.usage = usage
    exchange.response_model = stream.model or exchange.request_model
    if stream.error is not None:
        exchange.fail(stream.error)
    if not exchange.first_token_ns and stream.has_content:
        exchange.first_token_ns = time.monotonic_ns()


def _input_tokens_of(exchange: Exchange) -> int | None:
    """The request's estimated input tokens: as Translate recorded them before it let the
    request go, else from the Messages request parsed above, else from its body parsed now
    (a pass-through stack keeps only the body); None when it is not a Messages request."""
    if exchange.input_tokens_estimate:
        return exchange.input_tokens_estimate
    request = exchange.messages_request
    if request is None and exchange.request_body is not None:
        try:
            request = decode_request(exchange.request_body)
        except GatewayError:
            return None
    return None if request is None else estimate_input_tokens(request)
