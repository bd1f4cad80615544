"""Google says when to retry in the error body (RetryInfo), never in a header: the answer a
client gets carries it as ``retry-after`` (issue 9)."""

from __future__ import annotations

import json

import pytest

from aimw.middleware.translate import TranslateMiddleware
from aimw.translators.gemini import Gemini
from aimw.translators.openai_chat import OpenAIChat
from tests.asgi_helpers import RecordingSend, ScriptedReceive, http_scope

pytestmark = pytest.mark.anyio

BODY = json.dumps({"model": "x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}).encode()
HEADERS = [(b"content-type", b"application/json")]
EXHAUSTED = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36.4s"}],
    }
}


def provider(status: int, body: dict, headers=()):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": [*HEADERS, *headers]})
        await send({"type": "http.response.body", "body": json.dumps(body).encode(), "more_body": False})

    return app


async def answer(app) -> RecordingSend:
    send = RecordingSend()
    await app(http_scope(body=BODY, headers=HEADERS), ScriptedReceive([BODY]), send)
    return send


async def test_a_google_retry_delay_becomes_retry_after():
    send = await answer(TranslateMiddleware(provider(429, EXHAUSTED), wire_format=Gemini(), default_model="gemini-x"))
    assert send.status == 429
    assert send.header(b"retry-after") == b"37"
    assert json.loads(send.body)["error"]["type"] == "rate_limit_error"


async def test_a_providers_own_retry_after_is_kept():
    app = TranslateMiddleware(
        provider(429, {"error": {"message": "slow down"}}, [(b"retry-after", b"7")]),
        wire_format=OpenAIChat(),
        default_model="m",
    )
    send = await answer(app)
    assert send.header_list.count((b"retry-after", b"7")) == 1


async def test_no_delay_no_header():
    body = {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}
    send = await answer(TranslateMiddleware(provider(400, body), wire_format=Gemini(), default_model="gemini-x"))
    assert send.status == 400 and send.header(b"retry-after") is None
