"""LocalCounters on a fake clock: what a worker counts in memory, window by window, across
boundaries and gaps, per identifier, and the sweep that forgets finished windows."""

from __future__ import annotations

import pytest

from aimw.rate_limiting.counters import SWEEP_INTERVAL, LocalCounters
from aimw.rate_limiting.windows import Window

pytestmark = pytest.mark.anyio

T0 = 1_700_000_040.0  # a minute boundary
MINUTE = Window.of("huggingface", "total_tokens", 60, 1000)
HOUR = Window.of("huggingface", "total_tokens", 3600, 10_000)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def counters(clock: Clock) -> LocalCounters:
    return LocalCounters(clock)


async def test_an_unknown_identifier_has_used_nothing(counters, clock):
    assert await counters.read("ip:10.0.0.1", [MINUTE, HOUR]) == (clock.now, [(0.0, 0.0), (0.0, 0.0)])


async def test_adds_accumulate_in_the_current_window_of_each_size(counters, clock):
    await counters.add("consumer:a", [MINUTE, HOUR], [100, 100])
    clock.now += 30
    await counters.add("consumer:a", [MINUTE, HOUR], [50, 0])
    assert await counters.read("consumer:a", [MINUTE, HOUR]) == (clock.now, [(150, 0), (100, 0)])


async def test_at_the_boundary_the_current_window_becomes_the_previous(counters, clock):
    clock.now = T0 + 59.999
    await counters.add("consumer:a", [MINUTE], [300])
    clock.now = T0 + 60  # the next minute
    assert (await counters.read("consumer:a", [MINUTE]))[1] == [(0.0, 300)]
    await counters.add("consumer:a", [MINUTE], [20])
    assert (await counters.read("consumer:a", [MINUTE]))[1] == [(20, 300)]
    clock.now = T0 + 120  # one more: the 300 is two windows back, forgotten
    assert (await counters.read("consumer:a", [MINUTE]))[1] == [(0.0, 20)]


async def test_a_gap_of_more_than_a_window_forgets_everything(counters, clock):
    await counters.add("consumer:a", [MINUTE], [300])
    clock.now += 150
    assert (await counters.read("consumer:a", [MINUTE]))[1] == [(0.0, 0.0)]
    await counters.add("consumer:a", [MINUTE], [7])
    assert (await counters.read("consumer:a", [MINUTE]))[1] == [(7, 0.0)]


async def test_identifiers_and_windows_count_apart(counters):
    cost = Window.of("huggingface", "cost", 60, 5.0)
    await counters.add("consumer:a", [MINUTE, cost], [100, 0.25])
    await counters.add("consumer:b", [MINUTE, cost], [1, 0.5])
    assert (await counters.read("consumer:a", [MINUTE, cost]))[1] == [(100, 0), (0.25, 0)]
    assert (await counters.read("consumer:b", [MINUTE, cost]))[1] == [(1, 0), (0.5, 0)]


async def test_a_clock_gone_back_adds_to_the_newest_window(counters, clock):
    await counters.add("consumer:a", [MINUTE], [10])
    clock.now -= 90  # NTP stepped the clock back
    await counters.add("consumer:a", [MINUTE], [5])
    clock.now += 90
    assert (await counters.read("consumer:a", [MINUTE]))[1] == [(15, 0)]


async def test_the_sweep_forgets_counters_no_window_needs(counters, clock):
    await counters.add("ip:10.0.0.1", [MINUTE, HOUR], [1, 1])
    clock.now += SWEEP_INTERVAL + 61  # the minute is two windows back, the hour still current
    await counters.add("ip:10.0.0.2", [MINUTE], [1])
    assert set(counters.counters) == {("ip:10.0.0.1", HOUR.counter), ("ip:10.0.0.2", MINUTE.counter)}
    assert (await counters.read("ip:10.0.0.1", [HOUR]))[1] == [(1, 0)]
