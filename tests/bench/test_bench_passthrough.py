"""The pass-through proxy (the floor of a Python hop): bytes through unchanged."""

from __future__ import annotations

import httpx
import pytest

from bench.answer import Answer
from bench.fake_upstream import start_fake_upstream, stream_events
from bench.net import free_port
from bench.passthrough import PassThroughApp
from bench.validate import check_openai_completion

pytestmark = pytest.mark.anyio
ANSWER = Answer.of(4)
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def proxy():
    server, stats = await start_fake_upstream(chunks=4)
    app = PassThroughApp(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as client:
        yield client, stats
    await app.client.aclose()
    server.close()


async def test_streams_and_answers_pass_unchanged(proxy):
    client, stats = proxy
    stream = await client.post("/v1/chat/completions", json={**BODY, "stream": True})
    oneshot = await client.post("/v1/chat/completions?x=1", json=BODY)
    assert stream.status_code == 200 and stream.content == b"".join(stream_events(ANSWER))
    assert "transfer-encoding" not in stream.headers
    assert oneshot.status_code == 200 and check_openai_completion(oneshot.content, ANSWER) == []
    assert (stats.streams, stats.completions) == (1, 1)


async def test_upstream_errors_pass_with_their_status(proxy):
    client, _ = proxy
    response = await client.post("/v1/embeddings", json=BODY)
    assert response.status_code == 404 and response.json()["error"]["type"] == "invalid_request_error"


async def test_an_unreachable_upstream_is_a_502():
    app = PassThroughApp(f"http://127.0.0.1:{free_port()}")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as client:
        response = await client.post("/v1/chat/completions", json=BODY)
    await app.client.aclose()
    assert response.status_code == 502


async def test_startup_fails_without_an_upstream_url():
    sent = []

    async def receive():
        return {"type": "lifespan.startup"}

    async def send(message):
        sent.append(message)

    await PassThroughApp("")({"type": "lifespan"}, receive, send)
    assert sent[0]["type"] == "lifespan.startup.failed" and "BENCH_UPSTREAM_URL" in sent[0]["message"]
