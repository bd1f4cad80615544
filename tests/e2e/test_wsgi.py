"""aimw under a real WSGI server: gunicorn serving ``aimw.wsgi:application("recipes.huggingface:app")``
(a real process on a free loopback port) in front of the fake Hugging Face router, driven by
the Anthropic Python SDK, stream and non-stream.

Two gunicorn set-ups: sync workers (one request at a time per worker), and gthread workers
with ``--preload`` (the app, and aimw's loop thread with it, made in the master before the
fork: each worker must start its own). A stream must reach the client event by event: the
fake holds the rest of its stream until the client has seen the first text delta.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

import anthropic
from tests.e2e.harness import (
    CLIENT_KEY,
    START_TIMEOUT,
    GatewayProcess,
    assert_log_usage,
    checked_fake,
    exact_log_lines,
    leave_mid_stream,
    sdk_client,
)
from tests.e2e.recipes import HUGGINGFACE, Usage
from tests.e2e.scenarios import MODEL, USER, assert_still_serving
from tests.fakes.openai_chat_server import Chunks, FakeChatServer, sse_reply
from tests.shared_data import REPO

pytestmark = pytest.mark.e2e

WSGI_APP = 'aimw.wsgi:application("recipes.huggingface:app")'
GUNICORN_SETUPS = {
    "sync": ("--worker-class", "sync", "--timeout", "60"),
    "gthread-preload": ("--worker-class", "gthread", "--threads", "4", "--preload"),
}
CLIENT_TIMEOUT = 15.0  # seconds: a gateway that buffered the stream would make the client wait for the fake's 30 s


class GunicornProcess(GatewayProcess):
    """``gunicorn <setup> --bind 127.0.0.1:<free port> WSGI_APP`` run from the repository, one
    worker, its HOME in its own directory (gunicorn 27 keeps a control socket there)."""

    def __init__(self, setup: tuple[str, ...], env: dict[str, str], workdir: Path) -> None:
        super().__init__(WSGI_APP, env, workdir)
        self.setup = setup
        self.env["HOME"] = str(workdir)

    def start(self) -> GunicornProcess:
        command = [sys.executable, "-m", "gunicorn", *self.setup, "--workers", "1"]
        command += ["--bind", f"127.0.0.1:{self.port}", WSGI_APP]
        with open(self.output_path, "wb") as output:
            self.process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready():
            assert time.monotonic() < deadline, f"gunicorn did not accept connections:\n{self.output()}"
            time.sleep(0.05)
        return self


class Gate(threading.Event):
    """A stream gate (the fake waits on it, at most 30 s) that remembers whether the fake gave up."""

    def __init__(self) -> None:
        super().__init__()
        self.gave_up = False

    def wait(self, timeout: float | None = None) -> bool:
        released = super().wait(timeout)
        self.gave_up = self.gave_up or not released
        return released


@pytest.fixture(scope="module")
def fake_router() -> Iterator[FakeChatServer]:
    with HUGGINGFACE.new_fake() as fake:
        yield fake


@pytest.fixture(scope="module", params=sorted(GUNICORN_SETUPS))
def gunicorn(
    request: pytest.FixtureRequest, fake_router: FakeChatServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornProcess]:
    setup = GUNICORN_SETUPS[request.param]
    with ExitStack() as stack:
        gateway = GunicornProcess(setup, HUGGINGFACE.env(fake_router.url), tmp_path_factory.mktemp(request.param))
        stack.callback(gateway.stop)
        yield gateway.start()


@pytest.fixture
def fake(fake_router, gunicorn, request) -> Iterator[FakeChatServer]:
    with checked_fake(fake_router, [gunicorn], request) as server:
        yield server


@pytest.fixture
def client(gunicorn: GunicornProcess, case: str) -> anthropic.Anthropic:
    return sdk_client(gunicorn.url, case).with_options(timeout=CLIENT_TIMEOUT)


def test_non_stream(client, fake, gunicorn, case):
    fake.enqueue(HUGGINGFACE.completion("Two.", Usage(21, 3)))
    message = client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert [block.text for block in message.content] == ["Two."]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (21, 3)
    (line,) = exact_log_lines(gunicorn, case)
    assert line["response"]["status"] == 200
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "oneshot"
    assert line["request"]["headers"]["x-e2e-case"] == case
    assert CLIENT_KEY not in gunicorn.log_text()
    assert_log_usage(line, 21, 3)


def test_stream_arrives_event_by_event(client, fake, gunicorn, case):
    gate, chunks = Gate(), Chunks()
    fake.enqueue(
        sse_reply(
            [
                chunks.chunk({"content": "", "role": "assistant"}),
                chunks.chunk({"content": "First words, "}),
                gate,
                chunks.chunk({"content": "then the rest."}),
                chunks.chunk({}, "stop"),
                chunks.usage(30, 7),
            ]
        )
    )
    deltas_before_release = []
    with client.messages.stream(model=MODEL, max_tokens=64, messages=USER) as stream:
        for event in stream:
            if event.type == "content_block_delta" and not gate.is_set():
                deltas_before_release.append(event.delta.text)
                gate.set()  # the fake sends the rest only now
        message = stream.get_final_message()
    assert deltas_before_release == ["First words, "]
    assert not gate.gave_up
    assert message.content[0].text == "First words, then the rest."
    assert (message.stop_reason, message.usage.output_tokens) == ("end_turn", 7)
    (line,) = exact_log_lines(gunicorn, case)
    assert line["response"]["status"] == 200
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "stream"
    assert_log_usage(line, 30, 7)
    assert line["ai"]["proxy"]["usage"]["time_to_first_token"] <= line["ai"]["proxy"]["meta"]["llm_latency"]


def test_client_leaving_mid_stream_is_logged_and_the_worker_keeps_serving(fake, gunicorn, case):
    """WSGI has no disconnect notice: the server sees the departure when a write fails, once
    the fake sends again; aimw then logs the exchange as 499 and the worker serves on."""
    gate, chunks = Gate(), Chunks()
    fake.enqueue(
        sse_reply(
            [chunks.chunk({"content": "", "role": "assistant"}), chunks.chunk({"content": "first words "}), gate]
            + [chunks.chunk({"content": f"word {i} " * 20}) for i in range(200)]
            + [chunks.chunk({}, "stop"), chunks.usage(10, 52)]
        )
    )
    try:
        leave_mid_stream(gunicorn.url, MODEL, USER, case, b"first words", CLIENT_TIMEOUT)
    finally:
        gate.set()
    (line,) = exact_log_lines(gunicorn, case)
    assert line["response"]["status"] == 499
    assert line["ai"]["proxy"]["meta"]["error"].startswith("client closed request mid-stream")
    assert_still_serving(gunicorn, fake, case, HUGGINGFACE.completion("still serving", Usage(3, 2)), USER)
