"""The picking rule of each algorithm behind one :class:`Strategy` Protocol: the rotations and
least-connections here, the measured ones in :mod:`.measured`, consistent hashing in :mod:`.hashing`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

from aimw.balancer.figures import AttemptFigures
from aimw.balancer.rotation import SmoothRotation

__all__ = ["LeastConnections", "Priority", "RoundRobin", "Strategy", "lowest"]


class Strategy(Protocol):
    """One algorithm's picking rule; the :class:`Balancer` keeps breakers and in-flight counts."""

    def pick(self, eligible: Sequence[int], hash_value: bytes | None) -> int:
        """One of ``eligible`` (non-empty target indices); ``hash_value``: the hashed header's value."""
        ...

    def record(self, index: int, figures: AttemptFigures) -> None:
        """Learn from one finished attempt on target ``index``."""
        ...


def lowest(eligible: Sequence[int], score: Callable[[int], float], rotation: SmoothRotation) -> int:
    """The index of ``eligible`` (non-empty) with the lowest ``score(index)``; ties go to ``rotation``."""
    least: list[int] = []
    bottom = math.inf
    for index in eligible:
        value = score(index)
        if value < bottom:
            bottom = value
            least = [index]
        elif value == bottom:
            least.append(index)
    return least[0] if len(least) == 1 else rotation.next(least)


class RoundRobin:
    """``round-robin``: smooth weighted round robin over the eligible targets."""

    __slots__ = ("_rotation",)

    def __init__(self, rotation: SmoothRotation) -> None:
        self._rotation = rotation

    def pick(self, eligible: Sequence[int], hash_value: bytes | None) -> int:
        return self._rotation.next(eligible)

    def record(self, index: int, figures: AttemptFigures) -> None:
        """Nothing to learn: the rotation depends on the weights alone."""


class Priority:
    """``priority``: the eligible targets of the highest weight, round robin among them; a lower
    weight's group is used only when no target of a higher weight is eligible."""

    __slots__ = ("_rotation", "_weights")

    def __init__(self, weights: Sequence[int], rotation: SmoothRotation) -> None:
        self._weights = tuple(weights)
        self._rotation = rotation

    def pick(self, eligible: Sequence[int], hash_value: bytes | None) -> int:
        return lowest(eligible, self._rank, self._rotation)

    def _rank(self, index: int) -> float:
        return -self._weights[index]

    def record(self, index: int, figures: AttemptFigures) -> None:
        """Nothing to learn: the groups depend on the weights alone."""


class LeastConnections:
    """``least-connections``: the eligible target with the fewest in-flight requests per unit of
    weight (in_flight / weight); ties go round robin."""

    __slots__ = ("_in_flight", "_rotation", "_weights")

    def __init__(self, weights: Sequence[int], in_flight: list[int], rotation: SmoothRotation) -> None:
        self._weights = tuple(weights)
        self._in_flight = in_flight  # the Balancer's counts, shared: read here, written there
        self._rotation = rotation

    def pick(self, eligible: Sequence[int], hash_value: bytes | None) -> int:
        return lowest(eligible, self._load, self._rotation)

    def _load(self, index: int) -> float:
        return self._in_flight[index] / self._weights[index]

    def record(self, index: int, figures: AttemptFigures) -> None:
        """Nothing to learn: the Balancer keeps the in-flight counts."""
