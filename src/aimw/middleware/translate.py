"""TranslateMiddleware: makes a provider that speaks another wire format answer as the
Anthropic Messages API, and speaks Anthropic for every failure below it.

Request side: ``POST {prefix}/v1/messages`` becomes the wire format's request (path,
query, body, headers) for the model chosen; the body comes from ``Exchange.request_body``
(read once, by the first layer that needed it) and is parsed once per exchange, so a
second attempt re-translates without reading or parsing again.

Of the client's headers only an allowlist goes on (the credential is ProviderAuth's to add).

Response side (aimw.middleware.translate_answer): a 2xx JSON answer becomes an Anthropic
Message and its usage is recorded; a provider error becomes an Anthropic error with the
matching status (the attempt records it as an UpstreamStatusError); a redirect or a
malformed answer is 502 api_error; an event stream passes (SSERewriteMiddleware, below,
rewrote it); upstream failures before any byte reached the client become Anthropic errors:
502 api_error unreachable or broke off, 504 timeout_error, 529 overloaded_error when the
pool stayed busy. Of a translated provider's response headers only ``retry-after``, request
ids and ``x-ratelimit-*`` reach the client; Anthropic's own (``wire_format.passthrough``)
all pass but Location, and so do its other paths (count_tokens …).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aimw.asgi import ClientDisconnected, answer_error, connection_options, replay_body, request_body
from aimw.errors import GatewayError, where_it_failed
from aimw.exchange import exchange_of
from aimw.middleware.translate_answer import TranslatedAnswer, anthropic_error_for
from aimw.token_estimate import estimate_input_tokens
from aimw.translators.anthropic.messages import decode_request
from aimw.translators.wire import AnthropicCall
from aimw.types import ASGIApp, Headers, Receive, Scope, Send, WireFormat
from aimw.upstream.failures import UpstreamFailure

logger = logging.getLogger("aimw.translate")

DEFAULT_MAX_BODY_SIZE = 8 * 1024 * 1024  # bytes
DEFAULT_MAX_RESPONSE_BODY_SIZE = 32 * 1024 * 1024  # bytes

# The client's headers that reach a translated provider (besides the credential ProviderAuth
# adds and the framing set here): a client must not choose whom the operator's key bills
# (x-hf-bill-to, openai-organization, openai-project) nor pass cookies or forwarding claims.
TRANSLATED_FORWARDED_HEADERS = frozenset((b"accept", b"user-agent", b"x-request-id"))
# What Anthropic itself is sent: its own headers and the SDK's, the client's key (replaced
# by ProviderAuth when the gateway has one).
ANTHROPIC_FORWARDED_HEADERS = frozenset(
    (
        b"accept",
        b"user-agent",
        b"x-request-id",
        b"x-api-key",
        b"authorization",
        b"anthropic-version",
        b"anthropic-beta",
        b"anthropic-dangerous-direct-browser-access",
        b"x-claude-code-session-id",
    )
)
ANTHROPIC_FORWARDED_PREFIXES = (b"x-stainless-",)
_FRAMING = frozenset((b"content-type", b"content-length", b"transfer-encoding"))


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
        extra_forwarded_headers: client headers (lower-case names) sent on besides the
            allowlist: TRANSLATED_FORWARDED_HEADERS, or for Anthropic's own format its own
            headers and the SDK's (ANTHROPIC_FORWARDED_HEADERS, ``x-stainless-*``).

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
        extra_forwarded_headers: Iterable[bytes] = (),
    ) -> None:
        self.app = app
        self.wire_format = wire_format
        self.default_model = default_model
        self.model = model
        self.log_meta = dict(log_meta or {})
        self.max_body_size = max_body_size
        self.max_response_body_size = max_response_body_size
        self.forwarded_prefixes: tuple[bytes, ...] = ()
        if wire_format.passthrough:
            self.forwarded_headers, self.forwarded_prefixes = ANTHROPIC_FORWARDED_HEADERS, ANTHROPIC_FORWARDED_PREFIXES
        else:
            self.forwarded_headers = TRANSLATED_FORWARDED_HEADERS
        self.forwarded_headers |= frozenset(extra_forwarded_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answer = TranslatedAnswer(self.wire_format, send, exchange_of(scope), self.max_response_body_size)
        try:
            if scope["method"] == "POST" and scope["path"].endswith("/v1/messages"):
                await self.messages(scope, receive, answer)
            elif self.wire_format.passthrough:
                framing = [(name, value) for name, value in scope["headers"] if name in _FRAMING]
                headers = self._forwarded(scope["headers"]) + framing
                await self.app({**scope, "headers": headers}, receive, answer.send)
            else:
                raise GatewayError(404, f"{scope['method']} {scope['path']} is not an endpoint of this gateway")
        except ClientDisconnected:
            return
        except UpstreamFailure as failure:
            await answer.fail(scope, anthropic_error_for(failure))
        except GatewayError as error:
            await answer.fail(scope, error)
        except Exception as exc:
            if answer.started:
                raise
            logger.error("unexpected error while translating: %s", where_it_failed(exc))
            internal = GatewayError(500, f"internal gateway error ({type(exc).__name__})", "api_error")
            await answer_error(scope, send, internal)

    async def messages(self, scope: Scope, receive: Receive, answer: TranslatedAnswer) -> None:
        exchange = answer.exchange
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
        call = AnthropicCall(body, request, model, stream, path, scope.get("query_string", b""))
        upstream = wire_format.build_request(call)
        headers = self._forwarded(scope["headers"])
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(upstream.body))]
        upstream_scope = {
            **scope,
            "path": upstream.path,
            "raw_path": upstream.path.encode("latin-1"),
            "root_path": "",
            "query_string": upstream.query,
            "headers": headers,
        }
        answer.model = model
        answer.translating = True
        # From here the upstream body is all the call needs. Neither the client's body, its parsed
        # form nor the translated body is pinned by this frame for a stream that may last minutes
        # (Failover keeps its own copies for another try; the early-end usage estimate decodes
        # Exchange.request_body again on that rare path).
        receive = replay_body(upstream.body, receive)
        if request is not None:
            if stream:  # what a stream that ends early is charged for, if its provider never says
                exchange.input_tokens_estimate = estimate_input_tokens(request)
            exchange.messages_request = exchange.request_body = None
        del body, request, call, upstream
        await self.app(upstream_scope, receive, answer.send)

    def _forwarded(self, headers: Headers) -> Headers:
        """The client's headers on the allowlist (names, then name prefixes), but for those its
        ``Connection`` header names (hop-by-hop: the client's connection's own)."""
        names, prefixes = self.forwarded_headers, self.forwarded_prefixes
        hop_by_hop = connection_options(headers)
        return [
            (name, value)
            for name, value in headers
            if (name in names or (prefixes and name.startswith(prefixes))) and name not in hop_by_hop
        ]
