"""ProviderAuthMiddleware: the client's credentials out, the provider's in."""

from __future__ import annotations

import pytest
from asgi_helpers import RecordingSend, ScriptedReceive, call, http_scope

from aimw.middleware.provider_auth import ProviderAuthMiddleware

pytestmark = pytest.mark.anyio

SECRET = "hf_provider_secret_1234567890"
CLIENT_HEADERS = [
    (b"x-api-key", b"sk-ant-client-key"),
    (b"authorization", b"Bearer client-token"),
    (b"api-key", b"azure-client-key"),
    (b"x-goog-api-key", b"AIzaClientKey"),
    (b"proxy-authorization", b"Basic abc"),
    (b"content-type", b"application/json"),
    (b"user-agent", b"claude-cli/2.1.329"),
]


class Inner:
    def __init__(self) -> None:
        self.scope = None

    async def __call__(self, scope, receive, send) -> None:
        self.scope = scope
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_client_credentials_replaced_by_the_providers():
    inner = Inner()
    app = ProviderAuthMiddleware(inner, header="Authorization", credential=SECRET, prefix="Bearer ")
    scope = http_scope(headers=CLIENT_HEADERS)
    original = list(scope["headers"])
    response = await call(app, scope)
    assert response.status == 204
    assert inner.scope["headers"] == [
        (b"host", b"gateway.test"),
        (b"content-type", b"application/json"),
        (b"user-agent", b"claude-cli/2.1.329"),
        (b"authorization", b"Bearer " + SECRET.encode()),
    ]
    assert scope["headers"] == original  # the caller's scope is not mutated


async def test_header_without_prefix():
    inner = Inner()
    app = ProviderAuthMiddleware(inner, header="api-key", credential=SECRET)
    await call(app, http_scope(headers=CLIENT_HEADERS))
    credentials = [(k, v) for k, v in inner.scope["headers"] if k in (b"api-key", b"authorization", b"x-api-key")]
    assert credentials == [(b"api-key", SECRET.encode())]


async def test_mixed_case_client_headers_are_removed():
    inner = Inner()
    app = ProviderAuthMiddleware(inner, header="authorization", credential=SECRET, prefix="Bearer ")
    await call(app, http_scope(headers=[(b"X-Api-Key", b"k"), (b"Authorization", b"Bearer c")]))
    assert [k.lower() for k, _ in inner.scope["headers"]].count(b"authorization") == 1
    assert all(v not in (b"k", b"Bearer c") for _, v in inner.scope["headers"])


async def test_no_credential_only_removes():
    inner = Inner()
    app = ProviderAuthMiddleware(inner, header="authorization", credential=None, prefix="Bearer ")
    await call(app, http_scope(headers=CLIENT_HEADERS))
    assert inner.scope["headers"] == [
        (b"host", b"gateway.test"),
        (b"content-type", b"application/json"),
        (b"user-agent", b"claude-cli/2.1.329"),
    ]


def test_repr_hides_the_secret():
    app = ProviderAuthMiddleware(Inner(), header="authorization", credential=SECRET, prefix="Bearer ")
    assert SECRET not in repr(app)
    assert SECRET not in str(app)
    assert "authorization" in repr(app)


async def test_lifespan_passes_through_unchanged():
    inner = Inner()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await ProviderAuthMiddleware(inner, header="authorization", credential=SECRET)(scope, ScriptedReceive(), RecordingSend())
    assert inner.scope is scope
