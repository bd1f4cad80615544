"""Google API errors -> Anthropic errors.

Google's shape (Google AIP-193, "Errors"; the Gemini API's "Troubleshooting" page):
``{"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED", "details": [
{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"} ...]}}``, or a
JSON array of such objects (what streamGenerateContent answers without ``alt=sse``), or the
same object as one event of a 200 stream. The ``status`` (google.rpc.Code) decides the
Anthropic error: INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE 400
invalid_request_error; UNAUTHENTICATED 401 authentication_error; PERMISSION_DENIED 403
permission_error; NOT_FOUND 404 not_found_error; RESOURCE_EXHAUSTED 429 rate_limit_error;
INTERNAL, UNKNOWN, DATA_LOSS 500 api_error; UNAVAILABLE 529 overloaded_error (what
Anthropic clients retry with backoff); DEADLINE_EXCEEDED 504 timeout_error. Others follow
the HTTP status. Google's message is kept, after its status.
"""

from __future__ import annotations

import math
import re
from types import MappingProxyType

import msgspec
from msgspec import Struct

from aimw.errors import GatewayError, client_status_for, error_body, error_from_provider, error_type_for_status

CLIENT_STATUS_BY_GOOGLE_STATUS = MappingProxyType(
    {
        "INVALID_ARGUMENT": 400,
        "FAILED_PRECONDITION": 400,
        "OUT_OF_RANGE": 400,
        "UNAUTHENTICATED": 401,
        "PERMISSION_DENIED": 403,
        "NOT_FOUND": 404,
        "RESOURCE_EXHAUSTED": 429,
        "INTERNAL": 500,
        "UNKNOWN": 500,
        "DATA_LOSS": 500,
        "UNAVAILABLE": 529,
        "DEADLINE_EXCEEDED": 504,
    }
)

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
MAX_MESSAGE_CHARS = 2000
_DURATION = re.compile(r"(\d+(?:\.\d+)?)s")  # google.protobuf.Duration's JSON form


class ErrorDetail(Struct, rename={"type": "@type", "retry_delay": "retryDelay"}):
    type: str | None = None
    retry_delay: str | None = None


class GoogleError(Struct):
    """The ``error`` object (only what is translated)."""

    code: int | None = None
    message: str | None = None
    status: str | None = None
    details: list[ErrorDetail] | None = None


class _ErrorBody(Struct):
    error: GoogleError | None = None


_error_decoder = msgspec.json.Decoder(_ErrorBody | list[_ErrorBody])


def retry_delay_seconds(error: GoogleError) -> int | None:
    """The RetryInfo detail's ``retryDelay`` in whole seconds (rounded up), if there is one."""
    for detail in error.details or ():
        if detail.type == RETRY_INFO and detail.retry_delay:
            match = _DURATION.fullmatch(detail.retry_delay)
            if match:
                return math.ceil(float(match.group(1)))
    return None


def google_error(body: bytes) -> GoogleError | None:
    """The Google error in ``body`` (an object, or the first of an array), else None."""
    try:
        parsed = _error_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if isinstance(parsed, list):
        return next((item.error for item in parsed if item.error is not None), None)
    return parsed.error


def gateway_error(error: GoogleError, http_status: int) -> GatewayError:
    """The Anthropic error for ``error`` (which came with ``http_status``)."""
    status = CLIENT_STATUS_BY_GOOGLE_STATUS.get(error.status or "")
    if status is None:
        status = client_status_for(error.code if http_status < 400 and error.code else http_status)
    message = error.message or f"upstream provider answered HTTP {http_status}"
    if error.status and error.status not in message:
        message = f"{error.status}: {message}"
    delay = retry_delay_seconds(error)
    if delay is not None:
        message = f"{message} (retry after {delay} s)"
    return GatewayError(status, message[:MAX_MESSAGE_CHARS], error_type_for_status(status))


def error_to_anthropic(status: int, body: bytes) -> tuple[int, bytes]:
    """Map a Gemini error answer (``status`` >= 400, raw ``body``) to ``(client status,
    Anthropic error JSON)``. A body that is not Google's shape is mapped by its status."""
    error = google_error(body)
    if error is None:
        return error_from_provider(status, body)
    mapped = gateway_error(error, status)
    return mapped.status, error_body(mapped.error_type, mapped.message)


def retry_after(status: int, body: bytes) -> int | None:
    """Seconds a client should wait before retrying, from a Gemini error answer's RetryInfo
    (Google sends no ``retry-after`` header): for the layer that writes the headers."""
    error = google_error(body) if status >= 400 else None
    return None if error is None else retry_delay_seconds(error)
