"""LogHistogram: percentiles of a stream of positive values in bounded memory.

The values fall into fixed, log-spaced buckets: bucket ``i`` holds the values in
``(GAMMA**(i-1), GAMMA**i]`` and stands for ``2 * GAMMA**i / (GAMMA + 1)``, which is within
``RELATIVE_ERROR`` (1 %) of every value in it (DDSketch's construction: Masson, Rim and Lee,
"DDSketch: a fast and fully-mergeable quantile sketch with relative-error guarantees",
VLDB 2019). A percentile is therefore within 1 % of the exact nearest-rank percentile of
the values added, and never outside the smallest and largest of them (kept exactly: a
group of equal values shows that value). Values are clamped to ``[MIN_VALUE, MAX_VALUE]``,
so a histogram never holds more than ``MAX_BUCKETS`` counts whatever the number of values;
histograms of the same kind merge exactly (bucket counts add up).
"""

from __future__ import annotations

import math

RELATIVE_ERROR = 0.01
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(GAMMA)
MIN_VALUE = 1e-3  # the smallest value told apart (ms, tokens per second): below it, counted as it
MAX_VALUE = 1e9  # the largest (11.6 days in ms)
_MIN_INDEX = math.ceil(math.log(MIN_VALUE) / _LOG_GAMMA)
_MAX_INDEX = math.ceil(math.log(MAX_VALUE) / _LOG_GAMMA)
MAX_BUCKETS = _MAX_INDEX - _MIN_INDEX + 1


class LogHistogram:
    """Counts of positive values per log-spaced bucket (see the module); ``count`` values in all."""

    __slots__ = ("buckets", "count", "largest", "smallest")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.smallest = math.inf
        self.largest = -math.inf

    def add(self, value: float) -> None:
        """Count ``value`` (> 0; values out of range count as the nearest bound)."""
        if value <= MIN_VALUE:
            index = _MIN_INDEX
        elif value >= MAX_VALUE:
            index = _MAX_INDEX
        else:
            index = math.ceil(math.log(value) / _LOG_GAMMA)
        self.buckets[index] = self.buckets.get(index, 0) + 1
        self.count += 1
        self.smallest = min(self.smallest, value)
        self.largest = max(self.largest, value)

    def merge(self, other: LogHistogram) -> None:
        """Add ``other``'s counts to this histogram's."""
        for index, count in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + count
        self.count += other.count
        self.smallest = min(self.smallest, other.smallest)
        self.largest = max(self.largest, other.largest)

    def percentile(self, percent: int) -> float | None:
        """The nearest-rank ``percent`` percentile (0 < percent <= 100: the value of rank
        ceil(percent * count / 100)) within 1 %, None when empty."""
        if not self.count:
            return None
        rank = max(1, (percent * self.count + 99) // 100)
        indices = sorted(self.buckets)
        seen = 0
        for index in indices[:-1]:
            seen += self.buckets[index]
            if seen >= rank:
                return self._within_range(_value(index))
        return self._within_range(_value(indices[-1]))

    def _within_range(self, value: float) -> float:
        return min(max(value, self.smallest), self.largest)


def _value(index: int) -> float:
    """What bucket ``index`` stands for: within RELATIVE_ERROR of each value it holds."""
    return 2 * GAMMA**index / (GAMMA + 1)
