"""SSERewriteMiddleware: rewrites a provider's event stream into Anthropic's, event by event.

Each upstream read becomes at most one ASGI ``send`` of the Anthropic events it
completed; nothing is buffered beyond a partial event. A failure of the upstream after
the stream began ends the client's stream with an Anthropic ``event: error``.
For a provider that already speaks Anthropic (``wire_format="anthropic"``) the bytes and
headers pass unchanged, cut only at event boundaries so that such an error event can
always follow a whole event.
"""

from __future__ import annotations

import logging
import time
from types import MappingProxyType

from aimw.asgi import header_value, with_headers
from aimw.exchange import Exchange, exchange_of
from aimw.sse import SSEDecoder
from aimw.translators import openai_chat
from aimw.translators.anthropic import error_event
from aimw.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("aimw.sse_rewrite")

_DROPPED_HEADERS = frozenset(
    (b"content-length", b"content-type", b"content-encoding", b"transfer-encoding", b"cache-control")
)
_STREAM_HEADERS = ((b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"))
_STREAM_FAILED = "the upstream provider's stream failed"


class _TranslatedStream:
    """A provider event stream decoded and translated into Anthropic events. It records the
    usage, model and first-token time on the exchange itself (``stream_observed``), so
    FileLogMiddleware need not decode the stream it wrote."""

    __slots__ = ("decoder", "translator", "exchange")

    rewrites_headers = True

    def __init__(self, translator: openai_chat.ChatStreamTranslator, exchange: Exchange) -> None:
        self.decoder = SSEDecoder()
        self.translator = translator
        self.exchange = exchange
        exchange.stream_observed = True

    def feed(self, chunk: bytes) -> bytes:
        feed = self.translator.feed
        out = b"".join([feed(event.data) for event in self.decoder.feed(chunk)])
        if not self.exchange.first_token_ns and self.translator.has_content:
            self.exchange.first_token_ns = time.monotonic_ns()
        return out

    def finish(self) -> bytes:
        feed = self.translator.feed
        out = [feed(event.data) for event in self.decoder.flush()]
        out.append(self.translator.finish())
        self.record()
        return b"".join(out)

    def fail(self) -> bytes:
        self.record()
        return b"" if self.translator.done else error_event("api_error", _STREAM_FAILED)

    def record(self) -> None:
        translator, exchange = self.translator, self.exchange
        usage = exchange.usage
        usage.input_tokens = translator.usage.input_tokens
        usage.output_tokens = translator.usage.output_tokens
        usage.cache_read_input_tokens = translator.usage.cache_read_input_tokens
        usage.reasoning_tokens = translator.reasoning_tokens
        exchange.response_model = translator.model
        exchange.error = exchange.error or translator.error
        if not exchange.first_token_ns and translator.has_content:
            exchange.first_token_ns = time.monotonic_ns()


class _AnthropicStream:
    """An Anthropic event stream passed on byte for byte, released a whole event at a time
    (events end with a blank line, LF or CRLF). After ``message_stop`` a failure adds no
    error event: the answer is already complete."""

    __slots__ = ("tail", "done")

    rewrites_headers = False

    def __init__(self) -> None:
        self.tail = b""
        self.done = False

    def record(self) -> None:
        """Nothing to record: FileLogMiddleware reads an Anthropic stream itself."""

    def feed(self, chunk: bytes) -> bytes:
        data = self.tail + chunk if self.tail else chunk
        lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
        end = max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
        self.tail = data[end:]
        released = data[:end]
        # an event line starts the released bytes or follows a newline (JSON data holds no raw newline)
        if released and (released.startswith(b"event: message_stop") or b"\nevent: message_stop" in released):
            self.done = True
        return released

    def finish(self) -> bytes:
        tail, self.tail = self.tail, b""
        return tail

    def fail(self) -> bytes:
        return b"" if self.done else error_event("api_error", _STREAM_FAILED)


# wire format -> a factory of one response's stream state, given the request's model and exchange
_STREAMS = MappingProxyType(
    {
        "openai_chat": lambda model, exchange: _TranslatedStream(openai_chat.ChatStreamTranslator(model), exchange),
        "anthropic": lambda model, exchange: _AnthropicStream(),
    }
)


class SSERewriteMiddleware:
    """Rewrite 2xx ``text/event-stream`` responses from ``wire_format`` into Anthropic SSE.

    Args:
        app: the app that returns the provider's response.
        wire_format: the provider's stream format: ``"openai_chat"``, or ``"anthropic"``
            (passed through; only mid-stream failures are turned into ``event: error``).

    Other responses pass untouched. The message_start model is the provider's (from its
    first chunk), else the exchange's request_model.
    """

    def __init__(self, app: ASGIApp, *, wire_format: str = "openai_chat") -> None:
        if wire_format not in _STREAMS:
            raise ValueError(f"no stream translator for wire format {wire_format!r}")
        self.app = app
        self.new_stream = _STREAMS[wire_format]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = exchange_of(scope)
        stream: _TranslatedStream | _AnthropicStream | None = None
        finished = False

        async def rewriting_send(message: Message) -> None:
            nonlocal stream, finished
            if message["type"] == "http.response.start":
                content_type = header_value(message.get("headers", ()), b"content-type") or b""
                if 200 <= message["status"] < 300 and content_type.startswith(b"text/event-stream"):
                    stream = self.new_stream(exchange.request_model or "unknown", exchange)
                    if stream.rewrites_headers:
                        headers = with_headers(message.get("headers", ()), drop=_DROPPED_HEADERS, add=_STREAM_HEADERS)
                        message = {**message, "headers": headers}
                await send(message)
                return
            if stream is None:
                await send(message)
                return
            body = stream.feed(message.get("body", b""))
            more_body = message.get("more_body", False)
            if not more_body:
                body += stream.finish()
                finished = True
            if body or not more_body:
                await send({"type": "http.response.body", "body": body, "more_body": more_body})

        try:
            await self.app(scope, receive, rewriting_send)
        except Exception as exc:
            if stream is None or finished:
                raise
            logger.warning("upstream stream failed: %s", type(exc).__name__)
            exchange.error = f"upstream stream failed: {type(exc).__name__}"
            await send({"type": "http.response.body", "body": stream.fail(), "more_body": False})
        finally:
            if stream is not None and not finished:  # the client left mid-stream: log what it got
                stream.record()
