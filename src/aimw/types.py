"""ASGI type aliases (ASGI 3.0 spec, asgi.readthedocs.io) and the Protocols that join aimw's
parts: a :class:`WireFormat` and its :class:`StreamTranslator`, a provider
:class:`Credential`, and an observer's :class:`Sink`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aimw.exchange import ObservedExchange, Usage
    from aimw.translators.wire import AnthropicAnswer, AnthropicCall, UpstreamRequest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
"""ASGI header list: lower-case names (ASGI spec, "HTTP Connection Scope")."""


class StreamTranslator(Protocol):
    """One provider event stream turned into Anthropic's, read by read (never buffered).

    ``feed(chunk)`` takes raw provider bytes, split anywhere, and returns the Anthropic SSE
    bytes they complete (possibly ``b""``); ``finish()`` the closing events once the provider's
    body has ended; ``fail(error_type, message)`` the ``event: error`` that ends a stream the
    provider broke off (``b""`` when the answer was already complete). What the stream said
    is readable as it goes: ``usage`` (cumulative, tokens), ``model`` (the provider's, once
    named), ``has_content`` (a content block was emitted), ``error`` (an in-stream error, for
    the log), ``content_chars`` (characters of content written so far: text, thinking, tool
    input JSON; JSON-escaped for a stream passed through), from which the output is
    estimated when the stream ends before the provider's usage came. ``cut`` turns True
    once the translator itself ended the stream with ``event: error`` before the provider's
    body ended (an oversized or unreadable event, a translated provider's in-stream error):
    it writes nothing more, so the rest of the body need not be read. ``rewrites_headers``
    is False for a stream passed through byte for byte.
    """

    rewrites_headers: bool

    @property
    def usage(self) -> Usage: ...

    @property
    def model(self) -> str | None: ...

    @property
    def has_content(self) -> bool: ...

    @property
    def error(self) -> str | None: ...

    @property
    def content_chars(self) -> int: ...

    @property
    def cut(self) -> bool: ...

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    def fail(self, error_type: str, message: str) -> bytes: ...


class Credential(Protocol):
    """A provider credential, awaited once per upstream request (a token source may refresh).

    ``authorization()`` returns ``(headers, query)``: header pairs to add (lower-case names)
    and query parameters to append (``name=value``, percent-encoded), either possibly empty.
    ``__repr__`` never shows the secret.
    """

    async def authorization(self) -> tuple[Headers, bytes]: ...


class Sink(Protocol):
    """Where a finished exchange goes (the Kong file log; metrics and traces later).
    ``emit`` runs once per exchange, after the last byte; it must not raise."""

    def emit(self, observed: ObservedExchange) -> None: ...


class WireFormat(Protocol):
    """One wire format a provider speaks, Anthropic being the hub (translators/).

    ``name``: e.g. ``"openai_chat"``. ``passthrough``: the format is Anthropic's own, so the
    client's ``anthropic-*`` headers go upstream and the provider's response headers all
    come back. ``parses_request``: build_request needs the parsed Messages request.

    - ``build_request(call)`` -> the upstream path, query and body for one call.
      Raises GatewayError 400 for content the format cannot carry.
    - ``response_to_anthropic(body, model)`` -> the Anthropic Message for a 2xx JSON answer.
      Raises GatewayError 502 for an answer that is not one of the format's.
    - ``error_to_anthropic(status, body)`` -> (client status, Anthropic error JSON).
    - ``retry_after(status, body)`` -> seconds to wait that the error body says (Google's
      RetryInfo), for a ``retry-after`` header; None when it says none.
    - ``new_stream(model)`` -> the translator of one 2xx event stream.
    """

    name: str
    passthrough: bool
    parses_request: bool

    def build_request(self, call: AnthropicCall) -> UpstreamRequest: ...

    def response_to_anthropic(self, body: bytes, model: str) -> AnthropicAnswer: ...

    def error_to_anthropic(self, status: int, body: bytes) -> tuple[int, bytes]: ...

    def retry_after(self, status: int, body: bytes) -> int | None: ...

    def new_stream(self, model: str) -> StreamTranslator: ...
