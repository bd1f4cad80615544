"""The ``rate_limiting`` section: Kong's ai-rate-limiting-advanced ``config`` as typed
Structs, with Kong's field names, defaults and meaning (Kong's ai-rate-limiting-advanced
reference and handler), plus three fields of aimw's own (``fail_closed``,
``consumer_limits``, ``model_costs``).

Every Struct refuses unknown fields; checks across fields raise ``ValueError("<field>:
<what is expected>")``, which the configuration loader reports at the Struct's own path
(aimw.config.problems). This module imports nothing of aimw.config, which imports it.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

TokensCountStrategy = Literal["total_tokens", "prompt_tokens", "completion_tokens", "cost"]
Identifier = Literal["consumer", "ip", "credential", "header"]
WindowType = Literal["sliding", "fixed"]
Strategy = Literal["local", "redis"]

Seconds = Annotated[int, msgspec.Meta(ge=1, le=366 * 86400)]
Milliseconds = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 2)]
Limit = Annotated[float, msgspec.Meta(gt=0.0)]
Price = Annotated[float, msgspec.Meta(ge=0.0)]

KONG_ERROR_MESSAGE = "API rate limit exceeded for provider "  # Kong's error_message default
KONG_REDIS_TIMEOUT = 2000  # ms, Kong's redis connect / read / send timeout default
KONG_REDIS_POOL_SIZE = 256  # Kong's redis keepalive_pool_size default
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]+")


class Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A record of the section: unknown fields are refused (a typo is an error at its path)."""


class LLMProvider(Record, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``llm_providers[]``: the windows of one provider's usage.

    name: Kong's provider_name whose answers count here (``huggingface``, ``azure`` ...):
        only a provider the gateway serves (checked when the gateway is built).
    limit / window_size: one limit (tokens, or cost units for ``cost``) per window
        (seconds), in the same order; several windows each.
    tokens_count_strategy: aimw's: this entry's own strategy (default the section's), so one
        section caps tokens and spend (Kong 3.14 moved the strategy into each limit for the
        same reason); its headers then end with it (``X-AI-RateLimit-Limit-day-openai-cost``).
    """

    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    limit: Annotated[tuple[Limit, ...], msgspec.Meta(min_length=1)]
    window_size: Annotated[tuple[Seconds, ...], msgspec.Meta(min_length=1)]
    tokens_count_strategy: TokensCountStrategy | None = None

    def __post_init__(self) -> None:
        if len(self.limit) != len(self.window_size):
            raise ValueError("limit: expected one limit per window_size (the same number of each)")
        if len(set(self.window_size)) != len(self.window_size):
            raise ValueError("window_size: each window once per provider (its headers would collide)")


class Redis(Record, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``redis``: where ``strategy: redis`` keeps the counters (Kong's redis fields).

    host / port (default 6379) / database (default 0) / username / password.
    ssl: TLS to Redis; ssl_verify: check its certificate and host name (default true, where
        Kong's default is false: the password crosses this connection).
    connect_timeout / read_timeout / send_timeout: ms (default 2000 each; a read or write
        waits at most the larger of the last two).
    keepalive_pool_size: connections kept per worker (default 256).

    ``repr`` never shows the password.
    """

    host: Annotated[str, msgspec.Meta(min_length=1)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 6379
    database: Annotated[int, msgspec.Meta(ge=0)] = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    ssl_verify: bool = True
    connect_timeout: Milliseconds = KONG_REDIS_TIMEOUT
    read_timeout: Milliseconds = KONG_REDIS_TIMEOUT
    send_timeout: Milliseconds = KONG_REDIS_TIMEOUT
    keepalive_pool_size: Annotated[int, msgspec.Meta(ge=1, le=65535)] = KONG_REDIS_POOL_SIZE

    def __repr__(self) -> str:
        shown = {**msgspec.structs.asdict(self), "password": "<redacted>" if self.password else None}
        return f"Redis({', '.join(f'{name}={value!r}' for name, value in shown.items())})"


class ModelCost(Record, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``model_costs.<model>``: prices per million prompt / completion tokens (Kong's
    ``input_cost`` / ``output_cost`` of a target's model options), any unit: the ``cost``
    limits use the same one."""

    input_cost: Price = 0.0
    output_cost: Price = 0.0


class ConsumerLimits(Record, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``consumer_limits.<username>``: the consumer's own ``llm_providers``, used instead of
    the section's for its requests (Kong: a plugin on the consumer takes precedence over
    the global one). Usage counts are the consumer's either way."""

    llm_providers: Annotated[tuple[LLMProvider, ...], msgspec.Meta(min_length=1)]


class RateLimiting(Record, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The ``rate_limiting`` section (Kong's ai-rate-limiting-advanced ``config``).

    llm_providers: at least one LLMProvider.
    identifier: whose usage a counter holds: ``consumer`` (default; the client-auth layer's
        consumer), ``ip`` (the client's address), ``credential`` (a SHA-256 of the key the
        client presented, never the key), ``header`` (the value of ``header_name``). With
        no consumer, key or header, the client's ip (Kong's fallback).
    window_type: ``sliding`` (default: the previous window weighs in by the part of it still
        inside the sliding window) or ``fixed``.
    strategy: ``local`` (default: this worker's memory) or ``redis`` (``redis``, or
        AIMW_REDIS_URL: shared by every worker and instance).
    tokens_count_strategy: ``total_tokens`` (default), ``prompt_tokens``,
        ``completion_tokens`` or ``cost`` (prompt and completion tokens at ``model_costs``).
    hide_client_headers: no X-AI-RateLimit-Limit / Remaining headers (default false).
    error_message: the 429's message, followed by the providers over their limit unless
        ``error_hide_providers``.
    namespace: the counters' key prefix in Redis (``aimw:rl:<namespace>:``); gateways that
        share a namespace share counters (default ``default``).
    fail_closed: aimw's: refuse requests (529 overloaded_error) while Redis is unreachable,
        instead of counting in the worker (default false: fail open).
    sync_rate: Kong's counter syncing: absent, ``0`` (aimw counts every request in Redis at
        once) or ``-1`` (local); a period is refused. error_code: ``429`` only.
        retry_after_jitter_max: ``0`` only (retry-after is exact). dictionary_name and
        disable_penalty: accepted, unused (nginx's shared dictionary; the requestPrompt
        provider's). request_prompt_count_function: refused when set (a Lua function).
    consumer_limits: aimw's: per-consumer ConsumerLimits, by username.
    model_costs: aimw's: ModelCost by model name or fnmatch pattern (the name wins, then the
        first pattern that matches); the config recipe adds its targets' ``model.options``
        prices for the models they name.
    """

    llm_providers: Annotated[tuple[LLMProvider, ...], msgspec.Meta(min_length=1)]
    identifier: Identifier = "consumer"
    header_name: str | None = None
    window_type: WindowType = "sliding"
    strategy: Strategy = "local"
    redis: Redis | None = None
    tokens_count_strategy: TokensCountStrategy = "total_tokens"
    hide_client_headers: bool = False
    error_message: str = KONG_ERROR_MESSAGE
    error_hide_providers: bool = False
    namespace: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "default"
    fail_closed: bool = False
    sync_rate: float | None = None
    error_code: Literal[429] = 429
    retry_after_jitter_max: Literal[0] = 0
    dictionary_name: str | None = None
    disable_penalty: bool = False
    request_prompt_count_function: None = None
    consumer_limits: dict[str, ConsumerLimits] = msgspec.field(default_factory=dict)
    model_costs: dict[str, ModelCost] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _distinct_windows(self.llm_providers, self.tokens_count_strategy, "llm_providers")
        for username, limits in self.consumer_limits.items():
            _distinct_windows(limits.llm_providers, self.tokens_count_strategy, f"consumer_limits ({username})")
        if (self.identifier == "header") != (self.header_name is not None):
            raise ValueError("header_name: required with identifier: header, and only with it")
        if self.header_name is not None and not _HEADER_NAME.fullmatch(self.header_name):
            raise ValueError("header_name: expected a header name (letters, digits, -)")
        if self.redis is not None and self.strategy != "redis":
            raise ValueError("redis: given, but strategy is local (set strategy: redis)")
        if self.fail_closed and self.strategy != "redis":
            raise ValueError("fail_closed: only with strategy: redis")
        if not _NAMESPACE.fullmatch(self.namespace):
            raise ValueError("namespace: expected letters, digits, _ . -")
        if self.sync_rate not in (None, 0, -1):
            raise ValueError("sync_rate: expected 0 or -1: aimw counts every request in Redis at once, never by period")

    def strategies(self) -> set[TokensCountStrategy]:
        """Every tokens_count_strategy a window of the section (or of a consumer's) uses."""
        entries = [*self.llm_providers, *(entry for c in self.consumer_limits.values() for entry in c.llm_providers)]
        return {entry.tokens_count_strategy or self.tokens_count_strategy for entry in entries}

    def provider_names(self) -> set[str]:
        """Every provider name of the section and of its consumer_limits."""
        entries = [*self.llm_providers, *(entry for c in self.consumer_limits.values() for entry in c.llm_providers)]
        return {entry.name for entry in entries}


def _distinct_windows(entries: tuple[LLMProvider, ...], strategy: TokensCountStrategy, where: str) -> None:
    """A provider's window may appear once per strategy (its X-AI-RateLimit headers are
    named by the three)."""
    seen: set[tuple[str, int, str]] = set()
    for entry in entries:
        counted = entry.tokens_count_strategy or strategy
        for size in entry.window_size:
            if (entry.name, size, counted) in seen:
                raise ValueError(f"{where}: the {size} s window of {entry.name} ({counted}) is given twice")
            seen.add((entry.name, size, counted))
