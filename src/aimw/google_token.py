"""GoogleAccessToken: the :class:`~aimw.types.Credential` of Vertex AI, an OAuth access token
from google-auth (a service account's key, or Application Default Credentials)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport
import google.auth.transport.requests
from google.oauth2 import service_account

from aimw.errors import GatewayError, redact
from aimw.types import Headers

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_REQUEST_TIMEOUT = 30.0  # seconds to connect to the token endpoint, and between two reads of its answer


class _TokenEndpoint(google.auth.transport.Request):
    """google-auth's HTTP transport (``requests``) for token requests, bounded, keeping the
    status of the last answer (google-auth's RefreshError does not carry it).

    Each request waits at most ``timeout`` seconds to connect and between two reads (the
    ``requests`` timeout; a smaller one google-auth asks for is kept). ``status`` is the last
    answer's HTTP status, 0 when there was none (unreachable, timed out). One refresh uses it
    at a time (GoogleAccessToken's lock).
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.status = 0
        self._transport = google.auth.transport.requests.Request()

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> google.auth.transport.Response:
        self.status = 0
        bounded = self.timeout if timeout is None else min(timeout, self.timeout)
        response: google.auth.transport.Response = self._transport(
            url, method, body, headers, timeout=bounded, **kwargs
        )
        self.status = response.status
        return response


class GoogleAccessToken:
    """``Authorization: Bearer <OAuth access token>`` from google-auth credentials (a service
    account's, or Application Default Credentials), for Vertex AI.

    The token is cached and refreshed by google-auth (``credentials.valid`` turns false a few
    minutes before expiry); a refresh runs in a worker thread, never on the event loop. The
    requests that arrive while a refresh runs wait for it and take its outcome: its token, or
    its failure at once (they do not each try again, one after another, behind a failing
    endpoint); the next request after a failure tries again. The refresh count and last
    failure are per credential, so per process, like the token itself.

    Each request to the token endpoint waits at most ``timeout`` seconds (default
    TOKEN_REQUEST_TIMEOUT, 30 s) to connect and between two reads. google-auth tries a grant up
    to 3 times when the endpoint answers 408, 429, 500, 503 or 504 (about 1 s, then 2 s apart),
    so one refresh lasts at most about 3 x ``timeout`` + 3 s.

    Raises (from :meth:`authorization`):
        GatewayError: 401 authentication_error when the token endpoint refused the grant (a
            4xx google-auth does not retry: invalid_grant, invalid_client ..., a revoked or
            deleted key); 502 api_error otherwise (a 5xx, a 429, an answer without a token, an
            endpoint unreachable or silent for ``timeout`` seconds), which Anthropic clients
            retry.

    Source: google-auth's ``google.oauth2.service_account.Credentials`` (the JWT-bearer grant
    to the key's ``token_uri``), ``google.oauth2._client`` (its retries) and
    ``google.auth.default``; RFC 6749 section 5.2 (a refused grant is a 400, or a 401 for
    invalid_client).
    """

    __slots__ = ("_credentials", "_endpoint", "_failure", "_lock", "_refreshes")

    def __init__(
        self, credentials: google.auth.credentials.Credentials, *, timeout: float = TOKEN_REQUEST_TIMEOUT
    ) -> None:
        self._credentials = credentials
        self._endpoint = _TokenEndpoint(timeout)
        self._lock = anyio.Lock()
        self._refreshes = 0  # refreshes that ended, succeeded or failed
        self._failure: GatewayError | None = None  # the last one's failure, None when it succeeded

    @classmethod
    def from_service_account_info(
        cls, info: Mapping[str, object], *, timeout: float = TOKEN_REQUEST_TIMEOUT
    ) -> GoogleAccessToken:
        """From a service-account key (the parsed JSON); ``timeout`` as for the class. Raises
        ValueError naming a missing field."""
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[CLOUD_PLATFORM_SCOPE]
        )
        return cls(credentials, timeout=timeout)

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
            refreshes = self._refreshes  # the refreshes that had ended when this request came
            async with self._lock:
                if self._refreshes == refreshes:  # none ended while it waited: it refreshes
                    await self._refresh()
                elif self._failure is not None:  # the refresh it waited for failed: that answer
                    raise GatewayError(self._failure.status, self._failure.message, self._failure.error_type)
        return [(b"authorization", b"Bearer " + str(credentials.token).encode("latin-1"))], b""

    async def _refresh(self) -> None:
        """One refresh (under the lock); its outcome is counted and a failure kept for the
        requests waiting on it. A cancelled refresh counts for nothing: they try their own."""
        self._endpoint.status = 0
        try:
            await anyio.to_thread.run_sync(self._credentials.refresh, self._endpoint)
        except google.auth.exceptions.GoogleAuthError as exc:  # RefreshError, TransportError ...
            self._failure = self._error_for(exc)
            self._refreshes += 1
            raise GatewayError(self._failure.status, self._failure.message, self._failure.error_type) from None
        self._failure = None
        self._refreshes += 1

    def _error_for(self, exc: google.auth.exceptions.GoogleAuthError) -> GatewayError:
        """The client's answer for a failed refresh (see the class's Raises), by the status of
        the token endpoint's last answer: a 5xx page's body is not repeated."""
        status = self._endpoint.status
        if isinstance(exc, google.auth.exceptions.RefreshError) and 400 <= status < 500 and not exc.retryable:
            detail = redact(str(exc.args[0])) if exc.args else f"HTTP {status}"
            return GatewayError(
                401, f"the Google token endpoint refused the credentials: {detail}", "authentication_error"
            )
        if status:
            return GatewayError(502, f"the Google token endpoint gave no access token (HTTP {status})", "api_error")
        cause = type(exc.__cause__ or exc).__name__
        return GatewayError(
            502,
            f"the Google token endpoint is unreachable or did not answer within {self._endpoint.timeout:g} s ({cause})",
            "api_error",
        )
