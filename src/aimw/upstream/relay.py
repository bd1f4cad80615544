"""Relaying a provider's answer to ASGI ``send``, read by read, with the response headers
a client may see."""

from __future__ import annotations

import time

import httpx

from aimw.exchange import Attempt
from aimw.types import Headers, Send
from aimw.upstream.failures import mapped_transport_errors

# Hop-by-hop fields (RFC 9110 §7.6.1); date/server, which the serving gateway sets itself;
# cookies, which are the gateway's business with the provider, never its clients'.
NOT_RELAYED_RESPONSE_HEADERS = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"upgrade",
        b"trailer",
        b"proxy-connection",
        b"date",
        b"server",
        b"set-cookie",
    )
)
_AFTER_ANSWER_STARTED = mapped_transport_errors(answer_started=True)


def response_headers(response: httpx.Response, model_header: str | None) -> Headers:
    """The provider's headers in ASGI form (lower-case: httpx keeps the provider's spelling),
    without NOT_RELAYED_RESPONSE_HEADERS, plus ``x-aimw-llm-model: <provider>/<model>``
    (Kong's X-Kong-LLM-Model) when ``model_header`` is printable ASCII."""
    headers = [
        (name, value)
        for name, value in ((name.lower(), value) for name, value in response.headers.raw)
        if name not in NOT_RELAYED_RESPONSE_HEADERS
    ]
    if model_header and model_header.isascii() and model_header.isprintable():
        headers.append((b"x-aimw-llm-model", model_header.encode()))
    return headers


async def relay(response: httpx.Response, send: Send, attempt: Attempt, model_header: str | None) -> None:
    """Send ``response`` as ``http.response.start`` and one body message per read.

    Raises:
        UpstreamBrokeOff: the body stopped before its end (after the start was sent).
    """
    attempt.status = response.status_code
    attempt.first_byte_ns = time.monotonic_ns()
    headers = response_headers(response, model_header)
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    try:
        with _AFTER_ANSWER_STARTED:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        attempt.last_byte_ns = time.monotonic_ns()
    await send({"type": "http.response.body", "body": b"", "more_body": False})
