"""Provider credentials (the :class:`~aimw.types.Credential` protocol): what
ProviderAuthMiddleware awaits per request and adds to it.

- :class:`HeaderCredential`: a static secret in a header (``Authorization: Bearer …``,
  Azure's ``api-key``, Anthropic's ``x-api-key``, Gemini's ``x-goog-api-key``).
- :class:`QueryCredential`: a static secret as a query parameter (Gemini's ``?key=``).
- :class:`GoogleAccessToken`: an OAuth access token from google-auth, cached and refreshed
  (Vertex AI's service accounts).

None of them shows its secret in ``repr``; each registers it with the redactor
(aimw.errors.register_secret), so it is replaced by ``[REDACTED]`` wherever a provider echoes
it: error messages, relayed headers, the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import anyio
import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests
from google.oauth2 import service_account

from aimw.errors import GatewayError, redact, register_secret
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


CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class GoogleAccessToken:
    """``Authorization: Bearer <OAuth access token>`` from google-auth credentials (a service
    account's, or Application Default Credentials), for Vertex AI.

    The token is cached and refreshed by google-auth (``credentials.valid`` turns false a few
    minutes before expiry); a refresh runs in a worker thread, never on the event loop, and
    concurrent requests wait for one refresh. A failed refresh is answered, the next request
    tries again.

    Raises (from :meth:`authorization`):
        GatewayError: 401 authentication_error when the token endpoint refused the
            credentials, 502 api_error when it could not be reached.

    Source: google-auth's ``google.oauth2.service_account.Credentials`` (the JWT-bearer grant
    to the key's ``token_uri``) and ``google.auth.default``.
    """

    __slots__ = ("_credentials", "_lock", "_request")

    def __init__(self, credentials: google.auth.credentials.Credentials) -> None:
        self._credentials = credentials
        self._request = google.auth.transport.requests.Request()
        self._lock = anyio.Lock()

    @classmethod
    def from_service_account_info(cls, info: Mapping[str, object]) -> GoogleAccessToken:
        """From a service-account key (the parsed JSON). Raises ValueError naming a missing field."""
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[CLOUD_PLATFORM_SCOPE]
        )
        return cls(credentials)

    @classmethod
    def from_environment(cls) -> GoogleAccessToken:
        """Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, metadata).
        Raises google.auth.exceptions.DefaultCredentialsError when there are none."""
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        return cls(credentials)

    def __repr__(self) -> str:
        return f"GoogleAccessToken({type(self._credentials).__name__}, token=<redacted>)"

    async def authorization(self) -> tuple[Headers, bytes]:
        credentials = self._credentials
        if not credentials.valid:
            async with self._lock:
                if not credentials.valid:  # another request refreshed it while this one waited
                    await self._refresh()
        return [(b"authorization", b"Bearer " + str(credentials.token).encode("latin-1"))], b""

    async def _refresh(self) -> None:
        try:
            await anyio.to_thread.run_sync(self._credentials.refresh, self._request)
        except google.auth.exceptions.RefreshError as exc:
            raise GatewayError(
                401, f"the Google token endpoint refused the credentials: {redact(str(exc))}", "authentication_error"
            ) from None
        except google.auth.exceptions.TransportError as exc:
            raise GatewayError(
                502, f"the Google token endpoint is unreachable ({type(exc).__name__})", "api_error"
            ) from None
