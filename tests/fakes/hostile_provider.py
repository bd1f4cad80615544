"""A hostile provider on loopback: a raw-socket HTTP/1.1 server (one thread per connection)
that records every byte of every request exactly as it arrived, and answers the way the
security tests need an upstream to misbehave.

- ``early=True`` answers as soon as it has a request's headers, without reading its body,
  and keeps the connection alive, the way Go's net/http and Node's http servers do; it then
  reads the body by the framing the gateway sent (``content-length`` or chunked) and parses
  what follows as the next request. A stale ``content-length`` therefore shows: the next
  request's bytes become the tail of this one's body.
- answers are :class:`Answer` objects: a whole body with ``content-length``, or a chunked
  stream whose parts may be ``threading.Event`` gates (held until set, at most
  ``GATE_TIMEOUT``) or float pauses (seconds); any header the test likes (``Set-Cookie``,
  ``Location``, a header echoing a key).
- which answer: the first rule of :meth:`HostileProvider.on` whose marker occurs in the
  request's body (or head, for an early answer), else ``default``.

Requests are recorded when their head arrives (``Seen.complete`` once the body was read), so
"nothing reached the provider" means not even the headers; ``Seen.hung_up`` says the gateway
closed the connection before the whole answer was written; ``connections`` counts accepted
TCP connections. Every socket has a timeout, so no test can hang on this server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

GATE_TIMEOUT = 30.0  # seconds a gated answer waits for the test at most
IDLE_TIMEOUT = 30.0  # seconds a connection may stay silent before the server drops it
MAX_HEAD = 64 * 1024  # bytes of one request head


@dataclass(frozen=True)
class Answer:
    """One answer.

    status / headers: the status line's code and the headers (name, value), sent as given.
    body: a whole body sent with ``Content-Length`` (when ``parts`` is None).
    parts: a chunked body, each bytes item one chunk; a ``threading.Event`` holds the
        stream until set, a float pauses that many seconds.
    close: close the connection after the answer (else keep it alive).
    """

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    parts: tuple[bytes | threading.Event | float, ...] | None = None
    close: bool = False


def json_answer(body: bytes, status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> Answer:
    return Answer(status, (("Content-Type", "application/json"), *headers), body)


@dataclass
class Seen:
    """One request as it reached the provider."""

    connection: int  # index of the TCP connection it came on
    method: str
    target: str  # the request target exactly as sent
    headers: list[tuple[str, str]]  # names as sent
    head: bytes  # the raw request line and headers
    body: bytes = b""
    framing: str = "none"  # content-length | chunked | none
    complete: bool = False  # the body was read to the end of its framing
    problems: list[str] = field(default_factory=list)
    hung_up: bool = False  # the gateway closed the connection before the whole answer was written

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        values = self.values(name)
        return values[0] if values else None

    def names(self) -> set[str]:
        return {key.lower() for key, _ in self.headers}

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query


Rule = tuple[bytes, Callable[[Seen], Answer]]


class HostileProvider:
    """The server; use as a context manager. ``url`` reaches it by IP, ``named_url`` by the
    host name ``localhost`` (aiohttp ignores cookies of IP hosts)."""

    def __init__(self, default: Callable[[Seen], Answer], *, early: bool = False) -> None:
        self.default = default
        self.early = early
        self.requests: list[Seen] = []
        self.connections = 0
        self.rules: list[Rule] = []
        self.gates: list[threading.Event] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle

    def __enter__(self) -> HostileProvider:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="hostile-provider", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping = True
        self.release()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _quietly_close(sock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def named_url(self) -> str:
        return f"http://localhost:{self.port}"

    # -- what the tests set and read

    def on(self, marker: str | bytes, answer: Answer | Callable[[Seen], Answer]) -> None:
        """Answer requests whose body (head for an early answer) contains ``marker`` with ``answer``."""
        make = answer if callable(answer) else (lambda _seen, _answer=answer: _answer)
        with self._lock:
            self.rules.append((marker.encode() if isinstance(marker, str) else marker, make))

    def gate(self) -> threading.Event:
        """An Event to hold a streamed answer with; set by :meth:`release` at the latest."""
        event = threading.Event()
        with self._lock:
            self.gates.append(event)
        return event

    def release(self) -> None:
        with self._lock:
            gates = list(self.gates)
        for event in gates:
            event.set()

    def reset(self) -> None:
        self.release()
        with self._lock:
            self.rules.clear()
            self.gates.clear()
            self.requests.clear()

    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self.requests)

    def seen_with(self, marker: str) -> list[Seen]:
        """The requests whose head or body contains ``marker``."""
        data = marker.encode()
        return [seen for seen in self.seen() if data in seen.head or data in seen.body]

    # -- serving

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping:
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                index = self.connections
                self.connections += 1
                self._sockets.append(sock)
            threading.Thread(target=self._serve, args=(sock, index), name=f"hostile-conn-{index}", daemon=True).start()

    def _answer_for(self, seen: Seen) -> Answer:
        data = seen.head + seen.body
        with self._lock:
            rules = list(self.rules)
        for marker, make in rules:
            if marker in data:
                return make(seen)
        return self.default(seen)

    def _serve(self, sock: socket.socket, index: int) -> None:
        sock.settimeout(IDLE_TIMEOUT)
        reader = _Reader(sock)
        try:
            while not self._stopping:
                head = reader.until(b"\r\n\r\n", MAX_HEAD)
                if head is None:
                    return
                seen = _parse_head(index, head)
                with self._lock:
                    self.requests.append(seen)
                if self.early:
                    answer = self._answer_for(seen)
                    self._write(sock, answer, seen)
                    _read_body(reader, seen)
                else:
                    _read_body(reader, seen)
                    answer = self._answer_for(seen)
                    self._write(sock, answer, seen)
                if answer.close or not seen.complete:
                    return
        except (OSError, ValueError):
            return
        finally:
            _quietly_close(sock)

    def _write(self, sock: socket.socket, answer: Answer, seen: Seen) -> None:
        try:
            self._send_answer(sock, answer)
        except ConnectionError:  # reset or broken pipe: the peer closed its end
            seen.hung_up = True
            raise

    def _send_answer(self, sock: socket.socket, answer: Answer) -> None:
        lines = [f"HTTP/1.1 {answer.status} Hostile"] + [f"{name}: {value}" for name, value in answer.headers]
        if answer.parts is None:
            lines.append(f"Content-Length: {len(answer.body)}")
        else:
            lines.append("Transfer-Encoding: chunked")
        if answer.close:
            lines.append("Connection: close")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if answer.parts is None:
            if answer.body:
                sock.sendall(answer.body)
            return
        for part in answer.parts:
            if isinstance(part, threading.Event):
                part.wait(GATE_TIMEOUT)
            elif isinstance(part, float):
                time.sleep(part)
            elif part:
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        sock.sendall(b"0\r\n\r\n")


class _Reader:
    """Buffered reads of a socket (bytes past what was asked for are kept)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buffer += data
        return True

    def until(self, delimiter: bytes, limit: int) -> bytes | None:
        """Bytes up to and including ``delimiter``; None when the peer closed first."""
        while True:
            end = self.buffer.find(delimiter)
            if end >= 0:
                out = bytes(self.buffer[: end + len(delimiter)])
                del self.buffer[: end + len(delimiter)]
                return out
            if len(self.buffer) > limit or not self._fill():
                return None

    def exactly(self, count: int) -> bytes | None:
        while len(self.buffer) < count:
            if not self._fill():
                return None
        out = bytes(self.buffer[:count])
        del self.buffer[:count]
        return out


def _parse_head(index: int, head: bytes) -> Seen:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    method, target = (parts[0], parts[1]) if len(parts) >= 2 else (lines[0], "")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return Seen(index, method, target, headers, head)


def _read_body(reader: _Reader, seen: Seen) -> None:
    """Read the body by the framing the request declares; record problems (as a strict
    provider would reject them) and mark it complete when it ended where its framing says."""
    encodings = [value.lower() for value in seen.values("transfer-encoding")]
    lengths = seen.values("content-length")
    if encodings and lengths:
        seen.problems.append("both transfer-encoding and content-length")
    if len(lengths) > 1:
        seen.problems.append(f"several content-length headers: {lengths}")
    if encodings:
        seen.framing = "chunked"
        body = bytearray()
        while True:
            line = reader.until(b"\r\n", 1024)
            if line is None:
                return
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while reader.until(b"\r\n", MAX_HEAD) not in (b"\r\n", None):
                    pass  # trailers
                break
            data = reader.exactly(size + 2)
            if data is None:
                seen.body = bytes(body)
                return
            body += data[:-2]
        seen.body, seen.complete = bytes(body), True
    elif lengths:
        seen.framing = "content-length"
        data = reader.exactly(int(lengths[0]))
        if data is None:
            seen.body = bytes(reader.buffer)
            return
        seen.body, seen.complete = data, True
    else:
        seen.complete = True


def _quietly_close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
