"""aimw.wsgi in process: the WSGI application called as a WSGI server calls it (through
wsgiref's PEP 3333 validator), in front of small ASGI apps that record what they see:
the lifespan run once per process, chunks handed over one by one, and a client that
leaves (the server closes the response early) releasing the app's pending send and
receive. tests/e2e/test_wsgi.py runs a recipe under a real gunicorn."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from aimw.types import Message, Receive, Scope, Send
from aimw.wsgi import WSGIGateway, application, asgi_to_wsgi

WAIT = 10.0  # seconds a test waits for the app's thread at most (never reached when it works)


def call(gateway: WSGIGateway, body: bytes = b"{}") -> tuple[list[str], Iterator[bytes]]:
    """Call ``gateway`` as a WSGI server does; the statuses it started and its body iterator."""
    environ: dict = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/v1/messages",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
    }
    setup_testing_defaults(environ)
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info: object = None) -> object:
        statuses.append(status)
        return lambda data: None

    chunks = validator(gateway)(environ, start_response)
    return statuses, iter(chunks)


def whole(chunks: Iterator[bytes]) -> bytes:
    """The whole body, the iterator closed after (as a server does)."""
    try:
        return b"".join(chunks)
    finally:
        chunks.close()  # type: ignore[attr-defined]  # the validator's iterator has close()


def non_empty(chunks: Iterable[bytes]) -> Iterator[bytes]:
    return (chunk for chunk in chunks if chunk)


class Recorder:
    """What an app saw, and a way to wait for it to be done."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.done = threading.Event()

    def wait(self) -> list[str]:
        assert self.done.wait(WAIT), f"the app did not finish: {self.seen}"
        return self.seen


class LifespanApp:
    """Answers the lifespan (``fail`` makes the startup fail) and each request with ``ok``."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.events: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    if self.fail:
                        await send({"type": "lifespan.startup.failed", "message": self.fail})
                        return
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.events.append(f"{scope['method']} {scope['path']}")
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


def test_the_lifespan_starts_with_the_gateway_and_stops_at_close():
    app = LifespanApp()
    gateway = asgi_to_wsgi(app)
    assert app.events == ["lifespan.startup"]
    statuses, chunks = call(gateway)
    assert whole(chunks) == b"ok"
    assert statuses == ["200 OK"]
    assert app.events == ["lifespan.startup", "POST /v1/messages"]
    gateway.close()
    assert app.events == ["lifespan.startup", "POST /v1/messages", "lifespan.shutdown"]


def test_the_first_request_starts_what_nothing_started():
    app = LifespanApp()
    gateway = WSGIGateway(app)
    assert app.events == []
    _, chunks = call(gateway)
    assert whole(chunks) == b"ok"
    assert app.events == ["lifespan.startup", "POST /v1/messages"]
    gateway.close()


def test_a_failed_startup_stops_the_gateway_from_starting():
    with pytest.raises(RuntimeError, match="lifespan startup failed: no upstream pool"):
        asgi_to_wsgi(LifespanApp(fail="no upstream pool"))


def test_an_app_without_lifespan_is_served_without():
    async def http_only(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"made"})

    gateway = asgi_to_wsgi(http_only)
    statuses, chunks = call(gateway)
    assert (statuses, whole(chunks)) == (["201 Created"], b"made")
    gateway.close()


def test_application_imports_module_colon_attribute():
    gateway = application("tests.test_wsgi:NAMED_APP")
    assert gateway.app is NAMED_APP
    _, chunks = call(gateway)
    assert whole(chunks) == b"ok"
    gateway.close()


def test_without_a2wsgi_the_import_says_how_to_install_it():
    completed = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['a2wsgi'] = None; import aimw.wsgi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 1
    assert "ModuleNotFoundError: aimw.wsgi needs a2wsgi: pip install 'aimw[wsgi]'" in completed.stderr


@pytest.mark.parametrize("target", ["recipes.huggingface", ":app", "recipes.huggingface:"])
def test_application_names_its_form_when_given_another(target):
    with pytest.raises(ValueError, match="module:attribute"):
        application(target)


NAMED_APP = LifespanApp()


def test_each_body_message_is_handed_over_as_it_comes():
    """The app sends its second chunk only once the test has received the first: a buffered
    body would leave ``released`` unset until the app gave up waiting."""
    released, recorder = threading.Event(), Recorder()

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"event: one\n\n", "more_body": True})
        recorder.seen.append(f"released: {await asyncio.to_thread(released.wait, WAIT)}")
        await send({"type": "http.response.body", "body": b"event: two\n\n"})
        recorder.done.set()

    gateway = asgi_to_wsgi(streaming)
    _, chunks = call(gateway)
    body = non_empty(chunks)
    assert next(body) == b"event: one\n\n"
    released.set()
    assert list(body) == [b"event: two\n\n"]
    chunks.close()  # type: ignore[attr-defined]
    assert recorder.wait() == ["released: True"]
    gateway.close()


def test_a_client_that_leaves_releases_the_pending_send_and_receive():
    """The server closes the response after the first chunk (its write failed): the app's
    watch's pending receive gets http.disconnect, then its send of that chunk returns, and
    later sends return without sending; the gateway serves the next request."""
    recorder = Recorder()

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        watch = asyncio.create_task(receive())  # as aimw's client-departure watch does
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        if body == b"short":  # the next client: one chunk and the end
            await send({"type": "http.response.body", "body": b"whole answer"})
            await watch
            return
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        recorder.seen.append(f"first sent; the watch had its answer: {watch.done()}")
        disconnect: Message = await watch
        recorder.seen.append(disconnect["type"])
        await send({"type": "http.response.body", "body": b"never", "more_body": True})
        recorder.seen.append(f"then receive: {(await receive())['type']}")
        recorder.done.set()

    gateway = asgi_to_wsgi(watched)
    _, chunks = call(gateway)
    assert next(non_empty(chunks)) == b"first"
    chunks.close()  # type: ignore[attr-defined]  # the validator's iterator has close()
    assert recorder.wait() == [
        "first sent; the watch had its answer: True",
        "http.disconnect",
        "then receive: http.disconnect",
    ]
    statuses, chunks = call(gateway, b"short")
    assert (statuses, whole(chunks)) == (["200 OK"], b"whole answer")
    gateway.close()
