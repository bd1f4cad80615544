"""The circuit breaker: max_fails failures within fail_timeout open a target for fail_timeout, then one probe."""

from __future__ import annotations

from aimw.balancer import Balancer
from tests.balancer.helpers import FakeClock, attempt, figures

FAILED = figures(success=False)


def breaker(max_fails=3, fail_timeout_ms=10_000, targets=2):
    clock = FakeClock()
    return Balancer([1] * targets, max_fails=max_fails, fail_timeout_ms=fail_timeout_ms, clock=clock), clock


def fail(balancer, index=0, times=1):
    for _ in range(times):
        attempt(balancer, index, FAILED)


def test_opens_after_max_fails_failures_and_only_for_that_target():
    balancer, clock = breaker()
    fail(balancer, times=2)
    assert balancer.available(0)
    clock.advance(1.0)
    fail(balancer)
    assert not balancer.available(0)
    assert balancer.available(1)


def test_stays_open_until_fail_timeout_has_passed():
    balancer, clock = breaker()
    fail(balancer, times=3)
    clock.advance(9.999)
    assert not balancer.available(0)
    clock.advance(0.001)
    assert balancer.available(0)


def test_half_open_lets_one_probe_through_and_its_success_closes():
    balancer, clock = breaker()
    fail(balancer, times=3)
    clock.advance(10.0)
    balancer.started(0)  # the probe
    assert not balancer.available(0)  # nobody else while it runs
    balancer.finished(0, figures())
    assert balancer.available(0)
    fail(balancer, times=2)  # closed afresh: the old failures are forgotten
    assert balancer.available(0)


def test_a_failed_probe_reopens_for_another_fail_timeout():
    balancer, clock = breaker()
    fail(balancer, times=3)
    clock.advance(10.0)
    fail(balancer)
    assert not balancer.available(0)
    clock.advance(9.0)
    assert not balancer.available(0)
    clock.advance(1.0)
    assert balancer.available(0)


def test_a_probe_that_never_reports_frees_the_next_after_fail_timeout():
    balancer, clock = breaker()
    fail(balancer, times=3)
    clock.advance(10.0)
    balancer.started(0)
    clock.advance(10.0)
    assert balancer.available(0)


def test_a_late_success_of_an_attempt_started_before_opening_does_not_close():
    balancer, clock = breaker(max_fails=1)
    balancer.started(0)  # a long request
    fail(balancer)
    balancer.finished(0, figures())
    assert not balancer.available(0)
    clock.advance(10.0)
    assert balancer.available(0)


def test_failures_older_than_fail_timeout_do_not_count():
    balancer, clock = breaker()
    fail(balancer)  # t = 0
    clock.advance(5.0)
    fail(balancer)  # t = 5
    clock.advance(5.5)
    fail(balancer)  # t = 10.5: the one at t = 0 has expired
    assert balancer.available(0)
    clock.advance(0.5)
    fail(balancer)  # t = 11: 5, 10.5 and 11 are within 10 s
    assert not balancer.available(0)


def test_successes_between_failures_do_not_reset_the_count():
    balancer, _ = breaker()
    for _ in range(2):
        fail(balancer)
        attempt(balancer, 0, figures())
    fail(balancer)
    assert not balancer.available(0)


def test_max_fails_0_never_opens():
    balancer, _ = breaker(max_fails=0)
    fail(balancer, times=1000)
    assert balancer.available(0)
