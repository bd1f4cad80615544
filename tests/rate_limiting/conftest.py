"""The rate-limiting tests' Redis: a real redis-server on a free loopback port, started for
the module and emptied for each test (tests/rate_limiting/redis_server.py)."""

from __future__ import annotations

import pytest
import redis

from tests.rate_limiting.redis_server import RedisServer


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The module's Redis, running and empty."""
    if not redis_server.accepting():
        redis_server.start()
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url
