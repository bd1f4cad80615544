"""The load generator: its requests, its client connection, and what one run reports."""

from __future__ import annotations

import asyncio
import json

import pytest

from bench.fake_upstream import start_fake_upstream
from bench.http11 import parse_head
from bench.http_client import ClientConnection
from bench.loadgen import LoadConfig, build_request, percentiles_ms, run_load

pytestmark = pytest.mark.anyio


def _split(request: bytes) -> tuple[list[bytes], dict[bytes, bytes], dict]:
    head, _, body = request.partition(b"\r\n\r\n")
    start, fields = parse_head(head)
    assert int(fields[b"content-length"]) == len(body)
    return start, fields, json.loads(body)


def test_anthropic_requests_go_to_messages_with_anthropic_headers():
    start, fields, body = _split(build_request(LoadConfig(port=9, api="anthropic", stream=True)))
    assert start[:2] == [b"POST", b"/v1/messages"]
    assert fields[b"anthropic-version"] == b"2023-06-01" and b"x-api-key" in fields
    assert body["stream"] is True and body["messages"][0]["role"] == "user" and body["max_tokens"] > 0


def test_openai_requests_go_to_chat_completions_and_ask_for_usage_when_streaming():
    start, fields, body = _split(build_request(LoadConfig(port=9, api="openai", stream=True)))
    assert start[:2] == [b"POST", b"/v1/chat/completions"]
    assert fields[b"authorization"] == b"Bearer bench-key"
    assert body["stream_options"] == {"include_usage": True}
    _, _, oneshot = _split(build_request(LoadConfig(port=9, api="openai", stream=False)))
    assert "stream" not in oneshot and "stream_options" not in oneshot


@pytest.mark.parametrize(
    "settings",
    [
        {"host": "10.0.0.1"},
        {"host": "example.com"},
        {"concurrency": 0},
        {"concurrency": 5000},
        {"duration": 0},
        {"api": "gemini"},
        {"validate_every": 0},
    ],
)
def test_config_refuses_what_is_out_of_bounds(settings):
    with pytest.raises(ValueError):
        LoadConfig(port=9, **settings)


def test_percentiles_use_the_nearest_rank_in_milliseconds():
    stats = percentiles_ms([i * 1_000_000 for i in range(1, 101)])
    assert (stats["p50"], stats["p90"], stats["p99"], stats["max"], stats["mean"]) == (50.0, 90.0, 99.0, 100.0, 50.5)
    assert percentiles_ms([3_000_000])["p99"] == 3.0
    assert percentiles_ms([]) is None


async def _serve_canned(response: bytes, *, close: bool = False):
    async def answer(reader, writer):
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(response)
            if close:
                writer.close()
                return

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    ("response", "body"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", b"hello"),
        (b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n", b"hello"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
)
async def test_client_reads_length_chunked_and_empty_bodies_with_keep_alive(response, body):
    server, port = await _serve_canned(response)
    connection = await ClientConnection.open("127.0.0.1", port)
    for _ in range(2):
        got = await connection.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        assert got.body == body and got.status == int(response[9:12])
        assert got.sent_ns <= got.first_byte_ns <= got.done_ns
    connection.close()
    server.close()


async def test_client_reads_a_body_until_close():
    server, port = await _serve_canned(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", close=True)
    connection = await ClientConnection.open("127.0.0.1", port)
    got = await connection.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert got.body == b"until the end"
    await connection.closed
    server.close()


async def test_client_fails_a_response_cut_short():
    server, port = await _serve_canned(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort", close=True)
    connection = await ClientConnection.open("127.0.0.1", port)
    with pytest.raises(ConnectionError):
        await connection.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    server.close()


async def test_client_abort_fails_the_request_in_flight():
    server, port = await _serve_canned(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nslow")
    connection = await ClientConnection.open("127.0.0.1", port)
    future = connection.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert connection.in_flight_since_ns > 0
    await asyncio.sleep(0.05)  # whether the partial answer came or not, abort fails the request
    connection.abort("too slow")
    with pytest.raises(TimeoutError, match="too slow"):
        await future
    server.close()


@pytest.fixture
async def fake_port():
    server, _ = await start_fake_upstream(chunks=6)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_run_against_the_fake_validates_everything_it_samples(fake_port, stream):
    config = LoadConfig(
        port=fake_port, api="openai", stream=stream, concurrency=4, duration=0.3, warmup=0.1, chunks=6, validate_every=1
    )
    result = await run_load(config)
    assert result["requests"] > 0 and result["errors"] == 0 and result["error_counts"] == {}
    assert result["invalid"] == 0 and result["validated"] >= result["requests"]
    assert result["latency_ms"]["p50"] > 0 and result["first_byte_ms"]["p50"] <= result["latency_ms"]["p50"]
    if stream:
        assert result["events"] == result["requests"] * (1 + 6 + 3)  # role, 6 texts, finish, usage, [DONE]
        assert result["first_text_ms"]["p50"] <= result["latency_ms"]["p50"]
    else:
        assert result["events_per_s"] is None and result["first_text_ms"] is None


async def test_a_run_reports_answers_that_differ_from_the_fakes_as_invalid(fake_port):
    config = LoadConfig(
        port=fake_port, api="openai", stream=True, concurrency=2, duration=0.2, warmup=0.0, chunks=5, validate_every=1
    )
    result = await run_load(config)
    assert result["validated"] > 0 and result["invalid"] == result["validated"]
    assert any("text differs" in problem for problem in result["invalid_examples"][0])


async def test_a_run_counts_error_statuses(fake_port):
    config = LoadConfig(
        port=fake_port, api="openai", path="/v1/nowhere", concurrency=2, duration=0.2, warmup=0.0, chunks=6
    )
    result = await run_load(config)
    assert result["requests"] == 0 and result["errors"] > 0
    assert any(kind.startswith("status 404") for kind in result["error_counts"])


async def test_a_run_counts_refused_connections():
    config = LoadConfig(port=1, api="openai", concurrency=1, duration=0.2, warmup=0.0)
    result = await run_load(config)
    assert result["requests"] == 0
    assert any(kind.startswith("connect:") for kind in result["error_counts"])
