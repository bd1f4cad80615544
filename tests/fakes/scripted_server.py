"""The scaffolding every fake provider shares: a threaded HTTP server on loopback that
records each request, runs the provider's checks on it and answers from a scripted queue.

A fake provider subclasses :class:`ScriptedServer` and says what the provider checks
(:meth:`ScriptedServer.check`) and how it answers when the script has run out
(:meth:`ScriptedServer.missing_reply`). :class:`Reply` describes one scripted answer:
JSON, an event stream sent one flushed HTTP chunk per part, a stream cut mid-way, or a
dropped connection.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

GATE_TIMEOUT = 30.0  # seconds a gated stream waits for the test at most

# ---------------------------------------------------------------- replies


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    status / headers: the HTTP status and extra headers (name, value).
    body: a whole body sent with Content-Length (when ``chunks`` is None).
    chunks: a streamed body, each item one HTTP chunk, flushed separately; a
        ``threading.Event`` item holds the stream until the test sets it (at most 30 s).
    cut: after ``chunks`` (or after part of ``body``), close the connection without
        ending the body.
    drop: close the connection without answering at all.
    """

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    chunks: tuple[bytes | threading.Event, ...] | None = None
    cut: bool = False
    drop: bool = False


def json_reply(payload: dict | bytes, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Reply:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Reply(status, (("Content-Type", "application/json"), *headers), body)


def error_reply(
    status: int,
    body: dict | bytes | str,
    *,
    content_type: str = "application/json",
    headers: Iterable[tuple[str, str]] = (),
) -> Reply:
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return Reply(status, (("Content-Type", content_type), *headers), body)


# ---------------------------------------------------------------- the server


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    raw_body: bytes
    body: object = None  # parsed JSON, or None
    problems: list[str] = field(default_factory=list)
    status: int = 0  # what the fake answered

    @property
    def case(self) -> str | None:
        """The test case that sent it (the ``x-e2e-case`` header the tests add)."""
        return self.headers.get("x-e2e-case")


class ScriptedServer:
    """A fake provider on ``127.0.0.1``; use as a context manager or start()/stop().

    Every request is recorded in ``requests`` and every problem :meth:`check` finds is kept
    in ``violations``. A request that passes the checks gets the next scripted reply (see
    :meth:`enqueue`), else what ``responder`` returns, else :meth:`missing_reply` (a
    violation too).

    Subclasses set ``name`` (how violations name the fake), ``thread_name`` and ``answers_head``
    (whether HEAD requests reach :meth:`check`; otherwise the server answers 501 as http.server does).
    """

    name = "fake provider"
    thread_name = "fake-provider"
    answers_head = False

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.responder: Callable[[RecordedRequest], Reply] | None = None
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what a provider checks (overridden)

    def check(self, request: RecordedRequest) -> Reply | None:
        """The provider's answer to a request it rejects (the problems appended to
        ``request.problems``), or None to answer from the script."""
        raise NotImplementedError

    def missing_reply(self, message: str) -> Reply:
        """The answer when no scripted reply is left (``message`` says so)."""
        raise NotImplementedError

    # -- lifecycle

    def start(self):
        handler_base = _HeadAnsweringHandler if self.answers_head else _Handler
        handler = type(f"Bound{type(self).__name__}Handler", (handler_base,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- script

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def pending_replies(self) -> int:
        with self._lock:
            return len(self._replies)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.requests.clear()
            self.violations.clear()
            self.responder = None

    def requests_for(self, case: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.case == case]

    # -- serving (called on the server's threads)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        headers: dict[str, str] = {}
        for name, value in handler.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        raw = _read_body(handler, headers)
        request = RecordedRequest(handler.command, split.path, split.query, headers, raw)
        try:
            request.body = json.loads(raw) if raw else None
        except ValueError:
            request.body = None
        reply = self.check(request)
        with self._lock:
            self.requests.append(request)
            self.violations.extend(f"{request.method} {handler.path}: {problem}" for problem in request.problems)
            if reply is None:
                reply = self._replies.popleft() if self._replies else None
        if reply is None and self.responder is not None:
            reply = self.responder(request)
        if reply is None:
            message = f"{self.name}: no scripted reply left for this request"
            with self._lock:
                self.violations.append(f"{request.method} {handler.path}: {message}")
            reply = self.missing_reply(message)
        request.status = reply.status
        _write_reply(handler, reply)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # the head and the body go out in separate writes: with Nagle's algorithm on, the body
    # waited for the client's delayed ACK (~40 ms per answer)
    disable_nagle_algorithm = True
    fake: ScriptedServer  # set on the bound subclass

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        self.fake.handle(self)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_POST


class _HeadAnsweringHandler(_Handler):
    do_HEAD = _Handler.do_POST


def _read_body(handler: BaseHTTPRequestHandler, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            body += handler.rfile.read(size)
            handler.rfile.readline()
    length = int(headers.get("content-length", "0") or 0)
    return handler.rfile.read(length) if length else b""


def _close(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


def _write_reply(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    try:
        if reply.drop:
            _close(handler)
            return
        handler.send_response(reply.status)
        for name, value in reply.headers:
            handler.send_header(name, value)
        if reply.chunks is None:
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body[: len(reply.body) // 2] if reply.cut else reply.body)
            handler.wfile.flush()
            if reply.cut:
                _close(handler)
            return
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.flush()
        for chunk in reply.chunks:
            if isinstance(chunk, threading.Event):
                chunk.wait(GATE_TIMEOUT)
                continue
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.flush()
        if reply.cut:
            _close(handler)
            return
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
    except OSError:  # the gateway hung up (BrokenPipeError, ConnectionResetError ...)
        handler.close_connection = True
