"""ProviderAuthMiddleware: the client's credentials out, the provider's in."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from aimw.credentials import HeaderCredential, QueryCredential, bearer
from aimw.middleware.provider_auth import ProviderAuthMiddleware
from tests.asgi_helpers import InnerApp, RecordingSend, ScriptedReceive, call, http_scope

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


def inner_app() -> InnerApp:
    """The app below: records the scope it got, answers 204 without a body."""
    return InnerApp(204, b"", headers=())


async def test_client_credentials_replaced_by_the_providers():
    inner = inner_app()
    app = ProviderAuthMiddleware(inner, credential=HeaderCredential("Authorization", SECRET, prefix="Bearer "))
    scope = http_scope(headers=CLIENT_HEADERS)
    original = list(scope["headers"])
    response = await call(app, scope)
    assert response.status == 204
    assert inner.scope["headers"] == [
        (b"host", b"localhost:8000"),
        (b"content-type", b"application/json"),
        (b"user-agent", b"claude-cli/2.1.329"),
        (b"authorization", b"Bearer " + SECRET.encode()),
    ]
    assert scope["headers"] == original  # the caller's scope is not mutated


async def test_header_without_prefix():
    inner = inner_app()
    app = ProviderAuthMiddleware(inner, credential=HeaderCredential("api-key", SECRET))
    await call(app, http_scope(headers=CLIENT_HEADERS))
    credentials = [(k, v) for k, v in inner.scope["headers"] if k in (b"api-key", b"authorization", b"x-api-key")]
    assert credentials == [(b"api-key", SECRET.encode())]


async def test_mixed_case_client_headers_are_removed():
    inner = inner_app()
    app = ProviderAuthMiddleware(inner, credential=bearer(SECRET))
    await call(app, http_scope(headers=[(b"X-Api-Key", b"k"), (b"Authorization", b"Bearer c")]))
    assert [k.lower() for k, _ in inner.scope["headers"]].count(b"authorization") == 1
    assert all(v not in (b"k", b"Bearer c") for _, v in inner.scope["headers"])


async def test_no_credential_only_removes():
    inner = inner_app()
    app = ProviderAuthMiddleware(inner, credential=None)
    await call(app, http_scope(headers=CLIENT_HEADERS))
    assert inner.scope["headers"] == [
        (b"host", b"localhost:8000"),
        (b"content-type", b"application/json"),
        (b"user-agent", b"claude-cli/2.1.329"),
    ]


def test_repr_hides_the_secret():
    app = ProviderAuthMiddleware(inner_app(), credential=bearer(SECRET))
    assert SECRET not in repr(app)
    assert SECRET not in str(app)
    assert "authorization" in repr(app)


async def test_query_credential_is_appended_after_the_clients_query():
    inner = inner_app()
    app = ProviderAuthMiddleware(inner, credential=QueryCredential("key", SECRET))
    scope = http_scope(query=b"alt=sse&beta=true", headers=CLIENT_HEADERS)
    await call(app, scope)
    assert inner.scope["query_string"] == b"alt=sse&beta=true&key=" + SECRET.encode()
    assert scope["query_string"] == b"alt=sse&beta=true"  # the caller's scope is not mutated
    assert inner.scope["headers"] == [
        (b"host", b"localhost:8000"),
        (b"content-type", b"application/json"),
        (b"user-agent", b"claude-cli/2.1.329"),
    ]


async def test_query_credential_alone_when_the_client_sent_no_query():
    inner = inner_app()
    await call(ProviderAuthMiddleware(inner, credential=QueryCredential("key", SECRET)), http_scope())
    assert inner.scope["query_string"] == b"key=" + SECRET.encode()


async def test_query_credential_is_percent_encoded():
    inner = inner_app()
    app = ProviderAuthMiddleware(inner, credential=QueryCredential("api key", "a&b=c/d+e"))
    await call(app, http_scope(query=b"alt=sse"))
    assert inner.scope["query_string"] == b"alt=sse&api%20key=a%26b%3Dc%2Fd%2Be"
    assert parse_qs(inner.scope["query_string"].decode()) == {"alt": ["sse"], "api key": ["a&b=c/d+e"]}


async def test_the_credential_is_awaited_on_every_request():
    class RefreshingToken:
        def __init__(self) -> None:
            self.calls = 0

        async def authorization(self):
            self.calls += 1
            return [(b"authorization", b"Bearer token-%d" % self.calls)], b""

    inner = inner_app()
    credential = RefreshingToken()
    app = ProviderAuthMiddleware(inner, credential=credential)
    sent = []
    for _ in range(2):
        await call(app, http_scope(headers=CLIENT_HEADERS))
        sent.append([v for k, v in inner.scope["headers"] if k == b"authorization"])
    assert sent == [[b"Bearer token-1"], [b"Bearer token-2"]]
    assert inner.scope["query_string"] == b""


@pytest.mark.parametrize(
    "credential, shown",
    [
        (HeaderCredential("api-key", SECRET), "api-key"),
        (HeaderCredential("authorization", SECRET, prefix="Bearer "), "authorization"),
        (bearer(SECRET), "authorization"),
        (QueryCredential("key", SECRET), "key"),
    ],
)
def test_credential_reprs_hide_the_secret(credential, shown):
    for text in (repr(credential), str(credential), repr(ProviderAuthMiddleware(inner_app(), credential=credential))):
        assert SECRET not in text
        assert shown in text


async def test_lifespan_passes_through_unchanged():
    inner = inner_app()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await ProviderAuthMiddleware(inner, credential=bearer(SECRET))(scope, ScriptedReceive(), RecordingSend())
    assert inner.scope is scope
