"""TranslateMiddleware: makes a provider that speaks another wire format answer as the
Anthropic Messages API, and speaks Anthropic for every failure below it.

Request side: ``POST {prefix}/v1/messages`` becomes the wire format's request (path,
query, body, headers) for the model chosen; the body comes from ``Exchange.request_body``
(read once, by the first layer that needed it) and is parsed once per exchange, so a
second attempt re-translates without reading or parsing again.

Response side: a 2xx JSON answer becomes an Anthropic Message and its usage is recorded; a
provider error becomes an Anthropic error with the matching status (the attempt records it
as an UpstreamStatusError); an event stream passes (SSERewriteMiddleware, below, rewrote
it); upstream failures before any byte reached the client become Anthropic errors: 502
api_error unreachable or broke off, 504 timeout_error. Of a translated provider's response
headers only ``retry-after``, request ids and ``x-ratelimit-*`` reach the client; Anthropic's
own (``wire_format.passthrough``) all pass, and so do its other paths (count_tokens …).
"""

from __future__ import annotations

import logging
import time

import msgspec

from aimw.asgi import (
    JSON_HEADERS,
    ClientDisconnected,
    answer_error,
    header_value,
    replay_body,
    request_body,
    send_body,
    with_headers,
)
from aimw.errors import GatewayError
from aimw.exchange import Exchange, exchange_of
from aimw.translators.anthropic.messages import decode_request
from aimw.translators.wire import AnthropicCall
from aimw.types import ASGIApp, Headers, Message, Receive, Scope, Send, WireFormat
from aimw.upstream.failures import UpstreamFailure, UpstreamStatusError, UpstreamTimeout

logger = logging.getLogger("aimw.translate")

DEFAULT_MAX_BODY_SIZE = 8 * 1024 * 1024  # bytes
DEFAULT_MAX_RESPONSE_BODY_SIZE = 32 * 1024 * 1024  # bytes

# Anthropic's own headers go only to Anthropic (DESIGN §6); length and type are redone.
_ANTHROPIC_REQUEST_HEADERS = frozenset(
    (b"anthropic-version", b"anthropic-beta", b"anthropic-dangerous-direct-browser-access")
)
_FRAMING = frozenset((b"content-length", b"content-type"))
# The provider's response headers that reach the client of a translated provider: the rest
# (cookies, organisation and project ids, the provider's own framing) is the operator's.
_RELAYED_RESPONSE_HEADERS = frozenset((b"retry-after", b"x-aimw-llm-model", b"x-request-id", b"request-id"))
_STREAM_HEADERS = frozenset((b"content-type", b"cache-control"))  # as SSERewriteMiddleware set them


class _ErrorView(msgspec.Struct):
    type: str = ""
    message: str = ""


class _ErrorBodyView(msgspec.Struct):
    error: _ErrorView | None = None


_error_view = msgspec.json.Decoder(_ErrorBodyView)


class TranslateMiddleware:
    """Translate Anthropic Messages requests and answers for one target's ``wire_format``.

    Args:
        app: the leg below (SSERewrite > ProviderAuth > Upstream).
        wire_format: the target's WireFormat object (aimw.translators).
        default_model: the model when neither ``model`` nor the client names one.
        model: the upstream model, whatever the client asks (AIMW_MODEL); None keeps the client's.
        log_meta: extra ai.proxy.meta fields of the target (Kong's names, e.g. azure_instance_id).
        max_body_size: request body limit (bytes) when no layer above read the body.
        max_response_body_size: non-streaming answer limit (bytes) -> 502 api_error.

    Errors (Anthropic shape, before any byte reached the client): a non-JSON or wrong-shaped
    body 400 invalid_request_error naming the problem; another path of a translated provider
    404; any unexpected failure 500 api_error.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        wire_format: WireFormat,
        default_model: str,
        model: str | None = None,
        log_meta: dict[str, str] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_response_body_size: int = DEFAULT_MAX_RESPONSE_BODY_SIZE,
    ) -> None:
        self.app = app
        self.wire_format = wire_format
        self.default_model = default_model
        self.model = model
        self.log_meta = dict(log_meta or {})
        self.max_body_size = max_body_size
        self.max_response_body_size = max_response_body_size
        self._dropped_headers = _FRAMING if wire_format.passthrough else _FRAMING | _ANTHROPIC_REQUEST_HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        responder = _Responder(self, send, exchange_of(scope))
        try:
            if scope["method"] == "POST" and scope["path"].endswith("/v1/messages"):
                await self.messages(scope, receive, responder)
            elif self.wire_format.passthrough:
                responder.relaying = True
                await self.app(scope, receive, responder.send)
            else:
                raise GatewayError(404, f"{scope['method']} {scope['path']} is not an endpoint of this gateway")
        except ClientDisconnected:
            return
        except UpstreamFailure as failure:
            status, error_type = (504, "timeout_error") if isinstance(failure, UpstreamTimeout) else (502, "api_error")
            await responder.fail(scope, GatewayError(status, failure.reason, error_type))
        except GatewayError as error:
            await responder.fail(scope, error)
        except Exception as exc:
            if responder.started:
                raise
            logger.exception("unexpected error while translating %s %s", scope["method"], scope["path"])
            await answer_error(
                scope, send, GatewayError(500, f"internal gateway error ({type(exc).__name__})", "api_error")
            )

    async def messages(self, scope: Scope, receive: Receive, responder: _Responder) -> None:
        exchange = responder.exchange
        body = await request_body(scope, receive, self.max_body_size)
        wire_format = self.wire_format
        if wire_format.parses_request:
            request = exchange.messages_request
            if request is None:
                request = exchange.messages_request = decode_request(body)
            client_model = request.model if isinstance(request.model, str) else None
            stream = request.stream
        else:
            request, client_model, stream = None, exchange.request_model, exchange.request_mode == "stream"
        model = self.model or client_model or self.default_model
        exchange.request_model = model
        if request is not None:  # else the layer that read the raw fields recorded it
            exchange.request_mode = "stream" if stream else "oneshot"
        exchange.log_meta.update(self.log_meta)
        raw_path: bytes | None = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        upstream = wire_format.build_request(
            AnthropicCall(body, request, model, stream, path, scope.get("query_string", b""))
        )
        headers = with_headers(
            scope["headers"],
            drop=self._dropped_headers,
            add=((b"content-type", b"application/json"), (b"content-length", b"%d" % len(upstream.body))),
        )
        upstream_scope = {
            **scope,
            "path": upstream.path,
            "raw_path": upstream.path.encode("latin-1"),
            "root_path": "",
            "query_string": upstream.query,
            "headers": headers,
        }
        responder.model = model
        await self.app(upstream_scope, replay_body(upstream.body, receive), responder.send)


class _Responder:
    """One response on its way back: streams pass, JSON answers are gathered (capped) and
    translated, failures answered while nothing has reached the client."""

    __slots__ = ("_chunks", "_size", "_start", "client_send", "exchange", "model", "relaying", "started", "translate")

    def __init__(self, translate: TranslateMiddleware, send: Send, exchange: Exchange) -> None:
        self.translate = translate
        self.client_send = send
        self.exchange = exchange
        self.model = ""
        self.relaying = False  # pass every message on as it is
        self.started = False  # http.response.start reached the client
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self._size = 0

    async def send(self, message: Message) -> None:
        if self.relaying:
            self.started = True
            await self.client_send(message)
            return
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            content_type = header_value(headers, b"content-type") or b""
            if message["status"] < 400 and content_type.startswith(b"text/event-stream"):
                self.relaying = self.started = True
                await self.client_send({**message, "headers": self._client_headers(headers, _STREAM_HEADERS)})
            else:
                self._start = message
            return
        chunk = message.get("body", b"")
        self._size += len(chunk)
        if self._size > self.translate.max_response_body_size:
            raise GatewayError(502, "the upstream answer is larger than the gateway's limit", "api_error")
        if chunk:
            self._chunks.append(chunk)
        if not message.get("more_body", False) and self._start is not None:
            await self._answer(self._start, b"".join(self._chunks))

    async def _answer(self, start: Message, body: bytes) -> None:
        status: int = start["status"]
        exchange = self.exchange
        wire_format = self.translate.wire_format
        if status >= 400:
            failure = UpstreamStatusError(status, body)
            if exchange.attempts:
                exchange.attempts[-1].failure = failure.reason
            status, body = wire_format.error_to_anthropic(status, body)
            exchange.fail(_error_outcome(body, status))
        else:
            answer = wire_format.response_to_anthropic(body, self.model)
            exchange.usage = answer.usage
            exchange.response_model = answer.model or self.model
            exchange.first_token_ns = time.monotonic_ns()
            body = answer.body
        self.started = True
        await send_body(self.client_send, status, body, self._client_headers(start.get("headers", ()), frozenset()))

    def _client_headers(self, headers: Headers, also: frozenset[bytes]) -> Headers:
        """The provider's headers a client may see: all but framing for Anthropic's own;
        for others retry-after, request ids, x-ratelimit-* (and ``also``)."""
        if self.translate.wire_format.passthrough:
            return [(name, value) for name, value in headers if name != b"content-length"]
        relayed = [
            (name, value)
            for name, value in headers
            if name in _RELAYED_RESPONSE_HEADERS or name in also or name.startswith(b"x-ratelimit-")
        ]
        return relayed if also else [*JSON_HEADERS, *relayed]

    async def fail(self, scope: Scope, error: GatewayError) -> None:
        """Answer ``error`` if nothing reached the client yet; else only record it."""
        if self.started:
            self.exchange.fail(f"{error.error_type}: {error.message}")
            return
        await answer_error(scope, self.client_send, error)


def _error_outcome(body: bytes, status: int) -> str:
    """``error_type: message`` of an Anthropic error body, for the log."""
    try:
        error = _error_view.decode(body).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        error = None
    return f"{error.type}: {error.message}" if error is not None else f"HTTP {status}"
