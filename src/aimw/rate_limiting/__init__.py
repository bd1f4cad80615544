"""Token rate limits and budgets (Kong's ai-rate-limiting-advanced): the ``rate_limiting``
section, the window arithmetic, the counters (this worker's memory, or Redis shared by
every worker and instance) and the middleware built from them.

Modules: config (the section's Structs), windows (sliding and fixed windows, pure
functions of the time), counters (the Counters protocol, LocalCounters), redis_counters
(RedisCounters: Lua scripts, fail open, reconnection), policy (the section compiled:
Limits, Prices, the verdict on a request), build (where the section comes from:
AIMW_RATE_LIMITING, the config file, AIMW_REDIS_URL). The middleware itself is
aimw.middleware.rate_limit.RateLimitMiddleware.
"""

from aimw.rate_limiting.build import config_rate_limited, load_rate_limiting, rate_limited
from aimw.rate_limiting.config import RateLimiting
from aimw.rate_limiting.counters import Counters, CountersUnavailable, LocalCounters
from aimw.rate_limiting.policy import Limits, Prices
from aimw.rate_limiting.redis_counters import RedisCounters, redis_client

__all__ = [
    "Counters",
    "CountersUnavailable",
    "Limits",
    "LocalCounters",
    "Prices",
    "RateLimiting",
    "RedisCounters",
    "config_rate_limited",
    "load_rate_limiting",
    "rate_limited",
    "redis_client",
]
