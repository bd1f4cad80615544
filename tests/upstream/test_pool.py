"""PoolSlots (issue 8, finding 3): a slot per pooled connection, waited for ``timeout``
seconds at most, then UpstreamBusy."""

from __future__ import annotations

import asyncio

import pytest

from aimw.upstream import UpstreamBusy
from aimw.upstream.pool import PoolSlots

pytestmark = pytest.mark.anyio

GUARD = 10  # seconds: a hang guard only, never an assertion about speed
SHORT_WAIT = 0.05  # seconds a busy pool is waited for


async def test_free_slots_are_taken_and_given_back():
    slots = PoolSlots(2, SHORT_WAIT)
    async with asyncio.timeout(GUARD):
        async with slots.one(), slots.one():
            pass
        async with slots.one(), slots.one():  # both were given back
            pass


async def test_a_busy_pool_raises_after_its_wait():
    slots = PoolSlots(1, SHORT_WAIT)
    async with asyncio.timeout(GUARD):
        async with slots.one():
            with pytest.raises(UpstreamBusy, match=r"no upstream connection became free within 0\.05 s") as caught:
                async with slots.one():
                    pytest.fail("a slot was given while the only one was held")
        assert caught.value.reason.startswith("no upstream connection")
        async with slots.one():  # the held slot came back; the failed wait took none
            pass


async def test_a_slot_freed_during_the_wait_is_taken():
    slots = PoolSlots(1, GUARD)
    held, waited = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with slots.one():
            held.set()
            await waited.wait()

    async with asyncio.timeout(GUARD):
        task = asyncio.create_task(holder())
        await held.wait()
        waiter = asyncio.create_task(_take(slots))
        await asyncio.sleep(0)  # the waiter now waits for the held slot
        assert not waiter.done()
        waited.set()
        await task
        assert await waiter == "taken"


async def test_a_slot_is_given_back_when_the_call_fails():
    slots = PoolSlots(1, SHORT_WAIT)
    async with asyncio.timeout(GUARD):
        with pytest.raises(RuntimeError):
            async with slots.one():
                raise RuntimeError("the call failed")
        async with slots.one():
            pass


async def _take(slots: PoolSlots) -> str:
    async with slots.one():
        return "taken"
