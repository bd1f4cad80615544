"""The gateway mounted inside a Starlette app beside the app's own routes, driven by the
Anthropic Python SDK in process (ASGITransport of httpx2, the SDK's HTTP client): the
composition the README shows."""

from __future__ import annotations

import json

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import anthropic
from aimw import Settings, translated_gateway
from aimw.emulator import EmulatorTransport
from aimw.providers.demo import DEMO

pytestmark = pytest.mark.anyio


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@pytest.fixture
def log_path(tmp_path):
    return tmp_path / "aimw.log"


@pytest.fixture
def http_client(log_path):
    settings = Settings(log_path=str(log_path), allowed_hosts=("app.test",))
    gateway = translated_gateway(DEMO, settings, secret=None, transport=EmulatorTransport())
    app = Starlette(routes=[Route("/health", health), Mount("/claude", app=gateway)])
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://app.test")


async def test_the_sdk_through_a_mounted_gateway(http_client, log_path):
    client = anthropic.AsyncAnthropic(base_url="http://app.test/claude", api_key="x", http_client=http_client)
    message = await client.messages.create(model="any", max_tokens=64, messages=[{"role": "user", "content": "hello"}])
    assert message.content[0].type == "text" and "hello" in message.content[0].text
    async with client.messages.stream(
        model="any", max_tokens=64, messages=[{"role": "user", "content": "again"}]
    ) as stream:
        streamed = await stream.get_final_message()
    assert "again" in streamed.content[0].text and streamed.stop_reason == "end_turn"
    counted = await client.messages.count_tokens(model="any", messages=[{"role": "user", "content": "hello"}])
    assert counted.input_tokens > 0

    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [line["request"]["uri"] for line in lines] == ["/claude/v1/messages"] * 2 + [
        "/claude/v1/messages/count_tokens"
    ]
    assert [line["ai"]["proxy"]["meta"]["request_mode"] for line in lines[:2]] == ["oneshot", "stream"]
    assert all(line["ai"]["proxy"]["usage"]["completion_tokens"] > 0 for line in lines[:2])


async def test_the_apps_own_routes_and_the_gateways_404(http_client, log_path):
    assert (await http_client.get("/health")).json() == {"ok": True}
    missing = await http_client.post("/claude/v1/complete", json={})
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    assert [json.loads(line)["response"]["status"] for line in log_path.read_text().splitlines()] == [404]
