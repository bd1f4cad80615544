"""Typed upstream failures, and the one place transport errors are mapped onto them.

The tree (each failure's ``reason`` is short and free of secrets, for the log)::

    UpstreamFailure
    ├── UpstreamUnreachable   no answer could be asked for: refused, DNS, TLS, proxy (502)
    ├── UpstreamTimeout       no byte within the timeout, connecting or reading (504)
    ├── UpstreamBusy          no pool connection became free in time (529 overloaded)
    ├── UpstreamBrokeOff      the answer began, then stopped before its end (502)
    └── UpstreamStatusError   the provider answered with an error status (its status, its body)

The upstream app raises the first three; the layer that speaks Anthropic shapes them
(TranslateMiddleware answers, SSERewriteMiddleware ends a stream with ``event: error``).
``UpstreamStatusError`` is how that layer names a provider's error answer on the attempt.
"""

from __future__ import annotations

import aiohttp
import httpx

from aimw.asgi import ClientDisconnected


class UpstreamFailure(Exception):
    """An upstream attempt that gave no usable answer; ``reason`` names why (for the log),
    ``kind`` which branch of the tree it is (kept on the attempt, for failover)."""

    kind = "failure"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UpstreamUnreachable(UpstreamFailure):
    """The provider could not be asked: connection refused, DNS, TLS or proxy failure."""

    kind = "unreachable"


class UpstreamTimeout(UpstreamFailure):
    """The provider sent nothing within the timeout (connecting, or between two reads)."""

    kind = "timeout"


class UpstreamBusy(UpstreamFailure):
    """Every pooled connection to the provider stayed busy past the pool timeout."""

    kind = "busy"


class UpstreamBrokeOff(UpstreamFailure):
    """The provider's answer began and stopped before its end (connection reset, cut body)."""

    kind = "broke_off"


class UpstreamStatusError(UpstreamFailure):
    """The provider answered ``status`` >= 400 with ``body`` (bytes, its own error shape)."""

    kind = "status"

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"provider answered HTTP {status}")
        self.status = status
        self.body = body


class mapped_transport_errors:
    """Map httpx / aiohttp errors raised inside to the tree, ``raise ... from exc``.

    Before the answer started, a timeout is :class:`UpstreamTimeout` and anything else
    :class:`UpstreamUnreachable`; after, every error is :class:`UpstreamBrokeOff`. The cause
    chain decides, not the outer type: httpx-aiohttp re-raises aiohttp's errors as httpx
    ones, not always the closest kind (a refused connection arrives as ConnectTimeout).
    A request whose client left while its body was being sent re-raises ClientDisconnected.
    (A plain class, not ``@contextmanager``: it wraps every upstream call.)
    """

    __slots__ = ("answer_started",)

    def __init__(self, *, answer_started: bool) -> None:
        self.answer_started = answer_started

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None and isinstance(exc, (httpx.HTTPError, aiohttp.ClientError)):
            _raise_mapped(exc, self.answer_started)


def _raise_mapped(exc: BaseException, answer_started: bool) -> None:
    causes = _causes(exc)
    for cause in causes:
        if isinstance(cause, ClientDisconnected):
            raise cause from None
    if answer_started:
        raise UpstreamBrokeOff(f"the upstream provider's answer broke off ({type(exc).__name__})") from exc
    name = type(causes[-1]).__name__
    timed_out = any(isinstance(cause, TimeoutError) for cause in causes) or (
        isinstance(exc, httpx.TimeoutException) and not any(isinstance(c, aiohttp.ClientError) for c in causes)
    )
    if timed_out:
        raise UpstreamTimeout("the upstream provider did not answer in time") from exc
    raise UpstreamUnreachable(f"the upstream provider is unreachable ({name})") from exc


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it, outermost first."""
    chain = [exc]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and cause not in chain:
        chain.append(cause)
    return chain
