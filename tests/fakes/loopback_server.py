"""A tiny HTTP/1.1 server on loopback (asyncio streams) whose handler writes every byte
itself, so tests control each byte, pause and connection close of the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]


@dataclass
class Connection:
    """What the server saw of one TCP connection."""

    requests: list[Request] = field(default_factory=list)
    closed_by_peer: asyncio.Event = field(default_factory=asyncio.Event)


Handler = Callable[[Request, asyncio.StreamReader, asyncio.StreamWriter, Connection], Awaitable[None]]


class LoopbackServer:
    """A tiny HTTP/1.1 server on 127.0.0.1 (free port) running ``handler`` per request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections: list[Connection] = []
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> LoopbackServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    @property
    def requests(self) -> list[Request]:
        return [request for connection in self.connections for request in connection.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())
        connection = Connection()
        self.connections.append(connection)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    connection.closed_by_peer.set()
                    return
                connection.requests.append(request)
                await self.handler(request, reader, writer, connection)
        except (ConnectionError, asyncio.IncompleteReadError):
            connection.closed_by_peer.set()
        except asyncio.CancelledError:  # the server is shutting down (__aexit__)
            pass
        finally:
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if line]
    request = Request(method, target, headers, b"")
    if request.values("transfer-encoding") == ["chunked"]:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            request.body += data[:-2]
    elif request.values("content-length"):
        request.body = await reader.readexactly(int(request.values("content-length")[0]))
    return request


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(piece: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece)
