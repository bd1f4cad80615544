"""The section compiled for the request path: :class:`Limits` (the windows, per consumer
when overridden, and how to answer), :class:`Prices` (``cost``), and :func:`judge`, which
turns a Reading into the verdict on one request and its Kong headers.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aimw.exchange import Usage
from aimw.rate_limiting.config import Identifier, LLMProvider, RateLimiting, TokensCountStrategy, WindowType
from aimw.rate_limiting.counters import Reading
from aimw.rate_limiting.windows import (
    Window,
    elapsed_in_window,
    header_number,
    remaining,
    retry_after,
    seconds_until_below,
    usage,
)
from aimw.types import Headers

logger = logging.getLogger("aimw.rate_limiting")

MAX_UNPRICED_MODELS = 256  # models named in the "no price" warning, at most (client-chosen names)


class Prices:
    """Prices per million prompt / completion tokens by model, from (name or fnmatch
    pattern, input, output) rows: a model's own name wins, then the first pattern matching
    it. A model without a price costs 0, said once per model in the log (at most
    MAX_UNPRICED_MODELS of them)."""

    __slots__ = ("exact", "rows", "unpriced")

    def __init__(self, rows: Sequence[tuple[str, float, float]] = ()) -> None:
        self.rows = tuple(rows)
        self.exact = {pattern: (i, o) for pattern, i, o in reversed(self.rows) if not _is_pattern(pattern)}
        self.unpriced: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.rows)

    def of(self, model: str | None) -> tuple[float, float]:
        """(input, output) prices of ``model``; (0, 0) without one."""
        name = model or ""
        found = self.exact.get(name)
        if found is not None:
            return found
        for pattern, input_cost, output_cost in self.rows:
            if fnmatch.fnmatchcase(name, pattern):
                return input_cost, output_cost
        if name not in self.unpriced and len(self.unpriced) < MAX_UNPRICED_MODELS:
            self.unpriced.add(name)
            logger.warning("rate limiting: no price for model %r: its cost counts as 0 (set model_costs)", name)
        return 0.0, 0.0

    def cost(self, model: str | None, prompt_tokens: int, completion_tokens: int) -> float:
        """The cost of the tokens (the log's ``ai.proxy.usage.cost`` figure)."""
        input_cost, output_cost = self.of(model)
        return (prompt_tokens * input_cost + completion_tokens * output_cost) / 1e6


def _is_pattern(name: str) -> bool:
    return any(char in name for char in "*?[")


@dataclass(frozen=True, slots=True)
class Limits:
    """What RateLimitMiddleware enforces.

    windows: the section's windows; consumer_windows: a consumer's own, by username.
    identifier / header_name: whose usage is counted (header_name lower-case bytes).
    window_type, hide_client_headers, error_message, error_hide_providers: the section's.
    prices: for the ``cost`` windows.
    """

    windows: tuple[Window, ...]
    consumer_windows: Mapping[str, tuple[Window, ...]]
    identifier: Identifier
    header_name: bytes | None
    window_type: WindowType
    hide_client_headers: bool
    error_message: str
    error_hide_providers: bool
    prices: Prices

    @classmethod
    def of(cls, section: RateLimiting, prices: Prices) -> Limits:
        strategy = section.tokens_count_strategy
        return cls(
            windows=_windows(section.llm_providers, strategy),
            consumer_windows={
                name: _windows(limits.llm_providers, strategy) for name, limits in section.consumer_limits.items()
            },
            identifier=section.identifier,
            header_name=section.header_name.lower().encode() if section.header_name else None,
            window_type=section.window_type,
            hide_client_headers=section.hide_client_headers,
            error_message=section.error_message,
            error_hide_providers=section.error_hide_providers,
            prices=prices,
        )

    def amounts(self, windows: Sequence[Window], provider: str | None, model: str | None, used: Usage) -> list[float]:
        """What the answer of ``provider`` adds to each window: its usage in the window's
        strategy for the windows of that provider, 0 for the others. Prompt tokens are
        input + cache read + cache write tokens, as the log counts them."""
        prompt = used.input_tokens + used.cache_read_input_tokens + used.cache_creation_input_tokens
        completion = used.output_tokens
        amounts: list[float] = []
        for window in windows:
            strategy = window.strategy
            if window.provider != provider:
                amounts.append(0.0)
            elif strategy == "total_tokens":
                amounts.append(prompt + completion)
            elif strategy == "prompt_tokens":
                amounts.append(prompt)
            elif strategy == "completion_tokens":
                amounts.append(completion)
            else:
                amounts.append(self.prices.cost(model, prompt, completion))
        return amounts


def _windows(entries: Sequence[LLMProvider], strategy: TokensCountStrategy) -> tuple[Window, ...]:
    """The entries' windows; one whose own strategy is not the section's says it in its headers."""
    windows = []
    for entry in entries:
        own = entry.tokens_count_strategy or strategy
        for limit, size in zip(entry.limit, entry.window_size, strict=True):
            windows.append(Window.of(entry.name, own, size, limit, named=own != strategy))
    return tuple(windows)


@dataclass(slots=True)
class Verdict:
    """The verdict on one request: ``over`` names the providers at or over a limit (empty:
    admitted), ``retry_after`` the whole seconds until every such window is under its limit
    again, ``headers`` Kong's X-AI-RateLimit ones (Limit and Remaining of every window, and
    for a refusal Reset and Retry-After, per window and overall)."""

    over: list[str]
    retry_after: int
    headers: Headers


def judge(limits: Limits, windows: Sequence[Window], reading: Reading) -> Verdict:
    """The verdict on a request whose windows read ``reading``."""
    now, counts = reading
    window_type, show = limits.window_type, not limits.hide_client_headers
    over: list[str] = []
    wait = 0
    headers: Headers = []
    for window, (current, previous) in zip(windows, counts, strict=True):
        elapsed = elapsed_in_window(now, window.size)
        used = usage(window_type, current, previous, window.size, elapsed)
        if show:
            headers.append((window.limit_header, window.limit_value))
            headers.append((window.remaining_header, header_number(remaining(window.strategy, window.limit, used))))
        if used < window.limit:
            continue
        seconds = retry_after(seconds_until_below(window_type, current, previous, window.limit, window.size, elapsed))
        wait = max(wait, seconds)
        if window.provider not in over:
            over.append(window.provider)
        if show:
            headers.append((window.reset_header, str(seconds).encode()))
            headers.append((window.retry_after_header, str(seconds).encode()))
    if over:
        value = str(wait).encode()
        headers += [(b"x-ai-ratelimit-reset", value), (b"x-ai-ratelimit-retry-after", value), (b"retry-after", value)]
    return Verdict(over, wait, headers)
