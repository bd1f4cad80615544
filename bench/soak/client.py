"""The soak's load client: raw asyncio HTTP/1.1 connections to the gateway, one exchange at a
time each (keep-alive between them), that leave when their plan says: during the upload,
before the answer's head, or after some text deltas, with a FIN or a TCP reset.

An :class:`Outcome` records what one exchange got: status, body, when its head, first text
and last byte came, how it ended (``complete``, ``left_upload``, ``left_before_head``,
``left_after_head``, ``left_mid_stream``, ``hang``, ``connection_error``). While a stream
arrives, each token's trip from the fake to here is measured from the write time the fake put
in its text (:mod:`bench.soak.upstream`): ``latencies`` gets one value (ns) per token.
"""

from __future__ import annotations

import asyncio
import re
import time
from array import array

from bench.http11 import HEAD_END, MAX_HEAD_SIZE, ChunkedDecoder, ProtocolError, body_framing, parse_head
from bench.net import require_loopback
from bench.soak.plan import Plan

_now = time.monotonic_ns  # the fake stamps tokens with the same clock
TOKEN_MARK = re.compile(rb"~(\d+)~(\d+)~ ")
_TEXT_DELTA = b'"text_delta"'


class Outcome:
    """What one exchange got (times: monotonic ns; 0 while not yet; ``left_ns``: when the
    client went away)."""

    __slots__ = (
        "body",
        "chunks",
        "deltas",
        "done",
        "end",
        "event_stream",
        "first_text_ns",
        "head",
        "head_ns",
        "keep_alive",
        "last_ns",
        "left_ns",
        "plan",
        "sent_ns",
        "status",
    )

    def __init__(self, plan: Plan) -> None:
        loop = asyncio.get_running_loop()
        self.plan = plan
        self.status = 0
        self.event_stream = False
        self.keep_alive = True
        self.chunks: list[bytes] = []
        self.body = b""
        self.deltas = 0  # text deltas seen
        self.sent_ns = self.last_ns = _now()
        self.head_ns = self.first_text_ns = self.left_ns = 0
        self.end = ""
        self.head: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()

    def got_head(self, status: int, fields: dict[bytes, bytes]) -> None:
        self.status = status
        self.head_ns = self.last_ns
        self.event_stream = fields.get(b"content-type", b"").startswith(b"text/event-stream")
        self.keep_alive = fields.get(b"connection", b"").lower() != b"close"
        if not self.head.done():
            self.head.set_result(None)

    def take(self, piece: bytes, latencies: Latencies) -> bool:
        """Keep a piece of the body; for a stream, count its text deltas and measure its
        tokens' trips. Returns whether the client leaves now (its plan's departure point)."""
        self.chunks.append(piece)
        deltas = piece.count(_TEXT_DELTA) if self.event_stream else 0
        if not deltas:
            return False
        now = self.last_ns
        if not self.first_text_ns:
            self.first_text_ns = now
        for mark in TOKEN_MARK.finditer(piece):
            trip = now - int(mark.group(2))
            latencies.tokens.append(trip)
            if mark.group(1) == b"0":
                latencies.first_tokens.append(trip)
        self.deltas += deltas
        return self.plan.kind == "depart_stream" and self.deltas >= self.plan.at

    def finish(self, end: str) -> None:
        if not self.end:
            self.end = end
            self.body = b"".join(self.chunks)
            self.chunks = []
            if not self.done.done():
                self.done.set_result(None)


class Latencies:
    """Every token's trip fake -> client (ns), the first tokens' apart."""

    def __init__(self) -> None:
        self.tokens = array("q")
        self.first_tokens = array("q")


class ClientConnection(asyncio.Protocol):
    """One connection to the gateway; :meth:`begin` an exchange, write its bytes, await
    ``outcome.done``. A ``depart_stream`` plan leaves by itself after ``plan.at`` deltas."""

    def __init__(self, latencies: Latencies) -> None:
        self.latencies = latencies
        self.transport: asyncio.Transport | None = None
        self.outcome: Outcome | None = None
        self.buffer = b""
        self.length: int | None = 0
        self.decoder: ChunkedDecoder | None = None
        self.idle_since_ns = 0

    @property
    def reusable(self) -> bool:
        """Open, idle, and idle for less than a second (the gateway keeps idle ones 5 s)."""
        return (
            self.transport is not None
            and not self.transport.is_closing()
            and self.outcome is None
            and _now() - self.idle_since_ns < 1_000_000_000
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def begin(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.buffer, self.length, self.decoder = b"", 0, None

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def leave(self, end: str, *, abort: bool) -> None:
        """Go away now (FIN, or a reset with ``abort``), ending the exchange as ``end``."""
        outcome = self.outcome
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()
        if outcome is not None:
            outcome.keep_alive = False
            outcome.left_ns = _now()
            outcome.finish(end)

    def data_received(self, data: bytes) -> None:
        outcome = self.outcome
        if outcome is None or outcome.end:
            return  # after the client left, or bytes of nothing: ignored (a new exchange reconnects)
        outcome.last_ns = _now()
        try:
            if not outcome.head_ns:
                data = self._read_head(outcome, data)
                if data is None:
                    return
            self._read_body(outcome, data)
        except ProtocolError as exc:
            outcome.chunks.append(f"[client: {exc}]".encode())
            self.leave("protocol_error", abort=True)

    def _read_head(self, outcome: Outcome, data: bytes) -> bytes | None:
        buffer = self.buffer + data
        end = buffer.find(HEAD_END)
        if end < 0:
            if len(buffer) > MAX_HEAD_SIZE:
                raise ProtocolError("response head too large")
            self.buffer = buffer
            return None
        start, fields = parse_head(buffer[:end])
        self.length = body_framing(fields)
        self.decoder = ChunkedDecoder() if self.length is None else None
        self.buffer = b""
        outcome.got_head(int(start[1]), fields)
        return buffer[end + 4 :]

    def _read_body(self, outcome: Outcome, data: bytes) -> None:
        if self.decoder is not None:
            pieces = self.decoder.feed(data)
            for piece in pieces:
                self._take(outcome, piece)
            if self.decoder.done and not outcome.end:
                outcome.keep_alive = outcome.keep_alive and not self.decoder.rest
                self._complete(outcome)
            return
        if self.length < 0:  # until the connection closes
            self._take(outcome, data)
            return
        piece, rest = data[: self.length], data[self.length :]
        self.length -= len(piece)
        self._take(outcome, piece)
        if self.length == 0:
            outcome.keep_alive = outcome.keep_alive and not rest
            self._complete(outcome)

    def _take(self, outcome: Outcome, piece: bytes) -> None:
        if piece and not outcome.end and outcome.take(piece, self.latencies):
            self.leave("left_mid_stream", abort=outcome.plan.abort)

    def _complete(self, outcome: Outcome) -> None:
        self.outcome = None
        self.idle_since_ns = _now()
        if not outcome.keep_alive and self.transport is not None:
            self.transport.close()
        outcome.finish("complete")

    def connection_lost(self, exc: Exception | None) -> None:
        outcome = self.outcome
        if outcome is not None and not outcome.end:
            if self.length is not None and self.length < 0 and outcome.head_ns:
                outcome.finish("complete")  # a body read until the close
            else:
                outcome.chunks.append(f"[connection lost: {exc or 'EOF'}]".encode())
                outcome.finish("connection_error")
        self.transport = None


async def connect(host: str, port: int, latencies: Latencies) -> ClientConnection:
    """A new connection to ``host:port`` (loopback only)."""
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(lambda: ClientConnection(latencies), require_loopback(host), port)
    return connection
