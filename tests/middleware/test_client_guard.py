"""ClientGuard at the ASGI level (issue 8): smuggling framings, foreign Host values, foreign
Origins and non-JSON POSTs refused in Anthropic's shape before anything below runs."""

from __future__ import annotations

import pytest

from aimw.exchange import exchange_of
from aimw.middleware.client_guard import ClientGuard
from tests.asgi_helpers import InnerApp, RecordingSend, call, http_scope

pytestmark = pytest.mark.anyio

JSON = (b"content-type", b"application/json")
BODY = b'{"model": "m", "messages": [], "max_tokens": 5}'


def scope_with(headers, *, method: str = "POST", host: bytes | None = b"localhost:8000") -> dict:
    """A request with ``headers`` and ``host`` (None: no Host header at all)."""
    scope = http_scope(method, headers=headers, body=BODY if method == "POST" else None)
    scope["headers"] = [(name, value) for name, value in scope["headers"] if name != b"host"]
    if host is not None:
        scope["headers"].insert(0, (b"host", host))
    return scope


async def guarded(scope, **settings) -> tuple[InnerApp, RecordingSend]:
    inner = InnerApp()
    response = await call(ClientGuard(inner, **settings), scope, [BODY])
    return inner, response


def assert_refused(inner: InnerApp, response: RecordingSend, scope, status: int, error_type: str) -> str:
    """Refused in Anthropic's shape, with a correct length, recorded, and nothing below ran."""
    assert inner.calls == 0
    assert response.status == status, response.body
    assert response.header(b"content-type") == b"application/json"
    assert response.header(b"content-length") == str(len(response.body)).encode()
    assert response.complete
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == error_type
    assert exchange_of(scope).error == f"{error_type}: {error['error']['message']}"
    return error["error"]["message"]


@pytest.mark.parametrize(
    "host", [b"localhost", b"localhost:8000", b"LocalHost:1", b"127.0.0.1:8000", b"[::1]", b"[::1]:8000"]
)
async def test_loopback_hosts_go_on(host):
    inner, response = await guarded(scope_with([JSON], host=host))
    assert inner.calls == 1
    assert response.status == 200


@pytest.mark.parametrize(
    "host", [b"evil.example", b"evil.example:8000", b"localhost.evil.example", b"[::2]:8000", None]
)
async def test_a_foreign_or_missing_host_is_403(host):
    scope = scope_with([JSON], host=host)
    inner, response = await guarded(scope)
    message = assert_refused(inner, response, scope, 403, "permission_error")
    assert "AIMW_ALLOWED_HOSTS" in message


async def test_an_allowed_host_goes_on_at_any_port_and_star_allows_any():
    inner, _ = await guarded(scope_with([JSON], host=b"GW.Internal:8443"), allowed_hosts=["gw.internal"])
    assert inner.calls == 1
    inner, _ = await guarded(scope_with([JSON], host=b"anything.example"), allowed_hosts=["*"])
    assert inner.calls == 1
    scope = scope_with([JSON], host=b"other.internal")
    inner, response = await guarded(scope, allowed_hosts=["gw.internal"])
    assert_refused(inner, response, scope, 403, "permission_error")


async def test_both_framings_are_400():
    scope = scope_with([JSON, (b"transfer-encoding", b"chunked")])  # http_scope adds content-length
    inner, response = await guarded(scope)
    message = assert_refused(inner, response, scope, 400, "invalid_request_error")
    assert "Transfer-Encoding" in message and "Content-Length" in message


async def test_an_origin_goes_on_only_when_allowed_exactly():
    allowed = {"allowed_origins": ["https://ok.example"]}
    inner, _ = await guarded(scope_with([JSON, (b"origin", b"https://ok.example")]), **allowed)
    assert inner.calls == 1
    for origin in (b"https://evil.example", b"https://ok.example:444", b"null"):
        scope = scope_with([JSON, (b"origin", origin)])
        inner, response = await guarded(scope, **allowed)
        message = assert_refused(inner, response, scope, 403, "permission_error")
        assert "AIMW_ALLOWED_ORIGINS" in message


@pytest.mark.parametrize("content_type", [b"application/json", b"application/json; charset=utf-8", b"Application/JSON"])
async def test_a_json_post_goes_on(content_type):
    inner, _ = await guarded(scope_with([(b"content-type", content_type)]))
    assert inner.calls == 1


@pytest.mark.parametrize(
    "content_type", [b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data", None]
)
async def test_a_post_that_is_not_json_is_403(content_type):
    scope = scope_with([] if content_type is None else [(b"content-type", content_type)])
    inner, response = await guarded(scope)
    message = assert_refused(inner, response, scope, 403, "permission_error")
    assert "application/json" in message


async def test_a_get_needs_no_content_type():
    inner, _ = await guarded(scope_with([], method="GET"))
    assert inner.calls == 1


async def test_lifespan_passes_through():
    inner = InnerApp()
    await ClientGuard(inner)({"type": "lifespan"}, None, None)
    assert inner.scopes == [{"type": "lifespan"}]
