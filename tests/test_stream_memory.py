"""While a translated answer streams, no aimw layer pins a copy of the request: the client's
body, its parsed form, the translated body and the layers' frames are let go once the
provider has the request; what an early end needs (the input tokens estimate) is kept
(1,000 streams of 50 KB requests at once: README, "Reliability")."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import types

import anyio
import pytest

from aimw.gateway import translated_gateway
from aimw.providers.huggingface import HUGGINGFACE
from aimw.settings import Settings
from tests.asgi_helpers import RecordingSend, ScriptedReceive, http_scope
from tests.fakes.loopback_server import LoopbackServer, chunked, response_head
from tests.test_gateway import CLIENT_HEADERS, upstream_of

pytestmark = pytest.mark.anyio

TEXT = "x" * 50_000  # a Claude Code-sized prompt (characters)
PINNED = 40_000  # bytes: any object this large held by aimw is a copy of the request


def _chunk(content: str, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    return b"data: " + json.dumps({"id": "c1", "model": "m", "choices": [choice]}).encode() + b"\n\n"


def _large_objects_held_by_aimw_frames() -> list[str]:
    """Every local of a suspended aimw coroutine that is (or holds a field) above PINNED bytes."""
    found = []
    for obj in gc.get_objects():
        if not isinstance(obj, types.CoroutineType) or obj.cr_frame is None:
            continue
        code, frame = obj.cr_code, obj.cr_frame
        if "/aimw/" not in code.co_filename:
            continue
        for name, value in frame.f_locals.items():
            if sys.getsizeof(value) > PINNED or any(
                sys.getsizeof(getattr(value, field, None)) > PINNED for field in getattr(value, "__struct_fields__", ())
            ):
                found.append(f"{code.co_qualname}: {name}")
    return found


async def test_no_layer_pins_the_request_while_the_answer_streams(tmp_path):
    body = json.dumps(
        {"model": "any", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": TEXT}]}
    ).encode()
    streaming, finish = asyncio.Event(), asyncio.Event()

    async def provider(request, reader, writer, connection):
        writer.write(response_head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
        writer.write(chunked(_chunk("Hel")))
        await writer.drain()
        await finish.wait()
        writer.write(chunked(_chunk("lo", "stop") + b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()

    class Send(RecordingSend):
        async def __call__(self, message):
            await super().__call__(message)
            if b"Hel" in message.get("body", b""):
                streaming.set()

    async with LoopbackServer(provider) as upstream:
        settings = Settings(upstream_url=upstream.url, log_path=str(tmp_path / "aimw.log"))
        app = translated_gateway(HUGGINGFACE, settings, secret="hf-key")
        scope = http_scope(headers=CLIENT_HEADERS, body=body)
        call = asyncio.create_task(app(scope, ScriptedReceive([body]), send := Send()))
        with anyio.fail_after(10):
            await streaming.wait()
        pinned = _large_objects_held_by_aimw_frames()
        exchange = scope["aimw"]
        finish.set()
        await call
        await upstream_of(app).transport.close()

    assert b"message_stop" in b"".join(m.get("body", b"") for m in send.body_messages)
    assert pinned == []
    assert exchange.request_body is None
    assert exchange.messages_request is None
    assert exchange.input_tokens_estimate >= len(TEXT) / 3.5
