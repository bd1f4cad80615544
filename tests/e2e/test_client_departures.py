"""Clients that leave before their answer is complete (issue 11), end to end: raw sockets ->
Hypercorn serving recipes.huggingface (translated) and recipes.anthropic (pass-through) ->
a provider on loopback that holds its answer where the test wants it
(tests/fakes/hostile_provider.py).

Each departure must leave exactly one log line, status 499 (nginx's "client closed
request") with the reason saying when the client left, the ``ai`` block as far as the
request got, the upstream call cancelled (the provider finds its connection closed), the
usage of what was streamed (the provider's when it came, else an estimate marked
``estimated``), and a gateway that goes on serving. Every wait is bounded polling or a
socket timeout, never a fixed sleep.
"""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from aimw.token_estimate import estimate_input_tokens
from aimw.translators.anthropic.messages import request_decoder
from tests.e2e.harness import CLIENT_KEY, HF_TOKEN, GatewayProcess, exact_log_lines, running_gateway
from tests.fakes.anthropic_server import event, good_message_bytes, message_delta, message_start
from tests.fakes.hostile_provider import Answer, HostileProvider, Seen, json_answer
from tests.fakes.openai_chat_server import Chunks, completion

pytestmark = pytest.mark.e2e

GATEWAY_KEY = "sk-ant-api03-" + "DepE2eGw3Lq8Wx2Mp5Zt7Rn"
SOCKET_TIMEOUT = 10.0  # seconds a raw client waits for the gateway (a hang guard)
WAIT = 10.0  # seconds a polled condition may take
TEXT = "The sum of 1 + 1 is 2."  # the default answer's
SSE_HEADERS = (("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"))
CHARS_PER_TOKEN = 3.5  # aimw.token_estimate's rate, restated: the figures below are the estimate's
STREAMED = ("Hello", " there,", " a long", " answer", " begins")  # the text before the provider holds


@dataclass
class Served:
    """A provider that holds answers on request and the gateway in front of it."""

    fake: HostileProvider
    gateway: GatewayProcess
    translated: bool

    @property
    def port(self) -> int:
        return self.gateway.port


def default_answer(seen: Seen) -> Answer:
    if seen.path.endswith("/chat/completions"):
        return json_answer(json.dumps(completion(TEXT)).encode())
    return json_answer(good_message_bytes())


def _serve(tmp_path_factory, name: str, app: str, env: dict[str, str], translated: bool) -> Iterator[Served]:
    with (
        HostileProvider(default_answer) as fake,
        running_gateway(app, {"AIMW_UPSTREAM_URL": fake.url, **env}, tmp_path_factory, name) as gateway,
    ):
        yield Served(fake, gateway, translated)


@pytest.fixture(scope="module")
def translated(tmp_path_factory) -> Iterator[Served]:
    yield from _serve(
        tmp_path_factory, "dep-translated", "recipes.huggingface:app", {"HUGGINGFACE_API_TOKEN": HF_TOKEN}, True
    )


@pytest.fixture(scope="module")
def passthrough(tmp_path_factory) -> Iterator[Served]:
    yield from _serve(
        tmp_path_factory, "dep-passthrough", "recipes.anthropic:app", {"ANTHROPIC_API_KEY": GATEWAY_KEY}, False
    )


@pytest.fixture(params=["translated", "passthrough"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    chosen: Served = request.getfixturevalue(request.param)
    chosen.fake.reset()
    yield chosen
    chosen.fake.release()
    assert chosen.gateway.alive(), chosen.gateway.output()[-4000:]
    assert "Traceback" not in chosen.gateway.output(), chosen.gateway.output()[-4000:]


@pytest.fixture
def case() -> str:
    """A marker in the prompt (the provider's rules find it) and the ``x-e2e-case`` header."""
    return f"dep-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------- the client side


def body_of(case: str, *, stream: bool) -> bytes:
    return json.dumps(
        {
            "model": "claude-x",
            "max_tokens": 1000,
            "stream": stream,
            "system": "You answer arithmetic questions.",
            "messages": [{"role": "user", "content": f"What is 1 + 1? [{case}]"}],
        }
    ).encode()


def request_head(port: int, case: str, content_length: int) -> bytes:
    lines = [
        "POST /v1/messages HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"x-api-key: {CLIENT_KEY}",
        "anthropic-version: 2023-06-01",
        f"x-e2e-case: {case}",
        f"Content-Length: {content_length}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def connect(served: Served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.port), timeout=SOCKET_TIMEOUT)


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    """What the gateway sent up to and including ``marker`` (fails on timeout or close)."""
    received = bytearray()
    while marker not in received:
        data = sock.recv(65536)
        assert data, f"the gateway closed before sending {marker!r}: {bytes(received[-300:])!r}"
        received += data
    return bytes(received)


def wait_for(condition: Callable[[], object], what: str) -> None:
    """Poll ``condition`` until true (bounded by WAIT; not a timing assert)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


# ---------------------------------------------------------------- what the provider holds


def held(gate: threading.Event, parts: list[bytes], tail: list[bytes]) -> Answer:
    """An event stream of ``parts``, held at ``gate``, then ``tail`` (many writes: a provider
    whose connection the gateway closed finds out on the first ones)."""
    return Answer(200, SSE_HEADERS, parts=(*parts, gate, *tail))


def chat_stream(gate: threading.Event, *, early_usage: tuple[int, int] | None = None) -> Answer:
    """A Chat Completions stream of STREAMED, held; with ``early_usage`` (prompt, completion
    tokens) a usage chunk comes before the last piece, as providers with continuous usage
    stats send it (so a client that read the last piece left after the usage came)."""
    chunks = Chunks()
    parts = [chunks.chunk({"role": "assistant", "content": ""})]
    parts += [chunks.chunk({"content": piece}) for piece in STREAMED[:-1]]
    if early_usage is not None:
        parts.append(chunks.usage(*early_usage))
    parts.append(chunks.chunk({"content": STREAMED[-1]}))
    tail = [chunks.chunk({"content": f" word {i}"}) for i in range(20)]
    tail += [chunks.chunk({}, "stop"), chunks.usage(40, 30)]
    return held(gate, [_data(part) for part in parts], [_data(part) for part in tail])


def _data(chunk: dict) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def anthropic_stream(gate: threading.Event, *, input_tokens: int, output_tokens: int | None = None) -> Answer:
    """message_start with ``input_tokens``, a text block of STREAMED; with ``output_tokens``
    the block closes and message_delta reports them before the provider holds."""
    parts = [
        message_start({"input_tokens": input_tokens, "output_tokens": 1}),
        event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    parts += [
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
        )
        for piece in STREAMED
    ]
    tail = [event("ping", {"type": "ping"}) for _ in range(20)]
    if output_tokens is None:
        tail.append(message_delta("end_turn", {"output_tokens": 30}))
    else:
        parts.append(event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        parts.append(message_delta("end_turn", {"output_tokens": output_tokens}))
    tail.append(event("message_stop", {"type": "message_stop"}))
    return held(gate, parts, tail)


def thinking(gate: threading.Event, answer: Answer) -> Callable[[Seen], Answer]:
    """A provider that thinks (sends nothing, not even its headers) until ``gate`` is set."""

    def answer_when_done(_seen: Seen) -> Answer:
        gate.wait(30)
        return answer

    return answer_when_done


# ---------------------------------------------------------------- checks


def departure_line(served: Served, case: str) -> dict:
    """The one log line of ``case``, a departure."""
    (line,) = exact_log_lines(served.gateway, case)
    assert line["response"]["status"] == 499, line["response"]
    return line


def assert_cancelled_upstream(served: Served, case: str, gate: threading.Event) -> None:
    """The provider, let go, finds the gateway closed its connection: the call was cancelled,
    not read to its end into nowhere; and no second log line came of it."""
    gate.set()
    (seen,) = served.fake.seen_with(case)
    wait_for(lambda: seen.hung_up, "the provider to find its connection closed by the gateway")
    departure_line(served, case)


def assert_still_serving(served: Served, case: str) -> None:
    with connect(served) as sock:
        body = body_of(case + "-after", stream=False)
        sock.sendall(request_head(served.port, case + "-after", len(body)) + body)
        assert read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 200")


def assert_zero_usage(line: dict) -> None:
    usage = line["ai"]["proxy"]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (0, 0, 0)
    assert "estimated" not in usage


def expected_model(served: Served) -> str:
    return "meta-llama/Llama-3.3-70B-Instruct" if served.translated else "claude-x"


# ---------------------------------------------------------------- departures


def test_a_client_that_leaves_during_its_upload(served, case):
    body = body_of(case, stream=True)
    with connect(served) as sock:
        sock.sendall(request_head(served.port, case, len(body)) + body[:100])  # then closes

    line = departure_line(served, case)
    meta = line["ai"]["proxy"]["meta"]
    assert meta["error"] == "client closed request during upload (after 100 bytes of its body)"
    assert meta["provider_name"] is None  # no target was chosen: the request never got that far
    assert meta["request_model"] is None and meta["request_mode"] is None
    assert line["ai"]["proxy"]["tried_targets"] == []
    assert line["request"]["size"] == 100
    assert_zero_usage(line)
    assert served.fake.seen() == []  # nothing reached the provider
    assert_still_serving(served, case)


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_a_client_that_leaves_while_the_provider_thinks(served, case, stream):
    gate = served.fake.gate()
    answer = chat_stream(gate) if served.translated else anthropic_stream(gate, input_tokens=25)
    served.fake.on(case, thinking(gate, answer))
    body = body_of(case, stream=stream)
    with connect(served) as sock:
        sock.sendall(request_head(served.port, case, len(body)) + body)
        wait_for(lambda: served.fake.seen_with(case), "the request at the provider")

    line = departure_line(served, case)
    proxy = line["ai"]["proxy"]
    assert proxy["meta"]["error"] == "client closed request while waiting for the provider"
    assert proxy["meta"]["provider_name"] == ("huggingface" if served.translated else "anthropic")
    assert proxy["meta"]["request_model"] == expected_model(served)
    assert proxy["meta"]["request_mode"] == ("stream" if stream else "oneshot")
    [target] = proxy["tried_targets"]
    assert target["failure"] == "client closed request"
    assert line["response"]["headers"] == {}  # nothing was answered
    assert_zero_usage(line)  # nothing came back, nothing is counted
    assert_cancelled_upstream(served, case, gate)
    assert_still_serving(served, case)


def test_a_client_that_leaves_mid_stream_gets_its_output_estimated(served, case):
    gate = served.fake.gate()
    served.fake.on(case, chat_stream(gate) if served.translated else anthropic_stream(gate, input_tokens=25))
    body = body_of(case, stream=True)
    with connect(served) as sock:
        sock.sendall(request_head(served.port, case, len(body)) + body)
        received = read_until(sock, json.dumps(STREAMED[-1]).encode())

    line = departure_line(served, case)
    proxy = line["ai"]["proxy"]
    assert re.fullmatch(r"client closed request mid-stream \(after HTTP 200 and \d+ bytes\)", proxy["meta"]["error"])
    sent = int(proxy["meta"]["error"].split(" and ")[1].split()[0])
    assert 0 < sent <= line["response"]["size"]
    assert received.startswith(b"HTTP/1.1 200")
    assert proxy["meta"]["request_mode"] == "stream"
    assert proxy["tried_targets"][0]["failure"] == "client closed request"
    usage = proxy["usage"]
    assert usage["estimated"] is True
    assert usage["completion_tokens"] == math.ceil(len("".join(STREAMED)) / CHARS_PER_TOKEN)
    if served.translated:  # no usage came: the request's local estimate
        assert usage["prompt_tokens"] == estimate_input_tokens(request_decoder.decode(body))
    else:  # message_start said it
        assert usage["prompt_tokens"] == 25
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert_cancelled_upstream(served, case, gate)
    assert_still_serving(served, case)


def test_a_client_that_leaves_mid_stream_after_the_usage_came_gets_the_providers(served, case):
    gate = served.fake.gate()
    if served.translated:  # the usage chunk comes before the last piece of text
        served.fake.on(case, chat_stream(gate, early_usage=(30, 5)))
        marker = json.dumps(STREAMED[-1]).encode()
    else:  # message_delta said it, message_stop is held
        served.fake.on(case, anthropic_stream(gate, input_tokens=25, output_tokens=7))
        marker = b'"output_tokens":7'
    body = body_of(case, stream=True)
    with connect(served) as sock:
        sock.sendall(request_head(served.port, case, len(body)) + body)
        read_until(sock, marker)

    line = departure_line(served, case)
    usage = line["ai"]["proxy"]["usage"]
    assert "estimated" not in usage
    expected = (30, 5) if served.translated else (25, 7)
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == expected
    assert line["ai"]["proxy"]["meta"]["error"].startswith("client closed request mid-stream")
    assert_cancelled_upstream(served, case, gate)
    assert_still_serving(served, case)
