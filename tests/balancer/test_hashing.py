"""consistent-hashing: stickiness, spread by weight, minimal movement, round robin without the header."""

from __future__ import annotations

import pytest

from aimw.balancer import Balancer
from tests.balancer.helpers import shares

KEYS = [b"session-%d" % number for number in range(10_000)]


def hashing(weights, **kwargs):
    return Balancer(weights, "consistent-hashing", **kwargs)


def test_the_same_key_always_goes_to_the_same_target():
    balancer = hashing([1, 1, 1])
    key = b"5f0c6a2e-claude-code-session"
    first = balancer.pick([0, 1, 2], key)
    assert {balancer.pick([0, 1, 2], key) for _ in range(1000)} == {first}


def test_the_mapping_is_stable_across_balancers_processes_and_releases():
    # blake2b, not Python's per-process randomized hash(): a restarted worker (or another one) agrees
    picks = [hashing([1, 1, 1]).pick([0, 1, 2], key) for key in KEYS[:8]]
    assert picks == [1, 0, 1, 2, 2, 0, 0, 0]


@pytest.mark.parametrize("weights", [[70, 25, 5], [1, 2, 3, 4], [1, 1]])
def test_keys_spread_in_proportion_to_weight(weights):
    balancer = hashing(weights)
    picks = [balancer.pick(range(len(weights)), key) for key in KEYS]
    expected = [weight / sum(weights) for weight in weights]
    assert shares(picks, len(weights)) == pytest.approx(expected, abs=0.02)


def test_only_the_keys_of_an_ineligible_target_move():
    balancer = hashing([1, 2, 3, 4])
    before = [balancer.pick([0, 1, 2, 3], key) for key in KEYS]
    after = [balancer.pick([0, 1, 3], key) for key in KEYS]
    moved = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert {old for old, _ in moved} == {2}
    assert len(moved) == before.count(2)
    # the moved keys spread over the others by weight too: 1 : 2 : 4
    assert shares([new for _, new in moved], 4) == pytest.approx([1 / 7, 2 / 7, 0, 4 / 7], abs=0.03)
    # and come back when the target does
    assert [balancer.pick([0, 1, 2, 3], key) for key in KEYS] == before


@pytest.mark.parametrize("value", [None, b""])
def test_without_the_header_value_it_is_smooth_round_robin(value):
    balancer = hashing([2, 1])
    assert [balancer.pick([0, 1], value) for _ in range(6)] == [0, 1, 0, 0, 1, 0]


def test_hash_header_is_the_lower_case_name_asgi_headers_carry():
    assert hashing([1]).hash_header == b"x-kong-llm-request-id"
    assert hashing([1], hash_on_header="X-Claude-Code-Session-Id").hash_header == b"x-claude-code-session-id"
