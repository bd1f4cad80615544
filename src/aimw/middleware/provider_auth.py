"""ProviderAuthMiddleware: swaps the client's credentials for the provider's.

The client's ``x-api-key`` and ``authorization`` (and the other providers' key headers)
never leave the gateway; the provider's credential, awaited per request (a token source
may refresh it), is added to every request: its headers, and its query parameters after
the request's own.
"""

from __future__ import annotations

from aimw.asgi import with_headers
from aimw.types import ASGIApp, Credential, Receive, Scope, Send

CREDENTIAL_HEADERS = frozenset((b"authorization", b"x-api-key", b"api-key", b"x-goog-api-key", b"proxy-authorization"))


class ProviderAuthMiddleware:
    """Replace the request's credentials with ``credential``'s.

    Args:
        app: the app that calls the provider.
        credential: the provider's credential (aimw.credentials), never logged; None only
            removes the client's credentials (a local server that wants none).
    """

    def __init__(self, app: ASGIApp, *, credential: Credential | None) -> None:
        self.app = app
        self.credential = credential

    def __repr__(self) -> str:
        return f"ProviderAuthMiddleware(credential={self.credential!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            add, query = await self.credential.authorization() if self.credential is not None else ([], b"")
            scope = {**scope, "headers": with_headers(scope["headers"], drop=CREDENTIAL_HEADERS, add=add)}
            if query:
                own = scope.get("query_string", b"")
                scope["query_string"] = own + b"&" + query if own else query
        await self.app(scope, receive, send)
