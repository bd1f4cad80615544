"""The one mapping of transport errors onto aimw's failure tree (the real failures, from a
loopback server, are in test_app.py; here each row of the mapping, causes chained as
httpx-aiohttp chains them)."""

from __future__ import annotations

import aiohttp
import httpx
import pytest

from aimw.asgi import ClientDisconnected
from aimw.upstream.failures import (
    UpstreamBrokeOff,
    UpstreamFailure,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
    mapped_transport_errors,
)


def chained(outer: Exception, cause: BaseException | None) -> Exception:
    """``outer`` raised ``from cause``, as a transport re-raises a lower layer's error."""
    try:
        try:
            if cause is not None:
                raise cause
            raise outer
        except BaseException as exc:
            if exc is outer:
                raise
            raise outer from exc
    except Exception as raised:
        return raised


def mapped(error: Exception, *, answer_started: bool) -> BaseException:
    with pytest.raises(BaseException) as raised, mapped_transport_errors(answer_started=answer_started):
        raise error
    return raised.value


@pytest.mark.parametrize(
    "outer, cause, kind, reason",
    [
        (
            httpx.ConnectError("x"),
            aiohttp.ClientConnectionError("refused"),
            UpstreamUnreachable,
            "unreachable (ClientConnectionError)",
        ),
        # httpx-aiohttp reports a refused connection as a ConnectTimeout: the cause decides
        (httpx.ConnectTimeout("x"), aiohttp.ClientConnectionError("refused"), UpstreamUnreachable, "unreachable"),
        (httpx.ReadTimeout("x"), TimeoutError(), UpstreamTimeout, "did not answer in time"),
        (httpx.ConnectTimeout("x"), None, UpstreamTimeout, "did not answer in time"),
        (httpx.RemoteProtocolError("x"), None, UpstreamUnreachable, "unreachable (RemoteProtocolError)"),
        (aiohttp.ServerDisconnectedError(), None, UpstreamUnreachable, "unreachable (ServerDisconnectedError)"),
    ],
)
def test_before_the_answer(outer, cause, kind, reason):
    error = chained(outer, cause)
    failure = mapped(error, answer_started=False)
    assert type(failure) is kind
    assert reason in failure.reason
    assert failure.__cause__ is error


@pytest.mark.parametrize(
    "outer, cause",
    [(httpx.ReadTimeout("x"), TimeoutError()), (httpx.ReadError("x"), aiohttp.ClientPayloadError("cut"))],
)
def test_after_the_answer_started_every_error_broke_off(outer, cause):
    error = chained(outer, cause)
    failure = mapped(error, answer_started=True)
    assert type(failure) is UpstreamBrokeOff
    assert failure.reason == f"the upstream provider's answer broke off ({type(outer).__name__})"


def test_a_client_gone_while_its_body_was_sent_is_not_an_upstream_failure():
    error = chained(httpx.WriteError("x"), ClientDisconnected())
    assert type(mapped(error, answer_started=False)) is ClientDisconnected


def test_other_errors_pass_unmapped():
    error = ValueError("a bug, not a transport failure")
    assert mapped(error, answer_started=False) is error


def test_the_tree():
    assert all(
        issubclass(kind, UpstreamFailure)
        for kind in (UpstreamUnreachable, UpstreamTimeout, UpstreamBrokeOff, UpstreamStatusError)
    )
    failure = UpstreamStatusError(429, b'{"error": "slow down"}')
    assert (failure.status, failure.body, failure.reason) == (
        429,
        b'{"error": "slow down"}',
        "provider answered HTTP 429",
    )
