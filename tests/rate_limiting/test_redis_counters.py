"""RedisCounters against a real redis-server (no mocks): counts shared by two clients, keys
named ``aimw:rl:...`` with a TTL of two windows, windows timed by Redis's clock, and the
outage: failing open to the worker's own counts with one log line, failing closed, coming
back once Redis does."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest
import redis as redis_sync

from aimw.rate_limiting import CountersUnavailable, RedisCounters, redis_client
from aimw.rate_limiting.redis_counters import RETRY_INTERVAL
from aimw.rate_limiting.windows import Window, usage
from tests.e2e.harness import free_port

pytestmark = pytest.mark.anyio

MINUTE = Window.of("huggingface", "total_tokens", 60, 1000)
YEAR = Window.of("huggingface", "total_tokens", 31536000, 10**9)  # no boundary during a test
HOUR = Window.of("huggingface", "total_tokens", 3600, 10_000)
COST = Window.of("huggingface", "cost", 86400, 5.0)


class Monotonic:
    """A monotonic clock the test moves (the retry interval's)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counters_at(url: str, **options) -> RedisCounters:
    return RedisCounters(lambda: redis_client(None, url), where=url.split("//")[1], **options)


@pytest.fixture
async def counters(redis_url):
    store = counters_at(redis_url)
    await store.open()
    yield store
    await store.close()


def redis_keys(url: str) -> dict[str, tuple[float, int]]:
    """Every key of the Redis at ``url``: its value and TTL (s)."""
    with redis_sync.Redis.from_url(url) as client:
        return {key.decode(): (float(client.get(key)), client.ttl(key)) for key in client.keys("*")}


async def test_what_is_added_is_read_back_in_every_window(counters):
    await counters.add("consumer:a", [MINUTE, HOUR, COST], [120, 120, 0.0042])
    await counters.add("consumer:a", [MINUTE, HOUR, COST], [30, 30, 0.001])
    _, counts = await counters.read("consumer:a", [MINUTE, HOUR, COST])
    totals = [current + previous for current, previous in counts]  # a boundary may fall between add and read
    assert totals == [150, 150, pytest.approx(0.0052)]
    assert (await counters.read("consumer:b", [MINUTE]))[1] == [(0, 0)]


async def test_keys_are_namespaced_and_expire_two_windows_after_the_last_add(redis_url):
    store = counters_at(redis_url, namespace="team-a")
    await store.add("consumer:a", [MINUTE, COST], [42, 0.5])
    now, _ = await store.read("consumer:a", [MINUTE])
    await store.close()
    keys = redis_keys(redis_url)
    minute_key = f"aimw:rl:team-a:consumer:a:huggingface:total_tokens:60:{math.floor(now / 60)}"
    if minute_key not in keys:  # the add and the read fell on two sides of a minute boundary
        minute_key = f"aimw:rl:team-a:consumer:a:huggingface:total_tokens:60:{math.floor(now / 60) - 1}"
    assert keys[minute_key][0] == 42
    assert 0 < keys[minute_key][1] <= 120
    (day_key,) = [key for key in keys if key.startswith("aimw:rl:team-a:consumer:a:huggingface:cost:86400:")]
    assert keys[day_key][0] == 0.5
    assert 86400 < keys[day_key][1] <= 2 * 86400


async def test_two_clients_share_the_counts(redis_url):
    one, two = counters_at(redis_url), counters_at(redis_url)
    await one.add("consumer:a", [HOUR], [100])
    await two.add("consumer:a", [HOUR], [50])
    for store in (one, two):
        assert sum((await store.read("consumer:a", [HOUR]))[1][0]) == 150
    await one.close()
    await two.close()


async def test_the_previous_window_is_read_at_redis_time(redis_url, counters):
    """The windows are numbered by Redis's clock, so every instance weighs the previous
    window the same way at a boundary."""
    size = YEAR.size
    with redis_sync.Redis.from_url(redis_url) as client:
        seconds, micros = client.time()
        index = math.floor((seconds + micros / 1e6) / size)
        client.set(f"aimw:rl:default:consumer:a:{YEAR.counter}:{index}", 700)
        client.set(f"aimw:rl:default:consumer:a:{YEAR.counter}:{index - 1}", 1200)
        client.set(f"aimw:rl:default:consumer:a:{YEAR.counter}:{index - 2}", 99999)  # too old to count
    now, counts = await counters.read("consumer:a", [YEAR])
    assert 0 <= now - (seconds + micros / 1e6) < 60
    assert counts == [(700, 1200)]
    elapsed = now - index * size
    assert usage("sliding", 700, 1200, size, elapsed) == pytest.approx(1200 * (size - elapsed) / size + 700)


async def test_an_add_finishes_when_its_caller_is_cancelled(counters, redis_url):
    task = asyncio.ensure_future(counters.add("consumer:a", [HOUR], [77]))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if redis_keys(redis_url):
            break
        await asyncio.sleep(0.01)
    assert [value for value, _ in redis_keys(redis_url).values()] == [77]


async def test_unreachable_redis_fails_open_to_the_workers_own_counts(caplog):
    store = counters_at(f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.WARNING, logger="aimw.rate_limiting"):
        await store.open()
        for _ in range(5):
            await store.add("consumer:a", [MINUTE], [10])
        _, counts = await store.read("consumer:a", [MINUTE])
    await store.close()
    assert sum(counts[0]) == 50
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1, lines  # once per interval, not once per request
    assert "unreachable" in lines[0] and "counting in this worker (fail open)" in lines[0]


async def test_fail_closed_refuses_while_redis_is_unreachable():
    store = counters_at(f"redis://127.0.0.1:{free_port()}/0", fail_closed=True)
    with pytest.raises(CountersUnavailable) as refused:
        await store.read("consumer:a", [MINUTE])
    assert refused.value.retry_after == math.ceil(RETRY_INTERVAL)
    await store.add("consumer:a", [MINUTE], [10])  # what was spent is still counted, locally
    assert sum(store.fallback.read_now("consumer:a", [MINUTE])[1][0]) == 10
    await store.close()


async def test_counting_goes_back_to_redis_once_it_is_back(redis_server, redis_url, caplog):
    monotonic = Monotonic()
    store = counters_at(redis_url, monotonic=monotonic)
    await store.add("consumer:a", [HOUR], [1])
    redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="aimw.rate_limiting"):
        await store.add("consumer:a", [HOUR], [2])  # fails: counted locally
        redis_server.start()  # empty, on the same port
        await store.add("consumer:a", [HOUR], [4])  # within the retry interval: still local
        assert redis_keys(redis_url) == {}
        monotonic.now += RETRY_INTERVAL
        await store.add("consumer:a", [HOUR], [8])  # tried again: in Redis
    await store.close()
    assert [value for value, _ in redis_keys(redis_url).values()] == [8]
    assert sum(sum(pair) for pair in store.fallback.read_now("consumer:a", [HOUR])[1]) == 6
    messages = [record.getMessage() for record in caplog.records]
    assert "unreachable" in messages[0]
    assert "reachable again after 1 failed calls" in messages[-1]
