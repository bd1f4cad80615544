"""Per-target circuit breaker with nginx's ``max_fails`` / ``fail_timeout`` semantics (Kong's balancer fields).

::

    closed ──max_fails failures within fail_timeout──► open ──fail_timeout passed──► half-open
      ▲                                                  ▲                              │
      └────────────── the probe succeeds ────────────────┼──── the probe fails ◄────────┘
                                                         └──── no report within fail_timeout

Closed: every attempt may go; successes do not erase recent failures (as in nginx, only time
does). Open: not available. Half-open: available until one attempt starts (the probe); the
probe's success closes the circuit, its failure opens it for another ``fail_timeout``; a probe
that never reports frees the next probe after ``fail_timeout``. Times are the balancer's clock
(seconds).
"""

from __future__ import annotations

from collections import deque

__all__ = ["Circuit"]

CLOSED = float("-inf")  # open_until of a closed circuit: always past


class Circuit:
    """The breaker of one target: ``max_fails`` (>= 1) failures within ``fail_timeout`` (s) open it."""

    __slots__ = ("_fail_timeout", "_failures", "_max_fails", "_open_until", "_opened", "_probing")

    def __init__(self, max_fails: int, fail_timeout: float) -> None:
        self._max_fails = max_fails
        self._fail_timeout = fail_timeout
        self._failures: deque[float] = deque(maxlen=max_fails)  # times of the latest failures (s)
        self._opened = False
        self._probing = False
        self._open_until = CLOSED

    def available(self, now: float) -> bool:
        """True when closed, or half-open with no probe under way, at ``now`` (s)."""
        return now >= self._open_until

    def started(self, now: float) -> None:
        """An attempt starts at ``now`` (s): in half-open it is the probe, and holds the circuit."""
        if self._opened and now >= self._open_until:
            self._probing = True
            self._open_until = now + self._fail_timeout

    def finished(self, success: bool, now: float) -> None:
        """An attempt ended at ``now`` (s): a success closes a probed circuit; a failure counts,
        and opens (or reopens) the circuit."""
        if success:
            if self._probing:
                self._opened = self._probing = False
                self._open_until = CLOSED
                self._failures.clear()
            return
        failures = self._failures
        failures.append(now)
        if self._opened or (len(failures) == self._max_fails and now - failures[0] <= self._fail_timeout):
            self._opened = True
            self._probing = False
            self._open_until = now + self._fail_timeout
