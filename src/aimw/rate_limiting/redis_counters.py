"""RedisCounters: usage counters in Redis (``strategy: redis``), shared by every worker and
every gateway instance that uses the same Redis and namespace.

Keys are ``aimw:rl:<namespace>:<identifier>:<counter>:<window number>``, each a float
(INCRBYFLOAT: tokens or cost units) that expires two windows after its last add (no
window needs it longer). Reads and adds are Lua scripts (``register_script``), one round
trip each, atomic, and timed by Redis's own clock (TIME): every instance agrees on where a
window starts, whatever the skew of the machines' clocks, so sliding windows are weighed
the same everywhere at a boundary. Needs Redis 5 or later (scripts replicated by effects).

When Redis cannot be reached (or answers with an error), the gateway keeps serving and
counts in the worker's memory (a LocalCounters), fails open; with ``fail_closed`` it
refuses instead (CountersUnavailable). The fault is logged at once, then at most once per
LOG_INTERVAL while it lasts, and again when Redis is back. Redis is tried again
RETRY_INTERVAL after a fault, by one request at a time (the others count locally
meanwhile), through redis-py's pool, which opens new connections; what was counted
locally during the outage stays local.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio
from redis.asyncio.connection import BlockingConnectionPool, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from aimw.errors import redact
from aimw.rate_limiting.config import KONG_REDIS_POOL_SIZE, KONG_REDIS_TIMEOUT, Redis
from aimw.rate_limiting.counters import CountersUnavailable, LocalCounters, Reading
from aimw.rate_limiting.windows import Window

logger = logging.getLogger("aimw.rate_limiting")

RETRY_INTERVAL = 1.0  # seconds after a fault before Redis is tried again
LOG_INTERVAL = 30.0  # seconds between two log lines about one outage
KEY_PREFIX = "aimw:rl:"

READ_SCRIPT = """
-- KEYS: one counter per window; ARGV: the windows' sizes (s). Returns Redis's TIME (s, us),
-- then each window's current and previous counts.
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local counts = {time[1], time[2]}
for i, key in ipairs(KEYS) do
  local index = math.floor(now / tonumber(ARGV[i]))
  counts[#counts + 1] = redis.call('GET', key .. ':' .. index) or '0'
  counts[#counts + 1] = redis.call('GET', key .. ':' .. (index - 1)) or '0'
end
return counts
"""

ADD_SCRIPT = """
-- KEYS: one counter per window; ARGV: the windows' sizes (s), then the amounts to add.
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local n = #KEYS
for i = 1, n do
  local size = tonumber(ARGV[i])
  local key = KEYS[i] .. ':' .. math.floor(now / size)
  redis.call('INCRBYFLOAT', key, ARGV[n + i])
  redis.call('EXPIRE', key, 2 * size)
end
return n
"""

_FAULTS = (RedisError, OSError, TimeoutError)
_UNREACHABLE = "rate limiting: Redis at %s unreachable (%s): %s, trying again every %g s"


def redis_client(section: Redis | None, url: str | None) -> redis.asyncio.Redis:
    """A redis-py asyncio client for the ``redis`` section or, without one, the ``url``
    (AIMW_REDIS_URL: ``redis://`` or ``rediss://``), on a pool of at most
    ``keepalive_pool_size`` connections (a call waits for one at most ``connect_timeout``),
    opened as calls need them. It never retries by itself: RedisCounters decides when.

    Raises:
        ValueError: neither a section nor a URL, or a URL redis-py does not read.
    """
    options: dict[str, Any] = {"retry": Retry(NoBackoff(), 0)}
    if section is None:
        if url is None:
            raise ValueError("a redis section or AIMW_REDIS_URL is needed")
        timeout = KONG_REDIS_TIMEOUT / 1000
        options.update(socket_connect_timeout=timeout, socket_timeout=timeout)
        pool = BlockingConnectionPool.from_url(url, max_connections=KONG_REDIS_POOL_SIZE, timeout=timeout, **options)
        return redis.asyncio.Redis.from_pool(pool)
    options.update(
        host=section.host,
        port=section.port,
        db=section.database,
        username=section.username,
        password=section.password,
        socket_connect_timeout=section.connect_timeout / 1000,
        socket_timeout=max(section.read_timeout, section.send_timeout) / 1000,
    )
    if section.ssl:
        options.update(
            connection_class=SSLConnection,
            ssl_cert_reqs="required" if section.ssl_verify else "none",
            ssl_check_hostname=section.ssl_verify,
        )
    pool = BlockingConnectionPool(
        max_connections=section.keepalive_pool_size, timeout=section.connect_timeout / 1000, **options
    )
    return redis.asyncio.Redis.from_pool(pool)


class RedisCounters:
    """Counters in Redis, with a local fallback (see the module's docstring).

    Args:
        connect: makes the client (:func:`redis_client`), once per worker, in its event loop.
        where: names the Redis in log lines (``host:port``; never a password).
        namespace: the keys' prefix after ``aimw:rl:``.
        fail_closed: refuse (CountersUnavailable from :meth:`read`) while Redis is out.
        clock: the fallback's clock; monotonic: the retry and log intervals' clock.
    """

    def __init__(
        self,
        connect: Callable[[], redis.asyncio.Redis],
        *,
        where: str,
        namespace: str = "default",
        fail_closed: bool = False,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connect = connect
        self.where = where
        self.prefix = f"{KEY_PREFIX}{namespace}:"
        self.fail_closed = fail_closed
        self.fallback = LocalCounters(clock)
        self.monotonic = monotonic
        self.client: redis.asyncio.Redis | None = None
        self.scripts: tuple[AsyncScript, AsyncScript] | None = None
        self.down = False  # the last call failed
        self.probing = False  # a request is trying Redis again
        self.retry_at = 0.0
        self.next_log = 0.0
        self.faults = 0  # failed calls in this outage

    async def open(self) -> None:
        """Make the client and check that Redis answers (a fault is logged, not raised)."""
        client = self._client()
        try:
            await client.ping()
        except _FAULTS as exc:
            self._fault(exc)

    async def close(self) -> None:
        if self.client is not None:
            client, self.client, self.scripts = self.client, None, None
            await client.aclose()

    async def read(self, identifier: str, windows: Sequence[Window]) -> Reading:
        """Redis's time and the windows' (current, previous) counts; the worker's own while
        Redis is out (CountersUnavailable with fail_closed)."""
        keys = [f"{self.prefix}{identifier}:{window.counter}" for window in windows]
        reply = await self._call(0, keys, [window.size for window in windows])
        if reply is None:
            if self.fail_closed:
                message = f"the rate-limit counters (Redis at {self.where}) cannot be reached"
                raise CountersUnavailable(message, math.ceil(RETRY_INTERVAL))
            return self.fallback.read_now(identifier, windows)
        now = int(reply[0]) + int(reply[1]) / 1e6
        counts = [(float(reply[i]), float(reply[i + 1])) for i in range(2, len(reply), 2)]
        return now, counts

    async def add(self, identifier: str, windows: Sequence[Window], amounts: Sequence[float]) -> None:
        """Add ``amounts`` to the windows' current counts (in the worker while Redis is out),
        to the end even when the caller is cancelled meanwhile (the usage was spent)."""
        await asyncio.shield(self._add(identifier, windows, amounts))

    async def _add(self, identifier: str, windows: Sequence[Window], amounts: Sequence[float]) -> None:
        keys = [f"{self.prefix}{identifier}:{window.counter}" for window in windows]
        args: list[float] = [window.size for window in windows]
        if await self._call(1, keys, [*args, *amounts]) is None:
            self.fallback.add_now(identifier, windows, amounts)

    async def _call(self, which: int, keys: list[str], args: list[float]) -> Any:
        """Script ``which`` (0 read, 1 add)'s reply, or None when Redis is out (now, or
        still: not retried before ``retry_at``, and by one request at a time)."""
        if self.down:
            if self.probing or self.monotonic() < self.retry_at:
                return None
            self.probing = True
        scripts = self.scripts or self._scripts()
        try:
            reply = await scripts[which](keys=keys, args=args)
        except _FAULTS as exc:
            self._fault(exc)
            return None
        finally:
            self.probing = False
        if self.down:
            self._recovered()
        return reply

    def _client(self) -> redis.asyncio.Redis:
        if self.client is None:
            self.client = self.connect()
        return self.client

    def _scripts(self) -> tuple[AsyncScript, AsyncScript]:
        client = self._client()
        self.scripts = scripts = (client.register_script(READ_SCRIPT), client.register_script(ADD_SCRIPT))
        return scripts

    def _fault(self, exc: BaseException) -> None:
        now = self.monotonic()
        self.down, self.retry_at, self.faults = True, now + RETRY_INTERVAL, self.faults + 1
        if now >= self.next_log:
            self.next_log = now + LOG_INTERVAL
            then = "refusing requests (fail_closed)" if self.fail_closed else "counting in this worker (fail open)"
            why = f"{redact(str(exc) or type(exc).__name__)}; {self.faults} failed calls"
            logger.warning(_UNREACHABLE, self.where, why, then, RETRY_INTERVAL)

    def _recovered(self) -> None:
        logger.warning("rate limiting: Redis at %s reachable again after %d failed calls", self.where, self.faults)
        self.down, self.faults, self.next_log = False, 0, 0.0
