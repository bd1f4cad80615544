"""``consistent-hashing``: weighted rendezvous (highest random weight) hashing on a header's value.

Every (key, target) pair gets a pseudo-random ``u`` in (0, 1), stable across processes and
restarts (blake2b of the key, mixed with a per-target seed by splitmix64's finalizer; never
Python's randomized ``hash()``). The key goes to the eligible target with the lowest
``-ln(u) / weight``: an exponential race in which target ``i`` wins with probability
``weight_i / sum(weights)``. So the same key always lands on the same target while the eligible
set is the same, and when a target stops being eligible only the keys it held move (each to
its runner-up); nothing else changes. Cost per pick: one blake2b and a few integer operations
per eligible target; no ring to build or keep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from hashlib import blake2b

from aimw.balancer.figures import AttemptFigures
from aimw.balancer.rotation import SmoothRotation

__all__ = ["ConsistentHashing", "key_hash"]

MASK64 = (1 << 64) - 1
UNIT53 = 2.0**-53  # one step of a 53-bit fraction: floats in (0, 1) exactly


def key_hash(value: bytes) -> int:
    """A stable 64-bit hash of ``value`` (blake2b, 8-byte digest, big-endian)."""
    return int.from_bytes(blake2b(value, digest_size=8).digest(), "big")


def _mix(value: int) -> int:
    """splitmix64's finalizer: a bijection on 64-bit integers that spreads every input bit."""
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK64
    return value ^ (value >> 31)


class ConsistentHashing:
    """Picks by the hashed header's value; without one (absent or empty), smooth weighted round robin.

    Targets are known by their index: reordering the configured targets remaps the keys.
    """

    __slots__ = ("_rotation", "_seeds", "_weights")

    def __init__(self, weights: Sequence[int], rotation: SmoothRotation) -> None:
        self._weights = tuple(weights)
        self._seeds = tuple(key_hash(b"aimw-balancer-target-%d" % index) for index in range(len(self._weights)))
        self._rotation = rotation

    def pick(self, eligible: Sequence[int], hash_value: bytes | None) -> int:
        if not hash_value:
            return self._rotation.next(eligible)
        key = key_hash(hash_value)
        seeds, weights = self._seeds, self._weights
        best = eligible[0]
        best_race = math.inf
        for index in eligible:
            unit = ((_mix(key ^ seeds[index]) >> 11) + 0.5) * UNIT53
            race = -math.log(unit) / weights[index]
            if race < best_race:
                best, best_race = index, race
        return best

    def record(self, index: int, figures: AttemptFigures) -> None:
        """Nothing to learn: the mapping depends on the key and the weights alone."""
