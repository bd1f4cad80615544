"""PoolSlots: the upstream pool's connections as slots a request waits for, briefly.

Without them a request would wait for aiohttp's pool as long as the upstream timeout (600 s)
while others hold every connection; with them it waits ``timeout`` seconds, then fails as
UpstreamBusy (529 overloaded_error above), so a client can back off (issue 8).
"""

from __future__ import annotations

import asyncio

from aimw.upstream.failures import UpstreamBusy


class PoolSlots:
    """``size`` slots (the pool's connections); ``async with slots.one():`` holds one for a call."""

    __slots__ = ("_slots", "timeout")

    def __init__(self, size: int, timeout: float) -> None:
        self._slots = asyncio.Semaphore(size)
        self.timeout = timeout  # seconds

    def one(self) -> PoolSlots:
        """Hold a slot for the ``async with`` block, waited for at most ``timeout`` seconds
        (the slots themselves are the context manager: no per-call object).

        Raises:
            UpstreamBusy: none became free in time.
        """
        return self

    async def __aenter__(self) -> None:
        slots = self._slots
        if slots.locked():
            try:
                async with asyncio.timeout(self.timeout):
                    await slots.acquire()
            except TimeoutError:
                raise UpstreamBusy(f"no upstream connection became free within {self.timeout:g} s") from None
        else:
            await slots.acquire()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self._slots.release()
