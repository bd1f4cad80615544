"""TranslateMiddleware: makes a provider that speaks another wire format look like the
Anthropic Messages API.

Request side: ``POST {prefix}/v1/messages`` (Anthropic Messages) becomes the provider's
request (path, query, body, headers); ``POST {prefix}/v1/messages/count_tokens`` is
answered locally with an estimate; ``HEAD`` on any path (the Claude Code CLI's
pre-flight ``HEAD /`` and ``HEAD /api/hello``) is answered 200; anything else is 404.

Response side: a non-streaming provider JSON answer becomes an Anthropic Message; a
provider error becomes an Anthropic error with the matching status; an event stream
passes untouched (SSERewriteMiddleware, below, rewrote it). Of the provider's response
headers only ``retry-after``, request ids and ``x-ratelimit-*`` reach the client.
"""

from __future__ import annotations

import logging

import msgspec

from aimw.asgi import (
    JSON_HEADERS,
    ClientDisconnected,
    header_value,
    read_body,
    replay_body,
    send_body,
    send_error,
    with_headers,
)
from aimw.errors import GatewayError, error_from_provider
from aimw.exchange import Exchange, exchange_of
from aimw.providers import Provider
from aimw.token_estimate import estimate_input_tokens
from aimw.translators import anthropic, openai_chat
from aimw.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("aimw.translate")

_REQUEST_TRANSLATORS = {"openai_chat": openai_chat.request_from_anthropic}
_RESPONSE_TRANSLATORS = {"openai_chat": openai_chat.response_to_anthropic}

# Anthropic's own headers go only to Anthropic (DESIGN §6); length and encoding are redone.
_DROPPED_REQUEST_HEADERS = frozenset(
    (b"anthropic-version", b"anthropic-beta", b"anthropic-dangerous-direct-browser-access", b"content-length")
)
# The provider's response headers that reach the client: the rest (cookies, organisation and
# project ids, the provider's own framing) is the gateway operator's business.
_RELAYED_RESPONSE_HEADERS = frozenset((b"retry-after", b"x-aimw-llm-model", b"x-request-id", b"request-id"))
_STREAM_HEADERS = frozenset((b"content-type", b"cache-control"))  # as SSERewriteMiddleware set them

DEFAULT_MAX_RESPONSE_BODY_SIZE = 32 * 1024 * 1024  # bytes


class TranslateMiddleware:
    """Translate Anthropic Messages requests and responses for ``provider``.

    Args:
        app: the ASGI app that calls the provider (SSERewrite -> ProviderAuth -> Upstream).
        provider: where and what the provider speaks (``provider.wire_format``).
        model: the upstream model; when None, the client's ``model`` or the provider's default.
        max_body_size: request body limit (bytes) -> 413 request_too_large.
        max_response_body_size: non-streaming provider answer limit (bytes) -> 502 api_error.

    Errors: a non-JSON or wrong-shaped body gets 400 invalid_request_error naming the
    problem; any unexpected failure before the response starts gets 500 api_error.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        provider: Provider,
        model: str | None = None,
        max_body_size: int = 8 * 1024 * 1024,
        max_response_body_size: int = DEFAULT_MAX_RESPONSE_BODY_SIZE,
    ) -> None:
        if provider.wire_format not in _REQUEST_TRANSLATORS:
            raise ValueError(f"no translator for wire format {provider.wire_format!r}")
        self.app = app
        self.provider = provider
        self.model = model
        self.max_body_size = max_body_size
        self.max_response_body_size = max_response_body_size
        self.translate_request = _REQUEST_TRANSLATORS[provider.wire_format]
        self.translate_response = _RESPONSE_TRANSLATORS[provider.wire_format]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method == "HEAD":
            await send_body(send, 200, b"", ())
            return
        responded = False

        async def tracking_send(message: Message) -> None:
            nonlocal responded
            responded = True
            await send(message)

        try:
            if method == "POST" and path.endswith("/v1/messages"):
                await self.messages(scope, receive, tracking_send)
            elif method == "POST" and path.endswith("/v1/messages/count_tokens"):
                await self.count_tokens(receive, tracking_send)
            else:
                raise GatewayError(404, f"{method} {path} is not an endpoint of this gateway")
        except GatewayError as error:
            if responded:
                raise
            await send_error(send, error)
        except ClientDisconnected:
            return
        except Exception as exc:
            if responded:
                raise
            logger.exception("unexpected error while translating %s %s", method, path)
            exchange_of(scope).error = f"internal gateway error: {type(exc).__name__}"
            await send_error(send, GatewayError(500, "internal gateway error", "api_error"))

    async def messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = _decode_request(await read_body(receive, self.max_body_size))
        model = self.model or (request.model if isinstance(request.model, str) else None) or self.provider.default_model
        body = self.translate_request(
            request,
            model,
            max_tokens_field=self.provider.max_tokens_field,
            thinking_format=self.provider.thinking_format,
        )
        exchange = exchange_of(scope)
        exchange.provider_name = self.provider.name
        exchange.request_model = model
        exchange.request_mode = "stream" if request.stream else "oneshot"
        exchange.log_meta.update(self.provider.log_meta)
        path, query = self.provider.upstream_path(model)
        headers = with_headers(
            scope["headers"],
            drop=_DROPPED_REQUEST_HEADERS | {b"content-type"},
            add=((b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())),
        )
        upstream_scope = {
            **scope,
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": headers,
        }
        await self.app(upstream_scope, replay_body(body, receive), self._response_sender(send, model, exchange))

    async def count_tokens(self, receive: Receive, send: Send) -> None:
        request = _decode_request(await read_body(receive, self.max_body_size))
        body = msgspec.json.encode({"input_tokens": estimate_input_tokens(request)})
        await send_body(send, 200, body)

    def _response_sender(self, send: Send, model: str, exchange: Exchange) -> Send:
        """A ``send`` that translates non-streaming answers and errors, passing streams through."""
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        passing = False

        async def translating_send(message: Message) -> None:
            nonlocal start, size, passing
            if passing:
                await send(message)
                return
            if message["type"] == "http.response.start":
                content_type = header_value(message.get("headers", ()), b"content-type") or b""
                if message["status"] < 400 and content_type.startswith(b"text/event-stream"):
                    passing = True
                    await send({**message, "headers": _relayed(message.get("headers", ()), _STREAM_HEADERS)})
                    return
                start = message
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_response_body_size:
                raise GatewayError(502, "upstream answer is larger than the gateway's limit", "api_error")
            if chunk:
                chunks.append(chunk)
            if message.get("more_body", False):
                return
            await self._send_translated(send, start, b"".join(chunks), model, exchange)

        return translating_send

    async def _send_translated(self, send: Send, start: Message, body: bytes, model: str, exchange: Exchange) -> None:
        status = start["status"]
        upstream_headers = start.get("headers", ())
        if exchange.error:  # the answer broke off below: what arrived is not all of it
            raise GatewayError(502, exchange.error, "api_error")
        if status >= 400:
            status, body = error_from_provider(status, body)
        else:
            body, exchange.usage.reasoning_tokens = self.translate_response(body, model)
        await send_body(send, status, body, [*JSON_HEADERS, *_relayed(upstream_headers)])


def _relayed(headers, also: frozenset[bytes] = frozenset()) -> list[tuple[bytes, bytes]]:
    """The provider's headers a client may see: retry-after, request ids, x-ratelimit-*."""
    return [
        (name, value)
        for name, value in headers
        if name in _RELAYED_RESPONSE_HEADERS or name in also or name.startswith(b"x-ratelimit-")
    ]


def _decode_request(body: bytes) -> anthropic.MessagesRequest:
    try:
        return anthropic.request_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise GatewayError(400, f"invalid Messages request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise GatewayError(400, f"request body is not valid JSON: {exc}") from None
