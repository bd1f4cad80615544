"""The client-departure watch: cancels an upstream call whose client has gone.

One plain asyncio task per request (aiohttp ties aimw to asyncio anyway; an anyio task group
cost 23 % of the non-stream throughput in ``bench/``). It starts once the request body was
read (the body's reader gets a disconnect before that) and cancels the request's task when
``http.disconnect`` arrives before the answer's last byte.
"""

from __future__ import annotations

import asyncio

from aimw.exchange import Attempt
from aimw.types import Message, Receive

CLIENT_CLOSED = "client closed request"  # nginx's words for its 499, the failure of an attempt cancelled here


class ClientDeparture:
    """Watch ``receive`` for the client's departure on behalf of the current task.

    Use as ``async with ClientDeparture(receive, attempt) as departure:`` around
    the call; the answer is complete once ``attempt.last_byte_ns`` is set. After the block,
    ``departure.cancelled_us`` says whether the call ended because the client left (the
    CancelledError is then absorbed: there is nobody to answer).
    """

    __slots__ = ("_task", "_watcher", "attempt", "cancelled_us", "receive")

    def __init__(self, receive: Receive, attempt: Attempt) -> None:
        self.receive = receive
        self.attempt = attempt
        self.cancelled_us = False
        self._task: asyncio.Task[object] | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ClientDeparture:
        self._task = asyncio.current_task()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if self._watcher is not None:
            self._watcher.cancel()
        if kind is asyncio.CancelledError and self.cancelled_us and self._task is not None:
            self._task.uncancel()
            return True
        return False

    async def _watch(self) -> None:
        message: Message = await self.receive()
        while message["type"] != "http.disconnect":
            message = await self.receive()
        if not self.attempt.last_byte_ns and self._task is not None:
            self.cancelled_us = True
            self._task.cancel()
