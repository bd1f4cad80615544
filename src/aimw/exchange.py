"""The per-request record every aimw layer shares through ``scope["aimw"]``.

One :class:`Exchange` is created by the outermost aimw layer (ObserveMiddleware, or
:func:`exchange_of` in whichever layer comes first) and filled by the others: StripFields
the request's model and mode, the upstream app one :class:`Attempt` per try, whoever writes
the Anthropic answer its usage. ObserveMiddleware turns the finished record into an
:class:`ObservedExchange` with its derived :class:`Figures` for the sinks. Timestamps are
``time.monotonic_ns()`` values (ns), ``0`` while the moment has not happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from aimw.config.consumers import AuthenticatedConsumer
    from aimw.translators.anthropic.messages import MessagesRequest
    from aimw.types import Headers, Scope

RequestMode = Literal["oneshot", "stream"]
ClientClosed = Literal["upload", "waiting", "stream", "answer"]
"""When the client closed its connection before the response was complete: while sending its
body (``upload``), before any response byte went out (``waiting``: the provider had not
answered yet), or after the response started, during an event stream (``stream``) or another
answer (``answer``)."""


MAX_TOKEN_COUNT = 2**53 - 1  # tokens: far above any real count, exact in every JSON reader


def token_count(value: int | None) -> int:
    """A provider's token count as aimw keeps it: 0 when absent or negative, at most
    MAX_TOKEN_COUNT (a hostile provider's 2**70 would make the log line unencodable)."""
    return 0 if value is None or value < 0 else min(value, MAX_TOKEN_COUNT)


@dataclass(slots=True)
class Usage:
    """Token counts of one answer (tokens), in Anthropic's terms: ``input_tokens`` excludes
    cache reads and writes; ``reasoning_tokens`` are part of ``output_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(slots=True)
class Attempt:
    """One try of the request against one target (Kong's ``ai.proxy.tried_targets`` entry).

    provider / model: the target's provider name and the model asked of it.
    upstream_scheme / host / port / upstream_uri: where it went (the path, without query).
    upstream_query: the query string sent, without ``?`` (may hold a credential: redact it).
    ip: the peer address when ``host`` is an IP literal, else None (not resolved again).
    route_type: Kong's route type (``llm/v1/chat``).
    sent_ns / first_byte_ns / last_byte_ns: when the request left, the answer's headers came,
        its body ended.
    status: the provider's HTTP status, None when it never answered.
    failure: why the attempt failed (an UpstreamFailure's reason, or the provider's status),
        None for a good answer.
    failure_kind: the UpstreamFailure's ``kind`` (``unreachable``, ``timeout``, ``busy``,
        ``broke_off``) when the upstream app raised one, else None.
    """

    provider: str
    model: str | None
    upstream_scheme: str
    host: str
    port: int
    upstream_uri: str
    upstream_query: str = ""
    route_type: str = "llm/v1/chat"
    ip: str | None = None
    sent_ns: int = 0
    first_byte_ns: int = 0
    last_byte_ns: int = 0
    status: int | None = None
    failure: str | None = None
    failure_kind: str | None = None


@dataclass(slots=True)
class Exchange:
    """Everything aimw learns about one request/response pair.

    provider_name: Kong's provider_name of the target that answered (or was last tried).
    request_model: the model sent upstream (after any override).
    response_model: the model the provider says answered.
    request_mode: ``"stream"`` or ``"oneshot"`` (Kong's names).
    consumer: who called, the consumer whose key the request presented (set by
        ClientAuthMiddleware), None when the gateway has no consumers.
    received_ns / first_byte_ns / last_byte_ns: the request arrived, the client got its first
        and last response byte.
    first_token_ns: the first content reached the client (stream) or the answer did (JSON).
    usage: token counts, recorded by the layer that wrote the Anthropic answer.
    attempts: one per upstream try, in order.
    log_meta: provider-specific ai.proxy.meta fields (e.g. Kong's ``azure_instance_id``).
    error: the final outcome when it was a failure, for the log only: no layer branches on it.
    client_closed: when the client left before the response was complete (ObserveMiddleware
        sees its ``http.disconnect``), None while it stays; the exchange is then logged as
        499. Layers may stop work for a client that left (FailoverMiddleware tries no
        further target).
    usage_estimated: ``usage`` holds aimw's estimate where the provider reported nothing (a
        stream that ended before the provider's usage came: aimw.token_estimate).
    request_body: the request body as read once (and as StripFields left it), for replay.
    messages_request: that body parsed as a Messages request, once, by its first user.
        Translate lets both go once it built the upstream request (a stream must not pin them;
        Failover keeps its own copies for another try).
    input_tokens_estimate: the request's estimated input tokens (tokens), recorded by
        Translate for a stream before it lets the request go; 0 when not recorded.
    """

    provider_name: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    request_mode: RequestMode | None = None
    consumer: AuthenticatedConsumer | None = None
    received_ns: int = 0
    first_byte_ns: int = 0
    last_byte_ns: int = 0
    first_token_ns: int = 0
    usage: Usage = field(default_factory=Usage)
    attempts: list[Attempt] = field(default_factory=list)
    log_meta: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    client_closed: ClientClosed | None = None
    usage_estimated: bool = False
    request_body: bytes | None = None
    messages_request: MessagesRequest | None = None
    input_tokens_estimate: int = 0

    def fail(self, outcome: str) -> None:
        """Record ``outcome`` as the final error unless one was recorded first (the layer
        nearest the cause says why; the ones above only see its effect)."""
        if self.error is None:
            self.error = outcome


def exchange_of(scope: Scope) -> Exchange:
    """Return the request's :class:`Exchange`, creating it at ``scope["aimw"]`` if absent."""
    exchange: Exchange | None = scope.get("aimw")
    if exchange is None:
        exchange = scope["aimw"] = Exchange()
    return exchange


@dataclass(slots=True)
class Figures:
    """The derived figures of one exchange, computed once by ObserveMiddleware.

    request_ms: request received -> last byte to the client (Kong's latencies.request).
    proxy_ms: the answering attempt's request sent -> its last byte (Kong's latencies.proxy,
        and ai.proxy.meta.llm_latency).
    gateway_ms: request_ms - proxy_ms (Kong's latencies.gateway).
    time_to_first_token_ms: answering attempt sent -> first content to the client.
    time_per_token_ms: proxy_ms / completion_tokens (0 with no tokens).
    prompt_tokens: input + cache read + cache write tokens; completion_tokens: output tokens.
    cost: prompt and completion tokens at the configured prices per million tokens.
    """

    request_ms: int
    proxy_ms: int
    gateway_ms: int
    time_to_first_token_ms: int
    time_per_token_ms: float
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float


@dataclass(slots=True)
class ObservedExchange:
    """A finished exchange as the sinks get it: the ASGI scope, the Exchange, what the client
    sent and got (status, headers, sizes in bytes, started_at in ms since the epoch), the
    payloads when logging them is on, and the derived :class:`Figures`."""

    scope: Scope
    exchange: Exchange
    status: int
    response_headers: Headers
    request_size: int
    response_size: int
    started_at_ms: int
    streamed: bool
    figures: Figures
    payload_request: bytes | None = None
    payload_response: bytes | None = None
