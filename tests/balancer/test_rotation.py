"""round-robin (smooth, weighted) and priority (groups by weight)."""

from __future__ import annotations

from itertools import groupby

import pytest

from aimw.balancer import Balancer
from tests.balancer.helpers import FakeClock, figures, shares


def longest_runs(picks: list[int]) -> dict[int, int]:
    runs: dict[int, int] = {}
    for index, run in groupby(picks):
        runs[index] = max(runs.get(index, 0), len(list(run)))
    return runs


def test_round_robin_gives_each_target_its_weights_share():
    balancer = Balancer([70, 25, 5])
    picks = [balancer.pick([0, 1, 2]) for _ in range(10_000)]
    for share, expected in zip(shares(picks, 3), [0.70, 0.25, 0.05], strict=True):
        assert share == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize("weights", [[1, 1], [1, 1, 1], [7, 7, 7, 7]])
def test_round_robin_with_equal_weights_never_picks_a_target_twice_in_a_row(weights):
    balancer = Balancer(weights)
    picks = [balancer.pick(range(len(weights))) for _ in range(1200)]
    assert max(longest_runs(picks).values()) == 1
    assert shares(picks, len(weights)) == [1 / len(weights)] * len(weights)


@pytest.mark.parametrize("weights", [[70, 25, 5], [5, 1, 1], [3, 2], [100, 1], [1, 2, 3, 4], [65535, 1, 7]])
def test_round_robin_interleaves_instead_of_bursting(weights):
    balancer = Balancer(weights)
    total = sum(weights)
    counts = [0] * len(weights)
    for picked in range(1, 3 * total + 1):
        counts[balancer.pick(range(len(weights)))] += 1
        # after any number of picks, every target is within one pick of its exact share
        # (a burst such as 5, 1, 1 -> a a a a a b c would be 1.4 picks ahead after five)
        for index, weight in enumerate(weights):
            assert abs(counts[index] - picked * weight / total) < 1


def test_round_robin_shares_the_eligible_subset_by_its_weights():
    balancer = Balancer([70, 25, 5])
    picks = [balancer.pick([0, 2]) for _ in range(7500)]
    assert picks.count(0) == 7000
    assert picks.count(2) == 500


def test_round_robin_over_one_target_is_that_target():
    balancer = Balancer([1, 65535])
    assert {balancer.pick([1]) for _ in range(10)} == {1}


def test_priority_uses_the_highest_weight_group_in_turn():
    balancer = Balancer([10, 5, 10, 1], "priority")
    picks = [balancer.pick([0, 1, 2, 3]) for _ in range(100)]
    assert set(picks) == {0, 2}
    assert max(longest_runs(picks).values()) == 1


def test_priority_falls_to_the_next_group_only_when_the_whole_group_is_ineligible():
    balancer = Balancer([10, 5, 10, 5, 1], "priority")
    assert balancer.pick([2, 1, 3, 4]) == 2  # one target of the top group is enough
    assert {balancer.pick([1, 3, 4]) for _ in range(10)} == {1, 3}
    assert balancer.pick([4]) == 4


def test_priority_falls_to_the_next_group_while_the_top_groups_circuits_are_open():
    clock = FakeClock()
    balancer = Balancer([2, 2, 1], "priority", max_fails=1, fail_timeout_ms=5000, clock=clock)

    def eligible() -> list[int]:
        return [index for index in range(3) if balancer.available(index)]

    balancer.started(0)
    balancer.finished(0, figures(success=False))
    assert {balancer.pick(eligible()) for _ in range(4)} == {1}
    balancer.started(1)
    balancer.finished(1, figures(success=False))
    assert balancer.pick(eligible()) == 2

    clock.advance(5.0)  # both half-open again: back to the top group
    assert balancer.pick(eligible()) in {0, 1}
