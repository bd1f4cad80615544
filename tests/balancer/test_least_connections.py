"""least-connections: fewest in-flight requests per unit of weight, kept by started()/finished()."""

from __future__ import annotations

from aimw.balancer import Balancer
from tests.balancer.helpers import figures


def test_goes_to_the_target_with_fewest_requests_in_flight():
    balancer = Balancer([1, 1, 1], "least-connections")
    balancer.started(0)
    balancer.started(1)
    assert balancer.pick([0, 1, 2]) == 2
    balancer.started(2)
    balancer.started(2)
    balancer.finished(0, figures())
    assert balancer.pick([0, 1, 2]) == 0
    assert balancer.pick([1, 2]) == 1  # among the eligible only


def test_in_flight_counts_relative_to_weight():
    balancer = Balancer([2, 1], "least-connections")
    balancer.started(0)
    assert balancer.pick([0, 1]) == 1  # 1/2 against 0/1
    balancer.started(1)
    assert balancer.pick([0, 1]) == 0  # 1/2 against 1/1
    for _ in range(30):  # requests that never finish pile up 2 to 1
        balancer.started(balancer.pick([0, 1]))
    balancer.finished(1, figures())
    assert balancer.pick([0, 1]) == 1


def test_ties_go_round_robin_and_failures_leave_flight_too():
    balancer = Balancer([1, 1, 1], "least-connections")
    assert [balancer.pick([0, 1, 2]) for _ in range(6)] == [0, 1, 2, 0, 1, 2]
    for index in range(3):
        balancer.started(index)
    balancer.finished(1, figures(success=False))
    assert balancer.pick([0, 1, 2]) == 1
