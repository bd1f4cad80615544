"""Where usage is counted: the :class:`Counters` protocol, and :class:`LocalCounters`, the
memory of one worker (``strategy: local``; also RedisCounters' fallback while Redis is
unreachable).

A counter is named by an identifier (``consumer:alice``) and a window's counter name
(``huggingface:total_tokens:60``); it holds what was added in the window holding ``now`` and
in the one before (aimw.rate_limiting.windows).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from aimw.rate_limiting.windows import Window, window_index

Reading = tuple[float, list[tuple[float, float]]]
"""``now`` (seconds since the epoch, by the counters' clock) and, per window asked, its
(current, previous) counts."""

SWEEP_INTERVAL = 60.0  # seconds between two sweeps of the counters no window needs any more


class CountersUnavailable(Exception):
    """The shared counters cannot be reached and the gateway fails closed; ``retry_after``:
    whole seconds until they are tried again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Counters(Protocol):
    """A store of usage counters. ``read`` and ``add`` take the identifier and the windows;
    ``open`` / ``close`` run at the lifespan's startup and shutdown (``read`` opens a store
    not opened yet). Raises CountersUnavailable (``read``) when it fails closed."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def read(self, identifier: str, windows: Sequence[Window]) -> Reading: ...

    async def add(self, identifier: str, windows: Sequence[Window], amounts: Sequence[float]) -> None: ...


class LocalCounters:
    """Counters in this worker's memory, on the ``clock`` given (default ``time.time``).

    Each counter is a list ``[window number, current, previous, size]``; a counter whose
    windows are over is dropped by a sweep at most every SWEEP_INTERVAL seconds, so memory
    holds only the identifiers seen in the last windows. Per process: workers count alone.
    """

    __slots__ = ("clock", "counters", "next_sweep")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.counters: dict[tuple[str, str], list[float]] = {}
        self.next_sweep = clock() + SWEEP_INTERVAL

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def read(self, identifier: str, windows: Sequence[Window]) -> Reading:
        return self.read_now(identifier, windows)

    async def add(self, identifier: str, windows: Sequence[Window], amounts: Sequence[float]) -> None:
        self.add_now(identifier, windows, amounts)

    def read_now(self, identifier: str, windows: Sequence[Window]) -> Reading:
        """:meth:`read` without a coroutine."""
        now = self.clock()
        counts = []
        for window in windows:
            counter = self.counters.get((identifier, window.counter))
            if counter is None:
                counts.append((0.0, 0.0))
                continue
            behind = window_index(now, window.size) - counter[0]
            if behind <= 0:
                counts.append((counter[1], counter[2]))
            else:
                counts.append((0.0, counter[1] if behind == 1 else 0.0))
        return now, counts

    def add_now(self, identifier: str, windows: Sequence[Window], amounts: Sequence[float]) -> None:
        """:meth:`add` without a coroutine. A clock gone back adds to the newest window."""
        now = self.clock()
        for window, amount in zip(windows, amounts, strict=True):
            index = window_index(now, window.size)
            counter = self.counters.get((identifier, window.counter))
            if counter is None:
                self.counters[identifier, window.counter] = [index, amount, 0.0, window.size]
            elif index <= counter[0]:
                counter[1] += amount
            else:
                counter[2] = counter[1] if index == counter[0] + 1 else 0.0
                counter[0], counter[1] = index, amount
        if now >= self.next_sweep:
            self.sweep(now)

    def sweep(self, now: float) -> None:
        """Drop the counters whose current window is older than the previous one of ``now``."""
        self.next_sweep = now + SWEEP_INTERVAL
        stale = [key for key, counter in self.counters.items() if counter[0] < window_index(now, int(counter[3])) - 1]
        for key in stale:
            del self.counters[key]
