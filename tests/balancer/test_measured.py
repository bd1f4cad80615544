"""lowest-latency (tpot, e2e) and lowest-usage (each tokens_count_strategy), with decay over fake time."""

from __future__ import annotations

import math

import pytest

from aimw.balancer import Balancer
from tests.balancer.helpers import FakeClock, attempt, figures, shares


def latency_balancer(weights, strategy="tpot", clock=None):
    return Balancer(weights, "lowest-latency", latency_strategy=strategy, clock=clock or FakeClock())


def test_lowest_latency_tries_unmeasured_targets_first_then_the_fastest():
    balancer = latency_balancer([1, 1, 1])
    assert balancer.pick([0, 1, 2]) == 0
    attempt(balancer, 0, figures(tpot_ms=30.0))
    assert balancer.pick([0, 1, 2]) == 1
    attempt(balancer, 1, figures(tpot_ms=20.0))
    assert balancer.pick([0, 1, 2]) == 2
    attempt(balancer, 2, figures(tpot_ms=50.0))
    assert {balancer.pick([0, 1, 2]) for _ in range(10)} == {1}
    assert balancer.pick([0, 2]) == 0


@pytest.mark.parametrize(("strategy", "fastest"), [("tpot", 0), ("e2e", 1)])
def test_latency_strategy_chooses_the_figure(strategy, fastest):
    balancer = latency_balancer([1, 1], strategy)
    attempt(balancer, 0, figures(e2e_ms=9000.0, tpot_ms=10.0))  # long answer, fast tokens
    attempt(balancer, 1, figures(e2e_ms=800.0, tpot_ms=40.0))  # short answer, slow tokens
    assert balancer.pick([0, 1]) == fastest


def test_latency_is_relative_to_weight():
    balancer = latency_balancer([4, 1])
    attempt(balancer, 0, figures(tpot_ms=100.0))  # 100 / 4
    attempt(balancer, 1, figures(tpot_ms=50.0))  # 50 / 1
    assert balancer.pick([0, 1]) == 0


def test_failures_and_answers_without_output_tokens_teach_no_latency():
    balancer = latency_balancer([1, 1])
    attempt(balancer, 1, figures(tpot_ms=100.0))
    attempt(balancer, 0, figures(success=False, tpot_ms=1.0, e2e_ms=1.0))
    attempt(balancer, 0, figures(tpot_ms=None))
    assert balancer.pick([0, 1]) == 0  # still unmeasured


def test_latency_is_a_time_weighted_average():
    clock = FakeClock()
    balancer = latency_balancer([1, 1], clock=clock)
    attempt(balancer, 0, figures(tpot_ms=100.0))
    clock.advance(10.0)  # one decay time later the new sample weighs 1 - 1/e
    attempt(balancer, 0, figures(tpot_ms=300.0))
    average = 100 / math.e + 300 * (1 - 1 / math.e)  # 226.4
    attempt(balancer, 1, figures(tpot_ms=average - 1))
    assert balancer.pick([0, 1]) == 1
    attempt(balancer, 1, figures(tpot_ms=average + 1))  # at once: a burst's second sample barely counts
    assert balancer.pick([0, 1]) == 1


def test_a_slow_target_is_tried_again_once_its_latency_has_decayed():
    clock = FakeClock()
    balancer = latency_balancer([1, 1], "e2e", clock)
    attempt(balancer, 0, figures(e2e_ms=1000.0))  # slow
    attempt(balancer, 1, figures(e2e_ms=100.0))
    retried_after = None
    for second in range(1, 60):
        clock.advance(1.0)
        index = balancer.pick([0, 1])
        if index == 0:
            retried_after = second
            break
        attempt(balancer, 1, figures(e2e_ms=100.0))
    # target 1 is read 1 s after each sample (100 * exp(-0.1)); target 0 decays from 1000 since t = 0:
    # 1000 * exp(-t / 10) < 100 * exp(-0.1) once t > 10 * (ln 10 + 0.1) = 24.03 s
    assert retried_after == 25


USAGE = [
    figures(prompt_tokens=1000, completion_tokens=100, cost=0.01),  # target 0
    figures(prompt_tokens=200, completion_tokens=500, cost=0.50),  # target 1
]


@pytest.mark.parametrize(
    ("strategy", "least_used"),
    [("total-tokens", 1), ("prompt-tokens", 1), ("completion-tokens", 0), ("cost", 0)],
)
def test_lowest_usage_counts_by_the_tokens_count_strategy(strategy, least_used):
    balancer = Balancer([1, 1, 1], "lowest-usage", tokens_count_strategy=strategy, clock=FakeClock())
    assert balancer.pick([0, 1, 2]) == 0  # nothing used yet: round robin
    for index, used in enumerate(USAGE):
        attempt(balancer, index, used)
    assert balancer.pick([0, 1, 2]) == 2  # unused first
    assert balancer.pick([0, 1]) == least_used


def test_lowest_usage_spreads_volume_by_weight():
    clock = FakeClock()
    balancer = Balancer([3, 1], "lowest-usage", clock=clock)
    picks = []
    for _ in range(4000):
        index = balancer.pick([0, 1])
        picks.append(index)
        attempt(balancer, index, figures(prompt_tokens=900, completion_tokens=100))
        clock.advance(0.05)
    assert shares(picks, 2) == pytest.approx([0.75, 0.25], abs=0.02)


def test_lowest_usage_decays_and_failed_attempts_count():
    clock = FakeClock()
    balancer = Balancer([1, 1], "lowest-usage", clock=clock)
    attempt(balancer, 0, figures(success=False, prompt_tokens=10_000))
    clock.advance(25.0)
    attempt(balancer, 1, figures(prompt_tokens=1000))
    assert balancer.pick([0, 1]) == 0  # 10,000 * exp(-2.5) = 821 < 1000
