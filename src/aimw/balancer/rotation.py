"""Smooth weighted round robin (nginx's ``ngx_http_upstream_get_peer``) over any subset of targets."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["SmoothRotation"]


class SmoothRotation:
    """Weighted round robin that interleaves: weights 5, 1, 1 give a a b a c a a, not a a a a a b c.

    Each pick adds every candidate's weight to its running ``current`` value, takes the
    candidate with the highest (the lowest index on a tie) and takes the candidates' total
    weight off the winner. Over any run of picks on the same candidates each gets its share
    of the weight, interleaved: after every pick each candidate's count stays within one pick
    of its exact share (the tests check it). Cost: O(len(candidates)) integer additions, no
    allocation.
    """

    __slots__ = ("_current", "_weights")

    def __init__(self, weights: Sequence[int]) -> None:
        self._weights = tuple(weights)
        self._current = [0] * len(self._weights)

    def next(self, candidates: Sequence[int]) -> int:
        """The next target among ``candidates`` (non-empty target indices); IndexError if empty."""
        weights = self._weights
        current = self._current
        best = candidates[0]
        best_current = current[best] + weights[best]
        current[best] = best_current
        total = weights[best]
        for index in candidates[1:]:
            weight = weights[index]
            value = current[index] + weight
            current[index] = value
            total += weight
            if value > best_current:
                best, best_current = index, value
        current[best] = best_current - total
        return best
