"""What the balancer tests share: a fake clock and AttemptFigures with defaults."""

from __future__ import annotations

from aimw.balancer import AttemptFigures, Balancer


class FakeClock:
    """A clock the test moves by hand: ``clock()`` returns ``now`` (s)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def figures(
    *,
    success: bool = True,
    e2e_ms: float = 1000.0,
    tpot_ms: float | None = 10.0,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cost: float = 0.0,
) -> AttemptFigures:
    return AttemptFigures(success, e2e_ms, tpot_ms, prompt_tokens, completion_tokens, cost)


def attempt(balancer: Balancer, index: int, outcome: AttemptFigures | None = None) -> None:
    """One whole attempt on ``index``: started, then finished with ``outcome`` (a success by default)."""
    balancer.started(index)
    balancer.finished(index, outcome or figures())


def shares(picks: list[int], targets: int) -> list[float]:
    return [picks.count(index) / len(picks) for index in range(targets)]
