"""Gemini models on Google Cloud's Vertex AI, with a service account (Kong's Claude Code guide:
ai-proxy-advanced, ``provider: gemini``, ``gcp_use_service_account``, max_tokens 8192).

Source: Vertex AI REST reference, "projects.locations.publishers.models.generateContent"
(``POST https://{endpoint}/v1/projects/{project}/locations/{location}/publishers/google/
models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``, ``Authorization: Bearer``
with an OAuth access token of the cloud-platform scope).
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import google.auth.exceptions

from aimw.google_token import GoogleAccessToken
from aimw.providers import Provider
from aimw.settings import ConfigurationError
from aimw.translators.gemini import Gemini, GeminiOptions

DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_MAX_TOKENS = 8192  # tokens
SERVICE_ACCOUNT_FIELDS = ("type", "client_email", "private_key", "token_uri")


def vertex(project: str, location: str, endpoint: str) -> Provider:
    """The Provider for Vertex AI in ``project`` / ``location`` at ``endpoint``
    (GEMINI_API_ENDPOINT's value). Its credential is not a static secret: the recipe gives it a
    GoogleAccessToken (aimw.google_token).

    Raises:
        ConfigurationError: naming GEMINI_API_ENDPOINT when ``endpoint`` is not as
            :func:`endpoint_base_url` takes it.
    """
    return Provider(
        name="gemini",
        base_url=endpoint_base_url(endpoint),
        wire_format=Gemini(GeminiOptions.vertex(project, location)),
        default_model=DEFAULT_MODEL,
    )


def endpoint_base_url(endpoint: str) -> str:
    """``https://host[:port]`` from GEMINI_API_ENDPOINT: a host such as
    ``us-central1-aiplatform.googleapis.com`` (Vertex AI's regional service endpoint), or
    ``https://`` and the host, with an optional port and trailing ``/``.

    The API version and resource path are the wire format's (``/v1/projects/...``), so a path
    is refused rather than doubled; so is any scheme but https (the access token must not
    travel in clear): AIMW_UPSTREAM_URL is the way to reach a local server over http.

    Raises:
        ConfigurationError: naming GEMINI_API_ENDPOINT and what is wrong.
    """
    value = endpoint.strip()
    if "@" in value:  # not echoed: it may hold a password
        raise ConfigurationError("aimw: GEMINI_API_ENDPOINT must not hold a user name or password before its host")
    scheme, separator, rest = value.partition("://")
    if not separator:
        scheme, rest = "https", value
    if scheme.lower() != "https":
        raise ConfigurationError(
            f"aimw: GEMINI_API_ENDPOINT must be a host or https://host, got {value!r}"
            " (AIMW_UPSTREAM_URL points the gateway at a local http server)"
        )
    netloc = rest.removesuffix("/")
    parts = urlsplit(f"https://{netloc}")
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if not parts.hostname or not port_ok or netloc != parts.netloc or any(c.isspace() for c in netloc):
        raise ConfigurationError(
            f"aimw: GEMINI_API_ENDPOINT must be a host[:port] with no path, got {value!r}"
            " (e.g. us-central1-aiplatform.googleapis.com; the /v1/projects/... path is added)"
        )
    return f"https://{netloc}"


def service_account_info(value: str, variable: str) -> dict[str, object]:
    """A service-account key from ``value``: its JSON text, or the path of a file holding it.

    Raises:
        ConfigurationError: naming ``variable`` and what is wrong (never the key's content).
    """
    text = value
    if not value.lstrip().startswith("{"):
        if not os.path.isfile(value):
            raise ConfigurationError(f"aimw: {variable} is neither a service-account key's JSON nor a readable file")
        try:
            with open(value, encoding="utf-8") as key_file:
                text = key_file.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"aimw: {variable} names a file that is not a service-account key's JSON ({type(exc).__name__})"
            ) from None
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"aimw: {variable} is not valid JSON (line {getattr(exc, 'lineno', '?')})") from None
    if not isinstance(info, dict):
        raise ConfigurationError(f"aimw: {variable} must be a JSON object (a service-account key)")
    missing = [field for field in SERVICE_ACCOUNT_FIELDS if not info.get(field)]
    if missing:
        raise ConfigurationError(f"aimw: {variable} lacks the service-account field(s) {', '.join(missing)}")
    if info["type"] != "service_account":
        raise ConfigurationError(f"aimw: {variable} is a {info['type']!r} key, not a service_account one")
    return info


def vertex_credential(key: str | None, variable: str) -> GoogleAccessToken:
    """The service account in ``key`` (see :func:`service_account_info`), or with no key
    Application Default Credentials.

    Raises:
        ConfigurationError: naming ``variable`` (or ADC) and what is wrong.
    """
    if key is None:
        try:
            return GoogleAccessToken.from_environment()
        except google.auth.exceptions.DefaultCredentialsError:
            raise ConfigurationError(
                f"aimw: {variable} is not set and no Application Default Credentials were found"
            ) from None
    info = service_account_info(key, variable)
    try:
        return GoogleAccessToken.from_service_account_info(info)
    except ValueError as exc:
        raise ConfigurationError(
            f"aimw: {variable} holds a key google-auth cannot use ({type(exc).__name__})"
        ) from None
