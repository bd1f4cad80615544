"""Balancing one request's attempts over many targets: Kong AI Gateway's ai-proxy-advanced ``balancer``.

:class:`Balancer` picks a target with one of Kong's algorithms (``round-robin``, ``priority``,
``least-connections``, ``lowest-latency``, ``lowest-usage``, ``consistent-hashing``; not
``semantic``) and keeps a circuit breaker per target (``max_fails`` / ``fail_timeout``, nginx's
semantics). The Failover layer asks it for each attempt and reports each attempt's
:class:`AttemptFigures` back.

All of its state (rotation positions, in-flight counts, latency and usage averages, breakers) is
per process and lives on the one Balancer the Failover layer owns: each Hypercorn worker
balances on its own, as each Kong/nginx worker does. Nothing is shared between workers, nothing
is stored per request. Not thread-safe: one event loop drives it, and no method awaits.
"""

from aimw.balancer.balancer import Balancer
from aimw.balancer.figures import AttemptFigures

__all__ = ["AttemptFigures", "Balancer"]
