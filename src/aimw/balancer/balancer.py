"""The :class:`Balancer`: one algorithm's :class:`Strategy`, the in-flight counts and the breakers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from aimw.balancer.breaker import Circuit
from aimw.balancer.figures import AttemptFigures
from aimw.balancer.hashing import ConsistentHashing
from aimw.balancer.measured import (
    LATENCY_STRATEGIES,
    TOKENS_COUNT_STRATEGIES,
    DecayingScores,
    LowestLatency,
    LowestUsage,
)
from aimw.balancer.rotation import SmoothRotation
from aimw.balancer.strategies import LeastConnections, Priority, RoundRobin, Strategy

__all__ = ["ALGORITHMS", "MAX_WEIGHT", "Balancer"]

ALGORITHMS = ("round-robin", "priority", "least-connections", "lowest-latency", "lowest-usage", "consistent-hashing")
MAX_WEIGHT = 65535  # Kong's bound on a target's weight
MILLISECONDS = 1e-3  # seconds


class Balancer:
    """Picks one of a request's eligible targets and learns from each finished attempt.

    ``weights``: one per target (1..65535), in the configured order; targets are known by their
    index in it. ``algorithm``: one of :data:`ALGORITHMS` (Kong's names). ``hash_on_header``: the
    header whose value ``consistent-hashing`` hashes (any case). ``latency_strategy``: ``tpot`` or
    ``e2e`` (``lowest-latency``). ``tokens_count_strategy``: ``total-tokens``, ``prompt-tokens``,
    ``completion-tokens`` or ``cost`` (``lowest-usage``). ``max_fails``: failures within
    ``fail_timeout_ms`` (ms) that open a target's circuit for ``fail_timeout_ms``; 0 never opens
    one. ``clock``: seconds, monotonic. ValueError on any value out of these ranges, and for
    ``semantic`` (not supported).

    Per attempt: ``available()`` to filter, ``pick()``, ``started()`` when the request goes, then
    exactly one ``finished()`` (in a ``finally``: an unreported attempt stays in flight).
    """

    __slots__ = ("_circuits", "_clock", "_in_flight", "_strategy", "hash_header")

    def __init__(
        self,
        weights: Sequence[int],
        algorithm: str = "round-robin",
        *,
        hash_on_header: str = "X-Kong-LLM-Request-ID",
        latency_strategy: str = "tpot",
        tokens_count_strategy: str = "total-tokens",
        max_fails: int = 0,
        fail_timeout_ms: float = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not weights or not all(isinstance(w, int) and 1 <= w <= MAX_WEIGHT for w in weights):
            raise ValueError(f"weights must be one or more integers in 1..{MAX_WEIGHT}, not {list(weights)!r}")
        if latency_strategy not in LATENCY_STRATEGIES:
            raise ValueError(f"latency_strategy must be one of {LATENCY_STRATEGIES}, not {latency_strategy!r}")
        if tokens_count_strategy not in TOKENS_COUNT_STRATEGIES:
            raise ValueError(
                f"tokens_count_strategy must be one of {TOKENS_COUNT_STRATEGIES}, not {tokens_count_strategy!r}"
            )
        if max_fails < 0 or not fail_timeout_ms > 0:
            raise ValueError(f"max_fails must be >= 0 and fail_timeout_ms > 0, not {max_fails!r}, {fail_timeout_ms!r}")
        self.hash_header: bytes = hash_on_header.lower().encode("latin-1")
        self._clock = clock
        self._in_flight = [0] * len(weights)
        self._strategy = _strategy(algorithm, weights, self._in_flight, clock, latency_strategy, tokens_count_strategy)
        fail_timeout = fail_timeout_ms * MILLISECONDS
        self._circuits = tuple(Circuit(max_fails, fail_timeout) for _ in weights) if max_fails else ()

    def available(self, index: int) -> bool:
        """True when target ``index`` may be tried now: its circuit is closed, or half-open with no
        probe under way (always True with ``max_fails`` 0). ``index``: a target's index."""
        return not self._circuits or self._circuits[index].available(self._clock())

    def pick(self, eligible: Sequence[int], hash_value: bytes | None = None) -> int:
        """One of ``eligible``: the target indices the caller allows for this attempt (its model
        routing, not yet tried in this request, ``available()``). ``hash_value``: the request's value
        of ``hash_header`` for ``consistent-hashing`` (None when absent: round robin). ValueError if
        ``eligible`` is empty."""
        if not eligible:
            raise ValueError("no eligible target to pick from")
        return self._strategy.pick(eligible, hash_value)

    def started(self, index: int) -> None:
        """One more request in flight on target ``index`` (a half-open circuit's probe)."""
        self._in_flight[index] += 1
        if self._circuits:
            self._circuits[index].started(self._clock())

    def finished(self, index: int, figures: AttemptFigures) -> None:
        """The attempt on target ``index`` that ``started()`` announced is over: one less in flight;
        its latency and usage are learnt; its success closes a probed circuit, its failure counts."""
        self._in_flight[index] -= 1
        self._strategy.record(index, figures)
        if self._circuits:
            self._circuits[index].finished(figures.success, self._clock())


def _strategy(
    algorithm: str,
    weights: Sequence[int],
    in_flight: list[int],
    clock: Callable[[], float],
    latency_strategy: str,
    tokens_count_strategy: str,
) -> Strategy:
    """The picking rule of ``algorithm``; ValueError for an unknown (or unsupported) name."""
    rotation = SmoothRotation(weights)
    match algorithm:
        case "round-robin":
            return RoundRobin(rotation)
        case "priority":
            return Priority(weights, rotation)
        case "least-connections":
            return LeastConnections(weights, in_flight, rotation)
        case "lowest-latency":
            return LowestLatency(DecayingScores(weights, clock), rotation, latency_strategy)
        case "lowest-usage":
            return LowestUsage(DecayingScores(weights, clock), rotation, tokens_count_strategy)
        case "consistent-hashing":
            return ConsistentHashing(weights, rotation)
        case "semantic":
            raise ValueError("balancer algorithm 'semantic' is not supported")
        case _:
            raise ValueError(f"balancer algorithm must be one of {ALGORITHMS}, not {algorithm!r}")
