"""HTTP/1.1 spoken over raw sockets, so that the tests can send what no HTTP client would
(broken framing, bodies that stop, bytes trickled one at a time) and read whatever comes
back, and the checks every answer of the fuzzed gateway must pass.

Answers are parsed as RFC 9112 frames them: a status line, header lines, then a body of
``content-length`` bytes, or chunked, or up to the close.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.validate import read_anthropic_stream
from tests.e2e.harness import CLIENT_KEY

READ_TIMEOUT = 15.0  # seconds an answer may take to arrive (a bound on a hang, not a timing assert)
ANTHROPIC_ERROR_TYPES = frozenset(
    (
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "timeout_error",
        "api_error",
        "overloaded_error",
    )
)


def request_head(
    method: str = "POST",
    target: str = "/v1/messages",
    *,
    body_length: int | None = None,
    content_type: str | None = "application/json",
    extra: Iterable[tuple[str, str]] = (),
    host: str = "127.0.0.1",
) -> bytes:
    """A request line and headers as Claude Code sends them (its key, anthropic-version, a
    loopback Host), ending with the blank line; ``body_length`` adds a content-length."""
    headers = [("Host", host), ("x-api-key", CLIENT_KEY), ("anthropic-version", "2023-06-01")]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    if body_length is not None:
        headers.append(("Content-Length", str(body_length)))
    headers.extend(extra)
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class RawResponse:
    """One HTTP/1.1 answer: status, lower-case headers (repeated ones joined), the body (chunked
    bodies de-chunked) and whether the server closed the connection after it."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> object:
        return json.loads(self.body)


class Connection:
    """A raw TCP connection to the gateway; use as a context manager."""

    def __init__(self, port: int, timeout: float = READ_TIMEOUT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> bool:
        """Send ``data``; False when the gateway already closed the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def end_writing(self) -> None:
        """Half-close: the gateway reads end-of-file, as when a client process dies mid-request."""
        with contextlib.suppress(OSError):  # the gateway may have closed it already
            self.sock.shutdown(socket.SHUT_WR)

    def closed_by_server(self) -> bool:
        """Whether the gateway closed the connection (reads end-of-file or a reset, now or
        within the read timeout)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buffer += data
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.buffer += data
        return bool(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise EOFError("the connection closed before a complete line")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise EOFError(f"the connection closed {size - len(self.buffer)} bytes before the body's end")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _head(self) -> RawResponse:
        status_line = self._line()
        version, status, *_ = status_line.decode("latin-1").split(" ", 2)
        assert version == "HTTP/1.1", status_line
        response = RawResponse(int(status))
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            response.headers[name] = f"{response.headers[name]}, {value}" if name in response.headers else value
        return response

    def response(self) -> RawResponse | None:
        """The next answer, or None when the gateway closed the connection without one."""
        while not self.buffer:
            if not self._fill():
                return None
        response = self._head()
        while response.status < 200:  # 100 Continue: the answer follows
            response = self._head()
        if "content-length" in response.headers:
            response.body = self._exactly(int(response.headers["content-length"]))
        elif "chunked" in response.headers.get("transfer-encoding", ""):
            chunks = []
            while size := int(self._line().split(b";")[0], 16):
                chunks.append(self._exactly(size))
                self._line()
            while self._line():
                pass  # trailers
            response.body = b"".join(chunks)
        else:
            while self._fill():
                pass
            response.body, self.buffer = self.buffer, b""
        return response


def exchange(port: int, data: bytes, *, end_writing: bool = False) -> RawResponse | None:
    """Send ``data`` on a new connection (then half-close it when ``end_writing``) and read
    the answer, or None when the gateway closed without one."""
    with Connection(port) as connection:
        connection.send(data)
        if end_writing:
            connection.end_writing()
        return connection.response()


def assert_anthropic_error(status: int, body: bytes, *, expected_status: int | None = None) -> dict:
    """``body`` is Anthropic's error shape (docs.anthropic.com, "Errors"); returns its error."""
    assert expected_status is None or status == expected_status, (status, body[:500])
    assert 400 <= status < 500, f"{status} for a client's mistake: {body[:500]!r}"
    payload = json.loads(body)
    assert payload["type"] == "error", payload
    error = payload["error"]
    assert error["type"] in ANTHROPIC_ERROR_TYPES and isinstance(error["message"], str) and error["message"], payload
    return error


def assert_normal_answer(status: int, content_type: str, body: bytes) -> None:
    """The property every fuzzed request's answer holds: a 4xx in Anthropic's error shape, or
    a 200 that is a whole Message (JSON) or a well-formed Anthropic stream, or a count."""
    if status != 200:
        assert_anthropic_error(status, body)
        return
    if content_type.startswith("text/event-stream"):
        stream = read_anthropic_stream(body)
        assert not stream.problems, (stream.problems, body[:1000])
        return
    payload = json.loads(body)
    assert payload.get("type") == "message" or set(payload) == {"input_tokens"}, payload
