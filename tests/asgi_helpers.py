"""ASGI test helpers: a scripted ``receive``, a recording ``send``, the fake inner app,
scope builders, and the Anthropic stream validator as an assertion.

httpx.ASGITransport merges streamed chunks (DESIGN §7), so stream tests record the raw
ASGI messages here instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise

import anyio

from aimw.types import ASGIApp, Message, Scope
from bench.validate import AnthropicStream, read_anthropic_stream


def http_scope(
    method: str = "POST",
    path: str = "/v1/messages",
    *,
    query: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = (),
    body: bytes | None = None,
) -> Scope:
    """An HTTP scope like Hypercorn's (lower-case header names; content-length from ``body``)."""
    header_list = [(b"host", b"localhost:8000")]
    header_list.extend(headers)
    if body is not None and not any(name == b"content-length" for name, _ in header_list):
        header_list.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": header_list,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


class ScriptedReceive:
    """Yields the request body in ``chunks`` (one ``http.request`` message each), then
    ``http.disconnect``: at once with ``disconnect_now``, else only after ``release()``
    (like a client that keeps its connection open while the response streams). With
    ``complete=False`` the last chunk says more_body True: the client left mid-body.
    """

    def __init__(
        self, chunks: Iterable[bytes] = (b"",), *, disconnect_now: bool = False, complete: bool = True
    ) -> None:
        self.chunks = list(chunks) or [b""]
        self.complete = complete
        self.calls = 0
        self._released = anyio.Event()
        if disconnect_now:
            self._released.set()

    def release(self) -> None:
        """Let the pending ``receive()`` return ``http.disconnect``."""
        self._released.set()

    async def __call__(self) -> Message:
        index = self.calls
        self.calls += 1
        if index < len(self.chunks):
            return {
                "type": "http.request",
                "body": self.chunks[index],
                "more_body": not self.complete or index < len(self.chunks) - 1,
            }
        await self._released.wait()
        return {"type": "http.disconnect"}


class RecordingSend:
    """Records every ASGI message sent, in order."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.first_body = anyio.Event()

    async def __call__(self, message: Message) -> None:
        self.messages.append(dict(message))
        if message["type"] == "http.response.body" and message.get("body"):
            self.first_body.set()

    @property
    def start(self) -> Message:
        starts = [m for m in self.messages if m["type"] == "http.response.start"]
        assert len(starts) == 1, f"expected one http.response.start, got {self.messages!r}"
        return starts[0]

    @property
    def status(self) -> int:
        return self.start["status"]

    @property
    def header_list(self) -> list[tuple[bytes, bytes]]:
        return [(bytes(name), bytes(value)) for name, value in self.start.get("headers", ())]

    def header(self, name: bytes) -> bytes | None:
        values = [value for key, value in self.header_list if key.lower() == name]
        assert len(values) <= 1, f"header {name!r} sent {len(values)} times"
        return values[0] if values else None

    @property
    def body_messages(self) -> list[Message]:
        return [m for m in self.messages if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.body_messages)

    @property
    def complete(self) -> bool:
        """The response ended: its last body message has more_body False."""
        bodies = self.body_messages
        return (
            bool(bodies)
            and not bodies[-1].get("more_body", False)
            and all(m.get("more_body", False) for m in bodies[:-1])
        )

    def json(self):
        return json.loads(self.body)


JSON_HEADERS = ((b"content-type", b"application/json"),)


class InnerApp:
    """A fake app below the middleware under test (the rest of the gateway, or the provider).

    Each call is recorded: its scope in ``scopes`` and, for HTTP, the request body it read
    in ``bodies`` (``body`` is the last call's). Then ``on_request(scope)`` runs when given
    (to fill the exchange as the real layers would) and the app answers ``status`` with
    ``headers`` and ``chunks`` (one http.response.body each; ``body`` alone when no chunks),
    the last with more_body False unless ``finish`` is False (UpstreamApp's way when the
    client left). With ``error`` it raises: after sending the chunks (their more_body True),
    or before the response starts with ``error_before_start``. Non-HTTP scopes are only
    recorded. Tests may change any attribute between calls.
    """

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"{}",
        *,
        headers: Iterable[tuple[bytes, bytes]] = JSON_HEADERS,
        chunks: Sequence[bytes] | None = None,
        error: Exception | None = None,
        error_before_start: bool = False,
        finish: bool = True,
        on_request: Callable[[Scope], None] | None = None,
    ) -> None:
        self.status = status
        self.headers = list(headers)
        self.chunks = list(chunks) if chunks is not None else [body]
        self.error = error
        self.error_before_start = error_before_start
        self.finish = finish
        self.on_request = on_request
        self.scopes: list[Scope] = []
        self.bodies: list[bytes] = []

    @property
    def calls(self) -> int:
        return len(self.scopes)

    @property
    def scope(self) -> Scope:
        return self.scopes[-1]

    @property
    def body(self) -> bytes:
        """The request body the last HTTP call read (b"" before any)."""
        return self.bodies[-1] if self.bodies else b""

    @property
    def start(self) -> Message:
        """The http.response.start this app sends."""
        return {"type": "http.response.start", "status": self.status, "headers": list(self.headers)}

    def header_values(self, name: bytes) -> list[bytes]:
        """The values of header ``name`` (lower case) in the last scope received."""
        return [value for key, value in self.scope["headers"] if key.lower() == name]

    async def __call__(self, scope: Scope, receive, send) -> None:
        self.scopes.append(scope)
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        if self.on_request is not None:
            self.on_request(scope)
        if self.error is not None and self.error_before_start:
            raise self.error
        await send(self.start)
        last = len(self.chunks) - 1
        for index, chunk in enumerate(self.chunks):
            more = index < last or not self.finish or self.error is not None
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
        if self.error is not None:
            raise self.error


async def call(
    app: ASGIApp,
    scope: Scope,
    chunks: Iterable[bytes] = (b"",),
) -> RecordingSend:
    """Run ``app`` once with the request body in ``chunks``; return the recorded response."""
    send = RecordingSend()
    await app(scope, ScriptedReceive(chunks, disconnect_now=True), send)
    return send


def split_at(data: bytes, *offsets: int) -> list[bytes]:
    """``data`` cut at the given byte offsets (kept in order, out-of-range ignored)."""
    points = [0, *sorted(o for o in offsets if 0 < o < len(data)), len(data)]
    return [data[a:b] for a, b in pairwise(points)]


FRAMES = re.compile(rb"(?:event: [a-z_]+\ndata: [^\n]*\n\n)*")  # how Anthropic and aimw frame events
FRAME = re.compile(rb"event: ([a-z_]+)\ndata: ([^\n]*)\n\n")


def sse_events(body: bytes) -> list[tuple[str, dict]]:
    """The ``(event, data)`` pairs of whole Anthropic SSE events, each framed as Anthropic
    and aimw frame them: one ``event:`` line, one ``data:`` line (a JSON object of that
    type), a blank line."""
    assert FRAMES.fullmatch(body), body[-200:]
    events = [(match[1].decode(), json.loads(match[2])) for match in FRAME.finditer(body)]
    for name, data in events:
        assert data.get("type") == name, (name, data)
    return events


def anthropic_stream(body: bytes) -> AnthropicStream:
    """A whole Anthropic stream, framed as :func:`sse_events` wants, read by the shared
    validator (:func:`bench.validate.read_anthropic_stream`): the assembled stream, or a
    failed assertion naming every DESIGN §6 invariant it breaks."""
    sse_events(body)
    stream = read_anthropic_stream(body)
    assert not stream.problems, stream.problems
    return stream
