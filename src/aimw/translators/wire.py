"""What passes between TranslateMiddleware and a wire format (the
:class:`~aimw.types.WireFormat` protocol): the client's call in, the upstream request
out, and the Anthropic answer back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aimw.exchange import Usage

if TYPE_CHECKING:
    from aimw.translators.anthropic.messages import MessagesRequest


@dataclass(frozen=True, slots=True)
class AnthropicCall:
    """One client call of ``POST /v1/messages``, as a wire format builds from it.

    body: the request body (bytes) as StripFields left it.
    request: that body parsed (once per exchange), None for a format that takes the body as is.
    model: the upstream model (AIMW_MODEL, the client's, or the provider's default).
    stream: the client asked for a stream.
    path / query: the client's request path and raw query string.
    """

    body: bytes
    request: MessagesRequest | None
    model: str
    stream: bool
    path: str
    query: bytes


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """The provider request: ``path`` (may depend on model and stream), raw ``query``
    (without ``?``), JSON ``body``."""

    path: str
    query: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class AnthropicAnswer:
    """A non-streaming provider answer translated: the Anthropic Message JSON ``body``, its
    ``usage`` (tokens) and the ``model`` the provider named (None when it named none)."""

    body: bytes
    usage: Usage
    model: str | None
