"""SSERewriteMiddleware: rewrites a provider's event stream into Anthropic's, event by event.

Each upstream read becomes at most one ASGI ``send`` of the Anthropic events it
completed; nothing is buffered beyond a partial event. A failure of the upstream after
the stream began ends the client's stream with an Anthropic ``event: error``.
"""

from __future__ import annotations

import logging

from aimw.asgi import header_value, with_headers
from aimw.exchange import exchange_of
from aimw.sse import SSEDecoder
from aimw.translators import openai_chat
from aimw.translators.anthropic import error_event
from aimw.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("aimw.sse_rewrite")

_STREAM_TRANSLATORS = {"openai_chat": openai_chat.ChatStreamTranslator}
_DROPPED_HEADERS = frozenset(
    (b"content-length", b"content-type", b"content-encoding", b"transfer-encoding", b"cache-control")
)
_STREAM_HEADERS = ((b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"))


class SSERewriteMiddleware:
    """Rewrite 2xx ``text/event-stream`` responses from ``wire_format`` into Anthropic SSE.

    Args:
        app: the app that returns the provider's response.
        wire_format: the provider's stream format (``"openai_chat"``).

    Other responses pass untouched. The message_start model is the provider's (from its
    first chunk), else the exchange's request_model.
    """

    def __init__(self, app: ASGIApp, *, wire_format: str = "openai_chat") -> None:
        if wire_format not in _STREAM_TRANSLATORS:
            raise ValueError(f"no stream translator for wire format {wire_format!r}")
        self.app = app
        self.translator_class = _STREAM_TRANSLATORS[wire_format]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = exchange_of(scope)
        translator = None
        decoder = SSEDecoder()
        finished = False

        async def rewriting_send(message: Message) -> None:
            nonlocal translator, finished
            if message["type"] == "http.response.start":
                content_type = header_value(message.get("headers", ()), b"content-type") or b""
                if 200 <= message["status"] < 300 and content_type.startswith(b"text/event-stream"):
                    translator = self.translator_class(exchange.request_model or "unknown")
                    message = {
                        **message,
                        "headers": with_headers(message.get("headers", ()), drop=_DROPPED_HEADERS, add=_STREAM_HEADERS),
                    }
                await send(message)
                return
            if translator is None:
                await send(message)
                return
            feed = translator.feed
            out = [feed(event.data) for event in decoder.feed(message.get("body", b""))]
            more_body = message.get("more_body", False)
            if not more_body:
                out.extend(feed(event.data) for event in decoder.flush())
                out.append(translator.finish())
                exchange.usage.reasoning_tokens = translator.reasoning_tokens
                finished = True
            body = b"".join(out)
            if body or not more_body:
                await send({"type": "http.response.body", "body": body, "more_body": more_body})

        try:
            await self.app(scope, receive, rewriting_send)
        except Exception as exc:
            if translator is None or finished:
                raise
            logger.warning("upstream stream failed: %s", type(exc).__name__)
            exchange.error = f"upstream stream failed: {type(exc).__name__}"
            error = b"" if translator.done else error_event("api_error", "the upstream provider's stream failed")
            await send({"type": "http.response.body", "body": error, "more_body": False})
