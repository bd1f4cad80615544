"""The per-request record every aimw middleware shares through ``scope["aimw"]``.

One :class:`Exchange` is created by the outermost aimw middleware that needs it
(:func:`exchange_of`) and filled by the others; FileLogMiddleware turns it into
the log line. Timestamps are ``time.monotonic_ns()`` values (ns), ``0`` when the
moment has not happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aimw.types import Scope

RequestMode = Literal["oneshot", "stream"]


@dataclass(slots=True)
class Usage:
    """Token counts of one exchange (tokens), in Anthropic's terms."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(slots=True)
class Exchange:
    """Everything aimw learns about one request/response pair.

    Fields:
        provider_name: e.g. ``"huggingface"``; set by the provider-aware middlewares.
        request_model: the model sent upstream (after any override).
        response_model: the model the provider says answered.
        request_mode: ``"stream"`` or ``"oneshot"`` (Kong's names).
        received_ns / upstream_sent_ns / upstream_last_byte_ns /
        first_token_ns / responded_ns: monotonic ns timestamps.
        usage: token counts read from the client-facing Anthropic response.
        upstream_uri: the URL requested upstream, without its query string.
        tried_targets: upstream URLs tried, in order (Kong's ``ai.proxy.tried_targets``).
        log_meta: provider-specific log meta (e.g. Kong's ``azure_instance_id``).
        error: a short description of what went wrong, never containing secrets.
        stream_observed: a middleware that wrote the client's stream itself (SSERewrite)
            has filled usage, response_model and first_token_ns, so FileLog need not
            decode the stream again.
    """

    provider_name: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    request_mode: RequestMode | None = None
    received_ns: int = 0
    upstream_sent_ns: int = 0
    upstream_last_byte_ns: int = 0
    first_token_ns: int = 0
    responded_ns: int = 0
    usage: Usage = field(default_factory=Usage)
    upstream_uri: str | None = None
    tried_targets: list[str] = field(default_factory=list)
    log_meta: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    stream_observed: bool = False


def exchange_of(scope: Scope) -> Exchange:
    """Return the request's :class:`Exchange`, creating it at ``scope["aimw"]`` if absent."""
    exchange = scope.get("aimw")
    if exchange is None:
        exchange = scope["aimw"] = Exchange()
    return exchange
