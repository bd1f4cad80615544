"""Window arithmetic, as Kong's rate-limiting library does it: pure functions of the counts
and the time (``now``: seconds since the epoch, a float), so tests give any clock.

Windows are aligned to the epoch: the window of size ``W`` holding ``now`` is number
``floor(now / W)`` and started at ``floor(now / W) * W``; ``elapsed`` is ``now`` minus that
start. A counter keeps the usage added in its current window and in the one before.

- ``fixed``: the usage is the current window's.
- ``sliding``: the previous window weighs in by the part of it still inside a window
  ending now: ``previous * (W - elapsed) / W + current`` (Kong's sliding window).

A request is refused while the usage of any of its windows is at or over the limit;
:func:`seconds_until_below` says how long until it falls under, if nothing more is added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aimw.rate_limiting.config import TokensCountStrategy, WindowType

# Kong's names of the usual window sizes in its headers (X-AI-RateLimit-Limit-minute-openai);
# any other size is named by its seconds (X-AI-RateLimit-Limit-30-azure).
HUMAN_WINDOW_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day", 2592000: "month", 31536000: "year"}


@dataclass(frozen=True, slots=True)
class Window:
    """One limit of one provider, as configured (build it with :meth:`of`).

    provider: Kong's provider_name whose answers count here. strategy: what is counted.
    size: seconds. limit: tokens (or cost units). counter: the counter's name under an
    identifier (``huggingface:total_tokens:60``). label: the suffix of its headers
    (``minute-huggingface``, Kong's); limit_value: the limit as a header says it; limit_header,
    remaining_header, reset_header,
    retry_after_header: Kong's X-AI-RateLimit-{Limit,Remaining,Reset,Retry-After}-<label>,
    lower-case bytes (ASGI's header names).
    """

    provider: str
    strategy: TokensCountStrategy
    size: int
    limit: float
    counter: str
    label: str
    limit_value: bytes
    limit_header: bytes
    remaining_header: bytes
    reset_header: bytes
    retry_after_header: bytes

    @classmethod
    def of(
        cls, provider: str, strategy: TokensCountStrategy, size: int, limit: float, *, named: bool = False
    ) -> Window:
        """The window; ``named``: its label ends with its strategy (``day-openai-cost``), for
        an llm_providers entry with its own tokens_count_strategy."""
        label = f"{HUMAN_WINDOW_NAMES.get(size, str(size))}-{provider}" + (f"-{strategy}" if named else "")
        suffix = f"-{label}".lower()
        return cls(
            provider,
            strategy,
            size,
            limit,
            f"{provider}:{strategy}:{size}",
            label,
            header_number(limit),
            f"x-ai-ratelimit-limit{suffix}".encode(),
            f"x-ai-ratelimit-remaining{suffix}".encode(),
            f"x-ai-ratelimit-reset{suffix}".encode(),
            f"x-ai-ratelimit-retry-after{suffix}".encode(),
        )


def window_index(now: float, size: int) -> int:
    """The number of the window of ``size`` seconds holding ``now``."""
    return math.floor(now / size)


def elapsed_in_window(now: float, size: int) -> float:
    """Seconds since the window of ``size`` holding ``now`` started (``now`` minus
    ``window_index(now, size) * size``)."""
    return now % size


def usage(window_type: WindowType, current: float, previous: float, size: int, elapsed: float) -> float:
    """The window's usage ``elapsed`` seconds into its current window."""
    if window_type == "fixed":
        return current
    return previous * (size - elapsed) / size + current


def seconds_until_below(
    window_type: WindowType, current: float, previous: float, limit: float, size: int, elapsed: float
) -> float:
    """Seconds from now until the usage is under ``limit`` again, if nothing is added
    meanwhile; 0 when it already is.

    fixed: the current window's end (the next starts at 0). sliding, with ``current`` at or
    over the limit: the current window's end, then the part of the next during which this
    window's usage, as the previous one, still weighs ``limit`` or more:
    ``(W - elapsed) + W * (1 - limit / current)``; under the limit: the moment the previous
    window's weight drops below what is left, ``W - W * (limit - current) / previous - elapsed``.
    """
    if usage(window_type, current, previous, size, elapsed) < limit:
        return 0.0
    if window_type == "fixed":
        return size - elapsed
    if current >= limit:
        return (size - elapsed) + size * (1 - limit / current)
    return max(size - size * (limit - current) / previous - elapsed, 0.0)


def retry_after(seconds: float) -> int:
    """Whole seconds to wait to be past ``seconds``: the first whole second after it (at
    least 1), as the ``retry-after`` header says it."""
    return math.floor(seconds) + 1


def remaining(strategy: TokensCountStrategy, limit: float, used: float) -> float:
    """What is left under the limit: whole tokens (rounded down), or cost units."""
    left = max(limit - used, 0.0)
    return left if strategy == "cost" else math.floor(left)


def header_number(value: float) -> bytes:
    """A header's number: an integer without ``.0``, else up to 6 decimals (cost units)."""
    if value == int(value):
        return str(int(value)).encode()
    return f"{value:.6f}".rstrip("0").rstrip(".").encode()
