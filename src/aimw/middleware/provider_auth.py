"""ProviderAuthMiddleware: swaps the client's credentials for the provider's.

The client's ``x-api-key`` and ``authorization`` (and the other providers' key headers)
never leave the gateway; the provider's credential is added to every request.
"""

from __future__ import annotations

from aimw.asgi import with_headers
from aimw.types import ASGIApp, Receive, Scope, Send

CREDENTIAL_HEADERS = frozenset(
    (b"authorization", b"x-api-key", b"api-key", b"x-goog-api-key", b"proxy-authorization")
)


class ProviderAuthMiddleware:
    """Replace the request's credentials with ``header: prefix + credential``.

    Args:
        app: the app that calls the provider.
        header: the provider's credential header name (e.g. ``"authorization"``, ``"api-key"``).
        credential: the secret (never logged); None only removes the client's credentials
            (a local server that wants none).
        prefix: text before the credential (``"Bearer "`` for Authorization headers).
    """

    def __init__(self, app: ASGIApp, *, header: str, credential: str | None, prefix: str = "") -> None:
        self.app = app
        self.header = header.lower()
        self._auth = () if credential is None else ((self.header.encode("latin-1"), (prefix + credential).encode("latin-1")),)

    def __repr__(self) -> str:
        return f"ProviderAuthMiddleware(header={self.header!r}, credential=<redacted>)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "headers": with_headers(scope["headers"], drop=CREDENTIAL_HEADERS, add=self._auth)}
        await self.app(scope, receive, send)
