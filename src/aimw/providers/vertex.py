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

import google.auth.exceptions

from aimw.google_token import GoogleAccessToken
from aimw.providers import Provider
from aimw.settings import ConfigurationError
from aimw.translators.gemini import Gemini, GeminiOptions

DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_MAX_TOKENS = 8192  # tokens
SERVICE_ACCOUNT_FIELDS = ("type", "client_email", "private_key", "token_uri")


def vertex(project: str, location: str, endpoint: str) -> Provider:
    """The Provider for Vertex AI in ``project`` / ``location`` at ``endpoint`` (a host such as
    ``us-central1-aiplatform.googleapis.com``, with or without ``https://``). Its credential is
    not a static secret: the recipe gives it a GoogleAccessToken (aimw.google_token)."""
    host = endpoint.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    return Provider(
        name="gemini",
        base_url=f"https://{host}",
        wire_format=Gemini(GeminiOptions.vertex(project, location)),
        default_model=DEFAULT_MODEL,
    )


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
