"""The measured algorithms: ``lowest-latency`` and ``lowest-usage``, on scores that decay with time.

Both keep, per target, a value and the time it was last touched, and read it decayed by
``exp(-elapsed / DECAY_TIME)`` and divided by the target's weight, as Kong's ai-proxy-advanced
EWMA balancer does (itself after Finagle's PeakEwma; 10 s decay time). A target nobody measured
for a while therefore drifts back toward 0 and is tried again: a once-slow target is re-probed
and a once-busy one gets traffic back. Never-measured targets score 0 and so come first; equal
scores go round robin.

Latency is Kong's time-weighted average. Usage is a decayed running total (tokens or cost used
recently), where Kong averages each attempt's usage: an average ranks targets by the size of
their requests, a total by the volume they served, which is what "lowest usage" balances.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import MappingProxyType

from aimw.balancer.figures import AttemptFigures
from aimw.balancer.rotation import SmoothRotation
from aimw.balancer.strategies import lowest

__all__ = ["DECAY_TIME", "LATENCY_STRATEGIES", "TOKENS_COUNT_STRATEGIES", "LowestLatency", "LowestUsage"]

SECONDS = 1.0
DECAY_TIME = 10 * SECONDS

LATENCY_STRATEGIES = ("tpot", "e2e")
# tokens_count_strategy -> what one attempt used: tokens, or cost in currency units
_USAGE: MappingProxyType[str, Callable[[AttemptFigures], float]] = MappingProxyType(
    {
        "total-tokens": lambda figures: figures.prompt_tokens + figures.completion_tokens,
        "prompt-tokens": lambda figures: figures.prompt_tokens,
        "completion-tokens": lambda figures: figures.completion_tokens,
        "cost": lambda figures: figures.cost,
    }
)
TOKENS_COUNT_STRATEGIES = tuple(_USAGE)

NEVER = float("-inf")  # touched time of a never-measured target: its value counts for nothing


class DecayingScores:
    """Per-target values that decay toward 0 with the clock (s), read per unit of weight."""

    __slots__ = ("_clock", "_touched", "_values", "_weights")

    def __init__(self, weights: Sequence[int], clock: Callable[[], float]) -> None:
        self._weights = tuple(weights)
        self._clock = clock
        self._values = [0.0] * len(self._weights)
        self._touched = [NEVER] * len(self._weights)

    def pick(self, eligible: Sequence[int], rotation: SmoothRotation) -> int:
        """The eligible target with the lowest decayed value / weight now; ties go to ``rotation``."""
        now = self._clock()
        values, touched, weights = self._values, self._touched, self._weights

        def score(index: int) -> float:
            return values[index] * math.exp((touched[index] - now) / DECAY_TIME) / weights[index]

        return lowest(eligible, score, rotation)

    def average(self, index: int, sample: float) -> None:
        """Blend ``sample`` into the time-weighted average: the longer since the last sample, the more
        it counts (all of it for a target never measured, or idle for many decay times)."""
        now = self._clock()
        kept = math.exp((self._touched[index] - now) / DECAY_TIME)
        self._values[index] = self._values[index] * kept + sample * (1.0 - kept)
        self._touched[index] = now

    def add(self, index: int, amount: float) -> None:
        """Add ``amount`` to the decayed running total: a recent-usage volume."""
        now = self._clock()
        self._values[index] = self._values[index] * math.exp((self._touched[index] - now) / DECAY_TIME) + amount
        self._touched[index] = now


class LowestLatency:
    """``lowest-latency``: the lowest time-weighted average latency per unit of weight.

    ``latency_strategy`` ``tpot`` learns ``AttemptFigures.tpot_ms`` (ms per output token; answers
    without output tokens teach nothing), ``e2e`` learns ``e2e_ms`` (ms for the whole answer).
    Only successful attempts are learnt from: a fast failure must not look like a fast target.
    """

    __slots__ = ("_rotation", "_scores", "_tpot")

    def __init__(self, scores: DecayingScores, rotation: SmoothRotation, latency_strategy: str) -> None:
        """``latency_strategy``: one of LATENCY_STRATEGIES (the Balancer checked it)."""
        self._scores = scores
        self._rotation = rotation
        self._tpot = latency_strategy == "tpot"

    def pick(self, eligible: Sequence[int], hash_value: bytes | None) -> int:
        return self._scores.pick(eligible, self._rotation)

    def record(self, index: int, figures: AttemptFigures) -> None:
        if not figures.success:
            return
        sample = figures.tpot_ms if self._tpot else figures.e2e_ms
        if sample is not None:
            self._scores.average(index, sample)


class LowestUsage:
    """``lowest-usage``: the lowest recent usage per unit of weight, usage being the decayed total
    of what each attempt consumed: ``total-tokens``, ``prompt-tokens`` or ``completion-tokens``
    (tokens), or ``cost`` (currency units). Failed attempts count too: what they used is used.
    """

    __slots__ = ("_measure", "_rotation", "_scores")

    def __init__(self, scores: DecayingScores, rotation: SmoothRotation, tokens_count_strategy: str) -> None:
        """``tokens_count_strategy``: one of TOKENS_COUNT_STRATEGIES (the Balancer checked it)."""
        self._scores = scores
        self._rotation = rotation
        self._measure = _USAGE[tokens_count_strategy]

    def pick(self, eligible: Sequence[int], hash_value: bytes | None) -> int:
        return self._scores.pick(eligible, self._rotation)

    def record(self, index: int, figures: AttemptFigures) -> None:
        self._scores.add(index, self._measure(figures))
