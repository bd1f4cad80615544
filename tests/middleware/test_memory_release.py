"""MemoryReleaseMiddleware: the allocator is trimmed once the gateway is idle, never while
an exchange is in flight, and the trim really hands memory back (glibc)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from aimw.middleware.memory_release import MemoryReleaseMiddleware, glibc_malloc_trim
from tests.asgi_helpers import http_scope

pytestmark = pytest.mark.anyio

IDLE = 0.05  # s


async def _answer(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _receive():
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message) -> None:
    return None


async def _until(condition, what: str, within: float = 10.0) -> None:
    """Poll ``condition`` (bounded; not a timing assert)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


async def test_release_runs_once_after_the_last_exchange_ends():
    release = _Counting()
    app = MemoryReleaseMiddleware(_answer, release=release, idle_delays=(IDLE,))
    for _ in range(3):
        await app(http_scope(), _receive, _send)
    await _until(lambda: release.calls == 1, "the release after idleness")
    await asyncio.sleep(IDLE * 4)
    assert release.calls == 1  # one idle period, one release
    assert app.active == 0


async def test_a_release_at_each_delay_of_one_idle_period():
    release = _Counting()
    app = MemoryReleaseMiddleware(_answer, release=release, idle_delays=(IDLE, IDLE * 4))
    await app(http_scope(), _receive, _send)
    await _until(lambda: release.calls == 2, "the second release of the idle period")
    await asyncio.sleep(IDLE * 6)
    assert release.calls == 2
    await app(http_scope(), _receive, _send)  # a new idle period starts over
    await _until(lambda: release.calls == 4, "the releases of the next idle period")


async def test_nothing_is_released_while_an_exchange_is_in_flight():
    release = _Counting()
    finish = asyncio.Event()

    async def slow(scope, receive, send) -> None:
        await finish.wait()
        await _answer(scope, receive, send)

    app = MemoryReleaseMiddleware(slow, release=release, idle_delays=(IDLE,))
    quick = MemoryReleaseMiddleware(_answer, release=release, idle_delays=(IDLE,))
    in_flight = asyncio.create_task(app(http_scope(), _receive, _send))
    await _until(lambda: app.active == 1, "the exchange to start")
    await quick(http_scope(), _receive, _send)  # another layer's idle period is its own
    await _until(lambda: release.calls == 1, "the other instance's release")
    await asyncio.sleep(IDLE * 4)
    assert app.releases == 0
    finish.set()
    await in_flight
    await _until(lambda: app.releases == 1, "the release after the slow exchange ended")


async def test_an_exchange_during_the_idle_delay_postpones_the_release():
    release = _Counting()
    app = MemoryReleaseMiddleware(_answer, release=release, idle_delays=(0.3,))
    await app(http_scope(), _receive, _send)
    await asyncio.sleep(0.2)
    await app(http_scope(), _receive, _send)  # restarts the idle period
    await asyncio.sleep(0.2)  # 0.4 s after the first, 0.2 s after the second
    assert release.calls == 0
    await _until(lambda: release.calls == 1, "the postponed release")


async def test_lifespan_and_other_scopes_are_not_counted():
    release = _Counting()
    seen = []

    async def inner(scope, receive, send) -> None:
        seen.append(scope["type"])

    app = MemoryReleaseMiddleware(inner, release=release, idle_delays=(IDLE,))
    await app({"type": "lifespan"}, _receive, _send)
    await asyncio.sleep(IDLE * 4)
    assert seen == ["lifespan"]
    assert release.calls == 0


def _rss_bytes() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024


@pytest.mark.skipif(glibc_malloc_trim() is None, reason="the C library has no malloc_trim (not glibc)")
async def test_the_glibc_trim_hands_freed_request_sized_blocks_back_to_the_system():
    app = MemoryReleaseMiddleware.build(_answer, idle_delays=(IDLE,))
    assert isinstance(app, MemoryReleaseMiddleware)
    # 50 KB blocks, as Claude Code's request bodies are: below malloc's mmap threshold, so
    # they come from the heap; every 16th is kept, so the freed ones cannot merge into the top
    blocks = [bytearray(50_000) for _ in range(4000)]  # ~200 MB
    kept = blocks[::16]
    del blocks
    held = _rss_bytes()
    await app(http_scope(), _receive, _send)
    await _until(lambda: app.releases == 1, "the release")
    await _until(lambda: _rss_bytes() < held - 100_000_000, "RSS to drop by 100 MB", within=20)
    assert len(kept) == 250
