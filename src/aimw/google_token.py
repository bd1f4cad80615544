"""GoogleAccessToken: the :class:`~aimw.types.Credential` of Vertex AI, an OAuth access token
from google-auth (a service account's key, or Application Default Credentials)."""

from __future__ import annotations

from collections.abc import Mapping

import anyio
import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests
from google.oauth2 import service_account

from aimw.errors import GatewayError, redact
from aimw.types import Headers

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
