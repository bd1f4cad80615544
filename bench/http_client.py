"""A raw asyncio HTTP/1.1 client connection for the load generator: keep-alive, one
request at a time, pre-encoded requests, and the timestamps the benchmark reports.

It reads ``Content-Length``, chunked, and read-until-close bodies; it records when the
request was written, when the first response byte came, when the first text delta came
(a regex on the body pieces, until it matches) and when the last byte came, all from
``time.perf_counter_ns`` (nanoseconds).
"""

from __future__ import annotations

import asyncio
import re
import time

from bench.http11 import HEAD_END, MAX_HEAD_SIZE, ChunkedDecoder, ProtocolError, body_framing, parse_head
from bench.net import require_loopback

_now = time.perf_counter_ns


class Response:
    """One response: status, whole body (bytes, de-chunked) and its timestamps (ns)."""

    __slots__ = ("body", "done_ns", "first_byte_ns", "first_text_ns", "sent_ns", "status")

    def __init__(self, sent_ns: int) -> None:
        self.status = 0
        self.body = b""
        self.sent_ns = sent_ns
        self.first_byte_ns = 0
        self.first_text_ns = 0  # 0: no text seen (or no marker asked for)
        self.done_ns = 0


class ClientConnection(asyncio.Protocol):
    """One keep-alive connection. ``send(request)`` writes a whole pre-encoded request and
    returns a future of its :class:`Response`; the next request waits for it.

    ``text_marker`` finds the first text delta in a body piece (None: not looked for).
    The connection closes itself after a response with ``connection: close``; a
    response it cannot parse fails the future with :class:`ProtocolError` and closes it.
    """

    def __init__(self, text_marker: re.Pattern[bytes] | None = None) -> None:
        self.text_marker = text_marker
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._future: asyncio.Future[Response] | None = None
        self._response: Response | None = None
        self._buffer = b""
        self._head_done = False
        self._length: int | None = -1  # bytes still expected; None: chunked; -1: until close
        self._decoder: ChunkedDecoder | None = None
        self._pieces: list[bytes] = []
        self._close_after = False

    @classmethod
    async def open(cls, host: str, port: int, text_marker: re.Pattern[bytes] | None = None) -> ClientConnection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(lambda: cls(text_marker), require_loopback(host), port)
        return connection

    @property
    def in_flight_since_ns(self) -> int:
        """When the request in flight was written (perf_counter ns); 0 when none is."""
        return self._response.sent_ns if self._response is not None else 0

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, request: bytes) -> asyncio.Future[Response]:
        if self._future is not None:
            raise RuntimeError("a request is already in flight on this connection")
        if not self.is_open:
            raise ConnectionError("connection closed")
        future = asyncio.get_running_loop().create_future()
        self._future = future
        self._response = Response(_now())
        self._buffer, self._head_done, self._pieces = b"", False, []
        self.transport.write(request)
        return future

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self._response
        if response is None:
            self._fail(ProtocolError(f"unexpected bytes with no request in flight: {data[:60]!r}"))
            return
        if not response.first_byte_ns:
            response.first_byte_ns = _now()
        try:
            if not self._head_done:
                data = self._read_head(data)
                if data is None:
                    return
            self._read_body(data)
        except ProtocolError as exc:
            self._fail(exc)

    def _read_head(self, data: bytes) -> bytes | None:
        buffer = self._buffer + data if self._buffer else data
        end = buffer.find(HEAD_END)
        if end < 0:
            if len(buffer) > MAX_HEAD_SIZE:
                raise ProtocolError("response head too large")
            self._buffer = buffer
            return None
        start, fields = parse_head(buffer[:end])
        try:
            self._response.status = int(start[1])
        except ValueError:
            raise ProtocolError(f"malformed status {start[1][:20]!r}") from None
        self._head_done = True
        self._buffer = b""
        self._close_after = fields.get(b"connection", b"").lower() == b"close"
        if self._response.status in (204, 304) or 100 <= self._response.status < 200:
            self._length = 0
        else:
            self._length = body_framing(fields)
        self._decoder = ChunkedDecoder() if self._length is None else None
        return buffer[end + 4 :]

    def _read_body(self, data: bytes) -> None:
        if self._decoder is not None:
            pieces = self._decoder.feed(data)
            if pieces:
                self._take(pieces)
            if self._decoder.done:
                self._finish(extra=self._decoder.rest)
            return
        if self._length < 0:  # until close
            if data:
                self._take((data,))
            return
        if len(data) >= self._length:
            piece, extra = data[: self._length], data[self._length :]
            self._length = 0
            if piece:
                self._take((piece,))
            self._finish(extra)
            return
        self._length -= len(data)
        self._take((data,))

    def _take(self, pieces) -> None:
        self._pieces.extend(pieces)
        response = self._response
        if self.text_marker is not None and not response.first_text_ns:
            search = self.text_marker.search
            for piece in pieces:
                if search(piece):
                    response.first_text_ns = _now()
                    break

    def _finish(self, extra: bytes = b"") -> None:
        response, future = self._response, self._future
        response.done_ns = _now()
        response.body = b"".join(self._pieces)
        self._response, self._future, self._pieces = None, None, []
        if extra:
            self.transport.close()
            future.set_exception(ProtocolError(f"bytes after the response: {extra[:60]!r}"))
            return
        if self._close_after:
            self.transport.close()
        if not future.done():
            future.set_result(response)

    def _fail(self, exc: Exception) -> None:
        future = self._future
        self._response, self._future = None, None
        if self.transport is not None:
            self.transport.close()
        if future is not None and not future.done():
            future.set_exception(exc)

    def abort(self, reason: str) -> None:
        """Fail the request in flight with TimeoutError and drop the connection."""
        if self.transport is not None:
            self.transport.abort()
        self._fail(TimeoutError(reason))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._future is not None and self._head_done and self._length == -1 and self._decoder is None:
            self._finish()  # a body read until close
        elif self._future is not None:
            self._fail(ConnectionError(f"connection closed mid-response ({exc or 'EOF'})"))
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
