"""Slow and oversized clients against a real gateway (recipes.huggingface under
``hypercorn --config recipes/hypercorn.toml``): what bounds a request head (Hypercorn's
h11_max_incomplete_size in bytes, its keep_alive_timeout in time, h2_max_header_list_size over
HTTP/2) and a request body (aimw's AIMW_CLIENT_BODY_TIMEOUT: 408 timeout_error, logged), and
that fifty clients trickling bytes do not hold back a normal request.

The head limits are Hypercorn's alone: aimw's ASGI app is called only once a head is whole.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator

import httpx
import pytest

from bench.validate import read_anthropic_stream
from tests.e2e.harness import CLIENT_KEY
from tests.fakes.openai_chat_server import sse_reply, text_chunks
from tests.fuzz_http.conftest import BODY_TIMEOUT, Fuzzed, FuzzServers, clean_output
from tests.fuzz_http.mutations import MESSAGES_BODY
from tests.fuzz_http.wire import Connection, assert_anthropic_error, request_head
from tests.shared_data import REPO

pytestmark = pytest.mark.e2e

SHIPPED = tomllib.loads((REPO / "recipes" / "hypercorn.toml").read_text())
HEAD_LIMIT = SHIPPED["h11_max_incomplete_size"]  # bytes
H2_HEADER_LIST_LIMIT = SHIPPED["h2_max_header_list_size"]  # bytes
KEEP_ALIVE_TIMEOUT = SHIPPED["keep_alive_timeout"]  # seconds
MAX_RECV = 65536  # bytes: Hypercorn reads at most this much at once (hypercorn/asyncio/tcp_server.py)
BODY = json.dumps(MESSAGES_BODY).encode()
SLOW_CLIENTS = 50
TRICKLE_INTERVAL = 0.05  # seconds between two bytes of a slow client


@pytest.fixture
def hf_gateway(fuzz_servers: FuzzServers) -> Iterator[Fuzzed]:
    """recipes.huggingface with the default body time limit (60 s); afterwards up and clean."""
    served = fuzz_servers["huggingface"]
    with clean_output(served.gateway):
        yield served


def no_delay(connection: Connection) -> Connection:
    """Every send its own TCP segment: the gateway sees the bytes as slowly as they are sent."""
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def answered(sock: socket.socket, wait: float = 0.0) -> bool:
    """Whether the gateway wrote or closed (something to read) within ``wait`` seconds."""
    return bool(select.select([sock], [], [], wait)[0])


def trickle_until_answered(connection: Connection, data: bytes, interval: float, give_up: float) -> int:
    """Send ``data`` one byte at a time, ``interval`` seconds apart, until the gateway answers
    or closes; returns how many bytes it took. AssertionError after ``give_up`` seconds or
    when all of ``data`` went unanswered."""
    deadline = time.monotonic() + give_up
    for index in range(len(data)):
        if answered(connection.sock, interval):
            return index
        assert time.monotonic() < deadline, f"the gateway still took bytes after {give_up} s"
        if not connection.send(data[index : index + 1]):
            return index
    raise AssertionError(f"all {len(data)} bytes were taken without an answer")


# ---------------------------------------------------------------- heads


def test_a_head_trickled_past_the_size_limit_is_cut(slow_gateway):
    """h11_max_incomplete_size: a head still incomplete after that many bytes gets an empty
    431 and the connection closes."""
    head = request_head(body_length=len(BODY))[:-2] + b"X-Padding: " + b"a" * (4 * HEAD_LIMIT)
    with no_delay(Connection(slow_gateway.port)) as connection:
        sent = trickle_until_answered(connection, head, interval=0, give_up=KEEP_ALIVE_TIMEOUT)
        response = connection.response()
        assert response is not None and (response.status, response.body) == (431, b""), response
        assert connection.closed_by_server()
    assert HEAD_LIMIT < sent <= HEAD_LIMIT + MAX_RECV


def test_a_head_trickled_past_keep_alive_timeout_is_cut_and_a_long_answer_is_not(slow_gateway):
    """keep_alive_timeout is the time limit on a head: one trickled a byte every 50 ms is closed
    unanswered once it has run out. Meanwhile a silent client's stream that pauses longer than
    it is answered whole (no read_timeout cuts it either)."""
    fake = slow_gateway.fakes[0]
    resume = threading.Event()
    chunks = text_chunks(["A pause ", "longer than ", "keep_alive_timeout."])
    fake.enqueue(sse_reply([*chunks[:2], resume, *chunks[2:]]))
    threading.Timer(KEEP_ALIVE_TIMEOUT + 1, resume.set).start()
    streamed: dict[str, object] = {}
    stream_thread = threading.Thread(target=lambda: streamed.update(answer=_stream_request(slow_gateway)))
    stream_thread.start()

    head = request_head(body_length=len(BODY))
    started = time.monotonic()
    with no_delay(Connection(slow_gateway.port)) as connection:
        sent = trickle_until_answered(connection, head, TRICKLE_INTERVAL, give_up=KEEP_ALIVE_TIMEOUT + 10)
        cut_after = time.monotonic() - started
        assert connection.response() is None  # closed, unanswered
    stream_thread.join(timeout=30)
    assert sent < len(head)
    assert cut_after >= KEEP_ALIVE_TIMEOUT  # the server's timer cannot fire before its time
    response = streamed["answer"]
    assert isinstance(response, httpx.Response) and response.status_code == 200, response
    stream = read_anthropic_stream(response.content)
    assert not stream.problems and stream.text == "A pause longer than keep_alive_timeout.", stream


def _stream_request(gateway: Fuzzed) -> httpx.Response:
    body = {"model": "claude-x", "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=gateway.gateway.url, headers=headers, trust_env=False, timeout=30.0) as client:
        return client.post("/v1/messages", json=body)


def test_an_http2_header_list_past_the_limit_ends_the_connection(slow_gateway):
    """h2_max_header_list_size, over cleartext HTTP/2 (prior knowledge): a header list just
    under it is answered; one past it ends the connection (h2's GOAWAY)."""
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    body = {"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
    url = f"{slow_gateway.gateway.url}/v1/messages"
    with httpx.Client(http1=False, http2=True, trust_env=False, headers=headers, timeout=15.0) as client:
        response = client.post(url, json=body, headers={"x-padding": "a" * (H2_HEADER_LIST_LIMIT - 1024)})
        assert (response.http_version, response.status_code) == ("HTTP/2", 200), response.text
    with (
        httpx.Client(http1=False, http2=True, trust_env=False, headers=headers, timeout=15.0) as client,
        pytest.raises(httpx.RemoteProtocolError, match="ConnectionTerminated"),
    ):
        client.post(url, json=body, headers={"x-padding": "a" * H2_HEADER_LIST_LIMIT})


# ---------------------------------------------------------------- bodies


def test_a_body_trickled_past_the_body_timeout_gets_408(slow_gateway):
    """AIMW_CLIENT_BODY_TIMEOUT (2 s here): a body still incomplete after it is answered 408
    timeout_error in Anthropic's shape, the connection closes, and the exchange is logged with
    status 408."""
    case = f"slow-body-{uuid.uuid4().hex[:8]}"
    with no_delay(Connection(slow_gateway.port)) as connection:
        connection.send(request_head(body_length=len(BODY), extra=[("x-e2e-case", case)]))
        sent = trickle_until_answered(connection, BODY, TRICKLE_INTERVAL, give_up=BODY_TIMEOUT + 10)
        response = connection.response()
        assert response is not None
        error = assert_anthropic_error(response.status, response.body, expected_status=408)
        assert error["type"] == "timeout_error"
        assert connection.closed_by_server()
    assert sent < len(BODY)
    (line,) = slow_gateway.gateway.wait_log_lines(1, case)
    assert line["response"]["status"] == 408, line


# ---------------------------------------------------------------- many slow clients


class SlowClient(threading.Thread):
    """Sends ``prefix`` at once, then ``data`` a byte every 50 ms until told to stop; notes
    whether the gateway answered or closed meanwhile."""

    def __init__(self, port: int, prefix: bytes, data: bytes) -> None:
        super().__init__(daemon=True)
        self.connection = no_delay(Connection(port))
        self.prefix, self.data = prefix, data
        self.trickling = threading.Event()
        self.stop = threading.Event()
        self.answered = False

    def run(self) -> None:
        with self.connection:
            self.connection.send(self.prefix)
            for index in range(len(self.data)):
                self.connection.send(self.data[index : index + 1])
                self.trickling.set()
                if answered(self.connection.sock, TRICKLE_INTERVAL):
                    self.answered = True
                    return
                if self.stop.is_set():
                    return


def test_fifty_slow_clients_do_not_hold_back_a_normal_request(hf_gateway):
    """25 clients trickle their heads and 25 their bodies; a normal request sent meanwhile is
    answered whole while every one of them is still trickling."""
    full = request_head(body_length=len(BODY)) + BODY
    head = request_head(body_length=len(BODY))
    clients = [SlowClient(hf_gateway.port, b"", full) for _ in range(SLOW_CLIENTS // 2)]
    clients += [SlowClient(hf_gateway.port, head, BODY) for _ in range(SLOW_CLIENTS - len(clients))]
    try:
        for client in clients:
            client.start()
        for client in clients:
            assert client.trickling.wait(10), "a slow client could not start"
        response = _stream_request(hf_gateway)
        still_trickling = [not client.answered and client.is_alive() for client in clients]
    finally:
        for client in clients:
            client.stop.set()
        for client in clients:
            client.join(timeout=5)
    assert response.status_code == 200 and not read_anthropic_stream(response.content).problems, response.text
    assert all(still_trickling), f"{still_trickling.count(False)} slow clients were done before the normal request"
