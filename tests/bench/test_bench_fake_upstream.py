"""The fake OpenAI upstream: answers, framing, keep-alive, and what it refuses."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest

from bench.answer import Answer
from bench.fake_upstream import EncodedResponses, start_fake_upstream, stream_events
from bench.http11 import ChunkedDecoder
from bench.http_client import ClientConnection
from bench.validate import check_openai_completion, check_openai_stream
from tests.shared_data import REPO

CHUNKS = 9
ANSWER = Answer.of(CHUNKS)
pytestmark = pytest.mark.anyio


def request(body: dict, path: str = "/v1/chat/completions", extra: bytes = b"") -> bytes:
    payload = json.dumps(body).encode()
    return b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n%scontent-length: %d\r\n\r\n%s" % (
        path.encode(), extra, len(payload), payload,
    )  # fmt: skip


STREAM = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
ONESHOT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def upstream():
    server, stats = await start_fake_upstream(chunks=CHUNKS)
    port = server.sockets[0].getsockname()[1]
    yield port, stats
    server.close()
    await server.wait_closed()


async def test_a_stream_request_gets_the_whole_answer_as_chunks(upstream):
    port, stats = upstream
    connection = await ClientConnection.open("127.0.0.1", port)
    response = await connection.send(request(STREAM))
    connection.close()
    assert response.status == 200
    assert response.body == b"".join(stream_events(ANSWER))
    assert check_openai_stream(response.body, ANSWER) == []
    assert stats.streams == 1 and stats.completions == 0


async def test_stream_frames_are_one_chunk_per_event_and_one_write_each():
    responses = EncodedResponses.of(ANSWER)
    head, *frames = responses.stream_writes
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in head
    assert len(frames) == CHUNKS + 4  # role, text chunks, finish, usage, [DONE]
    decoder = ChunkedDecoder()
    assert [decoder.feed(frame) for frame in frames] == [[event] for event in stream_events(ANSWER)]
    assert decoder.done


async def test_a_non_stream_request_gets_one_completion(upstream):
    port, stats = upstream
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        response = await client.post("/v1/chat/completions", json=ONESHOT)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    assert check_openai_completion(response.content, ANSWER) == []
    assert response.json()["choices"][0]["message"]["content"] == ANSWER.text
    assert stats.completions == 1


async def test_keep_alive_serves_many_requests_on_one_connection(upstream):
    port, stats = upstream
    connection = await ClientConnection.open("127.0.0.1", port)
    for body in (STREAM, ONESHOT, STREAM, ONESHOT):
        response = await connection.send(request(body))
        assert response.status == 200
    assert connection.is_open
    connection.close()
    assert (stats.streams, stats.completions) == (2, 2)


async def test_a_chunked_request_body_split_anywhere_is_read(upstream):
    port, stats = upstream
    payload = json.dumps(STREAM).encode()

    async def pieces():
        for start in range(0, len(payload), 7):
            yield payload[start : start + 7]

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        response = await client.post(
            "/v1/chat/completions", content=pieces(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 200
    assert check_openai_stream(response.content, ANSWER) == []
    assert stats.streams == 1


async def test_pipelined_requests_get_answers_in_order(upstream):
    port, _ = upstream
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request(ONESHOT) + request(ONESHOT, path="/nowhere", extra=b"connection: close\r\n"))
    received = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert received.count(b"HTTP/1.1 ") == 2
    assert received.index(b"200 OK") < received.index(b"404 Not Found")


async def test_other_paths_get_an_openai_404_and_head_gets_no_body(upstream):
    port, stats = upstream
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        missing = await client.post("/v1/embeddings", json=ONESHOT)
        head = await client.head("/")
        again = await client.post("/v1/chat/completions", json=ONESHOT)  # the same connection still works
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert head.status_code == 404 and head.content == b""
    assert again.status_code == 200
    assert stats.not_found == 2


async def test_a_malformed_request_gets_400_and_the_connection_closed(upstream):
    port, stats = upstream
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\ncontent-length: nope\r\n\r\n")
    received = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert received.startswith(b"HTTP/1.1 400 Bad Request")
    assert stats.bad_requests == 1


async def test_coalesced_streams_send_the_same_bytes():
    server, _ = await start_fake_upstream(chunks=CHUNKS, coalesce=True)
    port = server.sockets[0].getsockname()[1]
    try:
        connection = await ClientConnection.open("127.0.0.1", port)
        response = await connection.send(request(STREAM))
        connection.close()
    finally:
        server.close()
    assert response.body == b"".join(stream_events(ANSWER))


async def test_it_refuses_to_listen_beyond_loopback():
    with pytest.raises(ValueError, match="loopback"):
        await start_fake_upstream("0.0.0.0")


def test_the_command_prints_its_port_and_serves():
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_upstream", "--port", "0", "--chunks", "3"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        response = httpx.post(line.split()[-1] + "/v1/chat/completions", json=ONESHOT, timeout=10)
        assert check_openai_completion(response.content, Answer.of(3)) == []
    finally:
        process.terminate()
        process.wait(10)
