"""What one upstream attempt tells the balancer: :class:`AttemptFigures`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AttemptFigures"]


@dataclass(frozen=True, slots=True)
class AttemptFigures:
    """The outcome of one attempt on one target, reported to :meth:`Balancer.finished`.

    ``success``: the attempt counts as a success for the circuit breaker (the caller decides:
    a failover criterion met is a failure). ``e2e_ms``: milliseconds from the request sent to
    the last byte of the answer. ``tpot_ms``: milliseconds per output token (``e2e_ms`` /
    output tokens), ``None`` when the answer had no output tokens. ``prompt_tokens`` and
    ``completion_tokens``: tokens (0 when unknown). ``cost``: the attempt's cost in the
    model's configured currency units (0.0 when not configured).
    """

    success: bool
    e2e_ms: float
    tpot_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost: float
