"""PoolSlots: the upstream pool's connections as slots a request waits for, briefly.

Without them a request would wait for aiohttp's pool as long as the upstream timeout (600 s)
while others hold every connection; with them it waits ``timeout`` seconds, then fails as
UpstreamBusy (529 overloaded_error above), so a client can back off (issue 8).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aimw.upstream.failures import UpstreamBusy


class PoolSlots:
    """``size`` slots (the pool's connections); :meth:`one` holds one for a call."""

    __slots__ = ("_slots", "timeout")

    def __init__(self, size: int, timeout: float) -> None:
        self._slots = asyncio.Semaphore(size)
        self.timeout = timeout  # seconds

    @asynccontextmanager
    async def one(self) -> AsyncIterator[None]:
        """Hold a slot, waited for at most ``timeout`` seconds.

        Raises:
            UpstreamBusy: none became free in time.
        """
        slots = self._slots
        if slots.locked():
            try:
                async with asyncio.timeout(self.timeout):
                    await slots.acquire()
            except TimeoutError:
                raise UpstreamBusy(f"no upstream connection became free within {self.timeout:g} s") from None
        else:
            await slots.acquire()
        try:
            yield
        finally:
            slots.release()
