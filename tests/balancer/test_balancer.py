"""The Balancer's contract: arguments checked, pick among the eligible, AttemptFigures frozen."""

from __future__ import annotations

import dataclasses

import pytest

from aimw.balancer import Balancer
from tests.balancer.helpers import figures

ALGORITHMS = ["round-robin", "priority", "least-connections", "lowest-latency", "lowest-usage", "consistent-hashing"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_picks_only_among_the_eligible(algorithm):
    balancer = Balancer([5, 3, 1, 1], algorithm)
    for number in range(50):
        index = balancer.pick([3, 1], b"key-%d" % number)
        assert index in {3, 1}
        balancer.started(index)
        balancer.finished(index, figures(prompt_tokens=number))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_picking_from_nothing_is_a_value_error(algorithm):
    with pytest.raises(ValueError, match="no eligible target"):
        Balancer([1], algorithm).pick([])


@pytest.mark.parametrize("weights", [[], [0], [1, 65536], [-1], [1.5]])
def test_weights_are_1_to_65535(weights):
    with pytest.raises(ValueError, match="weights"):
        Balancer(weights)


def test_semantic_is_refused_and_unknown_names_listed():
    with pytest.raises(ValueError, match="'semantic' is not supported"):
        Balancer([1], "semantic")
    with pytest.raises(ValueError, match="round-robin"):
        Balancer([1], "random")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"latency_strategy": "ttft"},
        {"tokens_count_strategy": "tokens"},
        {"max_fails": -1},
        {"max_fails": 1, "fail_timeout_ms": 0},
    ],
)
def test_options_out_of_range_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        Balancer([1], **kwargs)


def test_attempt_figures_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        figures().success = False
