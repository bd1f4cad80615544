"""Window arithmetic (aimw.rate_limiting.windows) on a fake clock: Kong's sliding window
``previous * (W - elapsed) / W + current`` and fixed window, at and around their
boundaries, and how long a refused identifier waits (``retry-after``): never less than
needed, never a whole second more. Kong's header names for the windows."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aimw.rate_limiting.windows import (
    Window,
    elapsed_in_window,
    header_number,
    remaining,
    retry_after,
    seconds_until_below,
    usage,
    window_index,
)

T0 = 1_700_000_040.0  # a minute boundary: 1_700_000_040 = 28_333_334 * 60


def test_windows_are_aligned_to_the_epoch():
    assert window_index(T0, 60) == 28_333_334
    assert elapsed_in_window(T0, 60) == 0
    assert window_index(T0 - 0.001, 60) == 28_333_333
    assert elapsed_in_window(T0 - 0.5, 60) == pytest.approx(59.5)
    assert elapsed_in_window(T0 + 3601.25, 3600) == pytest.approx((T0 + 3601.25) % 3600)


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [
        (0.0, 100 + 40),  # at the boundary the whole previous window still weighs in
        (15.0, 100 * 45 / 60 + 40),
        (30.0, 50 + 40),
        (59.999, pytest.approx(40.00167, abs=1e-4)),  # just before the next boundary: almost only current
    ],
)
def test_the_sliding_window_weighs_the_previous_by_what_is_left_of_it(elapsed, expected):
    assert usage("sliding", 40, 100, 60, elapsed) == expected


def test_the_fixed_window_counts_only_the_current_window():
    assert usage("fixed", 40, 100, 60, 0.0) == 40
    assert usage("fixed", 0, 100, 60, 59.0) == 0


def test_under_the_limit_there_is_nothing_to_wait_for():
    assert seconds_until_below("sliding", 40, 100, 1000, 60, 10) == 0
    assert seconds_until_below("fixed", 999, 0, 1000, 60, 10) == 0


def test_at_the_limit_is_refused_and_waits():
    """'At or over' the limit refuses (a window with 0 left has no room for a request)."""
    assert seconds_until_below("fixed", 1000, 0, 1000, 60, 10) == 50
    assert seconds_until_below("sliding", 1000, 0, 1000, 60, 10) == pytest.approx(50)


def test_a_fixed_window_frees_at_its_end():
    assert seconds_until_below("fixed", 1500, 0, 1000, 60, 20.5) == pytest.approx(39.5)
    assert retry_after(39.5) == 40


def test_a_sliding_window_over_by_its_current_count_frees_in_the_next_window():
    # current 1500 >= limit 1000: wait the 40 s left, then until 1500 * (60 - t) / 60 < 1000: t > 20
    assert seconds_until_below("sliding", 1500, 300, 1000, 60, 20) == pytest.approx(40 + 20)


def test_a_sliding_window_over_by_the_previous_weight_frees_within_this_window():
    # 600 * (60 - e) / 60 + 700 < 1000  <=>  e > 30: from e = 12, 18 s
    assert seconds_until_below("sliding", 700, 600, 1000, 60, 12) == pytest.approx(18)


def test_retry_after_is_the_first_whole_second_past_the_wait():
    assert retry_after(0.2) == 1
    assert retry_after(18.0) == 19  # at exactly 18 s the usage is exactly the limit: still refused
    assert retry_after(59.999) == 60


def _usage_later(window_type, current, previous, size, elapsed, later):
    """The usage ``later`` seconds from now if nothing is added (the counters move on)."""
    moment = elapsed + later
    if moment < size:
        return usage(window_type, current, previous, size, moment)
    if moment < 2 * size:
        return usage(window_type, 0.0, current, size, moment - size)
    return 0.0


counts = st.floats(min_value=0, max_value=1e7, allow_nan=False)


@given(
    window_type=st.sampled_from(["sliding", "fixed"]),
    current=counts,
    previous=counts,
    limit=st.floats(min_value=1, max_value=1e7),
    size=st.sampled_from([1, 7, 60, 3600, 86400]),
    fraction=st.floats(min_value=0, max_value=0.999999),
)
def test_the_wait_is_exactly_until_the_usage_is_under_the_limit(window_type, current, previous, limit, size, fraction):
    elapsed = size * fraction
    wait = seconds_until_below(window_type, current, previous, limit, size, elapsed)
    now = usage(window_type, current, previous, size, elapsed)
    if now < limit:
        assert wait == 0
        return
    tolerance = 1e-6 * size
    assert _usage_later(window_type, current, previous, size, elapsed, wait + tolerance) < limit * (1 + 1e-9)
    if wait > tolerance:
        assert _usage_later(window_type, current, previous, size, elapsed, wait - tolerance) >= limit * (1 - 1e-9)
    assert 1 <= retry_after(wait) <= math.floor(wait) + 1


def test_remaining_is_whole_tokens_or_cost_units():
    assert remaining("total_tokens", 1000, 333.7) == 666
    assert remaining("total_tokens", 1000, 1200) == 0
    assert remaining("cost", 5.0, 1.25) == 3.75


def test_header_numbers_have_no_needless_decimals():
    assert header_number(1000.0) == b"1000"
    assert header_number(3.75) == b"3.75"
    assert header_number(0.1234567) == b"0.123457"


@pytest.mark.parametrize(
    ("size", "label"),
    [(1, "second"), (60, "minute"), (3600, "hour"), (86400, "day"), (2592000, "month"), (31536000, "year"), (30, "30")],
)
def test_headers_are_named_as_kong_names_them(size, label):
    """Kong's X-AI-RateLimit-Limit-minute-openai / -30-azure (its human_window_size_lookup)."""
    window = Window.of("azure", "total_tokens", size, 100)
    assert window.label == f"{label}-azure"
    assert window.limit_header == f"x-ai-ratelimit-limit-{label}-azure".encode()
    assert window.remaining_header == f"x-ai-ratelimit-remaining-{label}-azure".encode()
    assert window.reset_header == f"x-ai-ratelimit-reset-{label}-azure".encode()
    assert window.retry_after_header == f"x-ai-ratelimit-retry-after-{label}-azure".encode()
    assert window.counter == f"azure:total_tokens:{size}"
