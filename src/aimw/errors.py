"""Anthropic error shapes, and the mapping of provider errors onto them.

Anthropic's shape (docs.anthropic.com, "Errors"): ``{"type": "error", "error": {"type": T,
"message": M}}`` with HTTP status 400 invalid_request_error, 401 authentication_error,
402 billing_error, 403 permission_error, 404 not_found_error, 413 request_too_large,
429 rate_limit_error, 500 api_error, 504 timeout_error, 529 overloaded_error.

Provider bodies read here: OpenAI ``{"error": {"message", "type", "code"}}`` (OpenAI API
reference, "Error codes"), Hugging Face TGI/router ``{"error": "...", "error_type": "..."}``,
Google ``{"error": {"code", "message", "status"}}`` (Google AIP-193), Azure OpenAI
``{"error": {"code": "content_filter", "message", "innererror": {"code",
"content_filter_result": {category: {"filtered", "severity"}}}}}`` (Azure OpenAI docs,
"Content filtering"), Anthropic's own shape, or
anything else (HTML, plain text), which is summarised by its status only.
"""

from __future__ import annotations

import re
from types import MappingProxyType

import msgspec

ERROR_TYPE_BY_STATUS = MappingProxyType(
    {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "billing_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        504: "timeout_error",
        529: "overloaded_error",
    }
)

# A provider 503 means "overloaded / model loading" (Hugging Face, OpenAI); Anthropic clients
# retry 529 overloaded_error with backoff, so that is what they get.
_CLIENT_STATUS = MappingProxyType({503: 529})

_SECRET = re.compile(r"(?i)(bearer\s+)[^\s\"',]+|\b(?:hf_|sk-|sk_|AIza|ya29\.)[A-Za-z0-9_\-\.]{6,}")

_MAX_MESSAGE_CHARS = 2000


class GatewayError(Exception):
    """An error aimw answers with itself: ``status`` (HTTP), Anthropic ``error_type``, ``message``."""

    def __init__(self, status: int, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type or error_type_for_status(status)
        self.message = message


def error_type_for_status(status: int) -> str:
    """Anthropic error type for an HTTP status; unknown 4xx -> invalid_request_error, else api_error."""
    known = ERROR_TYPE_BY_STATUS.get(status)
    if known is not None:
        return known
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


# The configured credentials, registered once at start by aimw.credentials: redacted by value
# wherever text leaves the gateway (Azure's 32-hex keys have no shape a pattern could know).
_REGISTERED: set[str] = set()
_REGISTERED_BYTES: list[bytes] = []  # the same, encoded once (header values are bytes)
_MIN_REGISTERED_CHARS = 8  # shorter "secrets" (test placeholders) would redact ordinary words


def register_secret(secret: str) -> None:
    """Redact ``secret`` by value from now on, in this process (configuration, not per request)."""
    if len(secret) >= _MIN_REGISTERED_CHARS and secret not in _REGISTERED:
        _REGISTERED.add(secret)
        _REGISTERED_BYTES.append(secret.encode("utf-8", "surrogateescape"))


def redact(text: str) -> str:
    """Replace the registered secrets and anything shaped like a credential (bearer tokens,
    ``hf_``/``sk-``/``AIza``/``ya29.`` keys) by ``[REDACTED]``."""
    for secret in _REGISTERED:
        if secret in text:
            text = text.replace(secret, "[REDACTED]")
    return _SECRET.sub(lambda m: (m.group(1) or "") + "[REDACTED]", text)


def redact_bytes(data: bytes) -> bytes:
    """:func:`redact` for bytes that may not be UTF-8 (a provider's body); unchanged bytes are
    returned as they are."""
    text = data.decode("utf-8", "surrogateescape")
    redacted = redact(text)
    return data if redacted == text else redacted.encode("utf-8", "surrogateescape")


def redact_registered(data: bytes) -> bytes:
    """Only the registered secrets replaced (a relayed header value: cheap enough for every
    response, as no pattern is run)."""
    for secret in _REGISTERED_BYTES:
        if secret in data:
            data = data.replace(secret, b"[REDACTED]")
    return data


def error_body(error_type: str, message: str) -> bytes:
    """Anthropic error JSON bytes for ``error_type`` and ``message`` (secrets redacted)."""
    return msgspec.json.encode({"type": "error", "error": {"type": error_type, "message": redact(message)}})


class _InnerError(msgspec.Struct):
    code: str | None = None
    content_filter_result: dict[str, object] | None = None


class _ProviderError(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    status: str | int | None = None
    innererror: _InnerError | None = None


class _ProviderErrorBody(msgspec.Struct):
    error: _ProviderError | str | None = None
    error_type: str | None = None
    message: str | None = None
    type: str | None = None


_provider_error_decoder = msgspec.json.Decoder(_ProviderErrorBody)


def provider_error_message(status: int, body: bytes) -> str:
    """The human message inside a provider error ``body``, or a summary naming ``status``."""
    try:
        parsed = _provider_error_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return f"upstream provider answered HTTP {status} with a non-JSON body"
    error = parsed.error
    if isinstance(error, str):
        message = error
    elif error is not None and error.message:
        message = error.message
        detail = error.code if error.code not in (None, "") else error.status
        if detail not in (None, "") and str(detail) not in message:
            message = f"{detail}: {message}"
        filtered = _filtered_categories(error.innererror)
        if filtered:
            message = f"{message} (filtered: {', '.join(filtered)})"
    elif parsed.message:
        message = parsed.message
    else:
        return f"upstream provider answered HTTP {status}"
    return message[:_MAX_MESSAGE_CHARS]


def _filtered_categories(inner: _InnerError | None) -> list[str]:
    """Azure OpenAI's content filter categories that fired (hate, sexual, violence, self_harm, jailbreak …)."""
    if inner is None or not inner.content_filter_result:
        return []
    return [
        name
        for name, result in inner.content_filter_result.items()
        if isinstance(result, dict) and result.get("filtered") is True
    ]


def client_status_for(status: int) -> int:
    """The status a client gets for a provider's ``status`` (503 -> 529, others unchanged)."""
    return _CLIENT_STATUS.get(status, status)


def error_from_provider(status: int, body: bytes) -> tuple[int, bytes]:
    """Map a provider error (``status`` >= 400, raw ``body``) to ``(client_status, anthropic_error_json)``."""
    client_status = client_status_for(status)
    message = provider_error_message(status, body)
    return client_status, error_body(error_type_for_status(client_status), message)


def where_it_failed(exc: BaseException) -> str:
    """``Type at file.py:line`` of the innermost frame: one log line for an unexpected failure,
    instead of a traceback a client could have the gateway print at will."""
    traceback = exc.__traceback__
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    if traceback is None:
        return type(exc).__name__
    code = traceback.tb_frame.f_code
    return f"{type(exc).__name__} at {code.co_filename.rsplit('/', 1)[-1]}:{traceback.tb_lineno}"
