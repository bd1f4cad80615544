"""Provider credentials (the :class:`~aimw.types.Credential` protocol): what
ProviderAuthMiddleware awaits per request and adds to it.

- :class:`HeaderCredential`: a static secret in a header (``Authorization: Bearer …``,
  Azure's ``api-key``, Anthropic's ``x-api-key``, Gemini's ``x-goog-api-key``).
- :class:`QueryCredential`: a static secret as a query parameter (Gemini's ``?key=``).
- ``aimw.google_token.GoogleAccessToken``: an OAuth access token from google-auth, cached and
  refreshed (Vertex AI's service accounts); its own module, so that only the recipes that use
  it load google-auth (about 15 MB of a worker's memory).

None of them shows its secret in ``repr``; each registers it with the redactor
(aimw.errors.register_secret), so it is replaced by ``[REDACTED]`` wherever a provider echoes
it: error messages, relayed headers, the log.
"""

from __future__ import annotations

from urllib.parse import quote

from aimw.errors import register_secret
from aimw.types import Headers


class HeaderCredential:
    """``header: prefix + secret`` on every request (``prefix`` e.g. ``"Bearer "``)."""

    __slots__ = ("_headers", "header")

    def __init__(self, header: str, secret: str, *, prefix: str = "") -> None:
        register_secret(secret)
        self.header = header.lower()
        self._headers: Headers = [(self.header.encode("latin-1"), (prefix + secret).encode("latin-1"))]

    def __repr__(self) -> str:
        return f"HeaderCredential(header={self.header!r}, secret=<redacted>)"

    async def authorization(self) -> tuple[Headers, bytes]:
        return self._headers, b""


class QueryCredential:
    """``name=secret`` appended to every request's query string."""

    __slots__ = ("_query", "name")

    def __init__(self, name: str, secret: str) -> None:
        register_secret(secret)
        self.name = name
        self._query = f"{quote(name, safe='')}={quote(secret, safe='')}".encode()

    def __repr__(self) -> str:
        return f"QueryCredential(name={self.name!r}, secret=<redacted>)"

    async def authorization(self) -> tuple[Headers, bytes]:
        return [], self._query


def bearer(secret: str) -> HeaderCredential:
    """``Authorization: Bearer <secret>`` (OpenAI, Hugging Face, DashScope)."""
    return HeaderCredential("authorization", secret, prefix="Bearer ")
