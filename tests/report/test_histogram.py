"""LogHistogram: percentiles within 1 % of the exact nearest-rank ones, exact merges, and a
bounded number of buckets whatever it is fed."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from aimw.report.histogram import MAX_BUCKETS, MAX_VALUE, MIN_VALUE, RELATIVE_ERROR, LogHistogram

values = st.lists(st.floats(min_value=MIN_VALUE, max_value=MAX_VALUE, allow_nan=False), min_size=1, max_size=300)


def exact(samples: list[float], percent: int) -> float:
    """The nearest-rank percentile: the value of rank ceil(percent * n / 100)."""
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(percent * len(ordered) / 100)) - 1]


def histogram_of(samples: list[float]) -> LogHistogram:
    histogram = LogHistogram()
    for value in samples:
        histogram.add(value)
    return histogram


@given(values, st.sampled_from([1, 50, 90, 95, 99, 100]))
def test_percentiles_are_within_the_relative_error(samples, percent):
    estimate = histogram_of(samples).percentile(percent)
    true = exact(samples, percent)
    assert estimate is not None
    assert abs(estimate - true) <= RELATIVE_ERROR * true * (1 + 1e-9)


@given(values, values)
def test_merging_is_adding_every_value(first, second):
    merged = histogram_of(first)
    merged.merge(histogram_of(second))
    whole = histogram_of(first + second)
    assert (merged.buckets, merged.count, merged.smallest, merged.largest) == (
        whole.buckets,
        whole.count,
        whole.smallest,
        whole.largest,
    )


def test_equal_values_show_that_value():
    assert histogram_of([420.0] * 7).percentile(50) == 420.0


def test_empty_has_no_percentile():
    assert LogHistogram().percentile(95) is None


def test_the_buckets_stay_bounded_whatever_the_values():
    rng = random.Random(13)
    histogram = histogram_of([10 ** rng.uniform(-6, 12) for _ in range(100_000)])
    assert histogram.count == 100_000
    assert len(histogram.buckets) <= MAX_BUCKETS < 1500
    top = histogram.percentile(100)
    assert top is not None and abs(top - MAX_VALUE) <= RELATIVE_ERROR * MAX_VALUE  # larger values count as MAX_VALUE
