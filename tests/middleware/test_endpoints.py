"""AnthropicEndpoints at the ASGI level: HEAD pre-flights, count_tokens answered locally,
POST …/v1/messages passed on, anything else 404 in Anthropic's shape."""

from __future__ import annotations

import pytest

from aimw.errors import GatewayError
from aimw.exchange import exchange_of
from aimw.middleware.endpoints import AnthropicEndpoints, canonical_path
from tests.asgi_helpers import InnerApp, RecordingSend, ScriptedReceive, call, http_scope, split_at
from tests.shared_data import CORPUS

pytestmark = pytest.mark.anyio

CLIENT_HEADERS = [
    (b"content-type", b"application/json"),
    (b"x-api-key", b"sk-ant-test-key"),
    (b"anthropic-version", b"2023-06-01"),
]
MESSAGES_BODY = b'{"model": "claude-opus-5-5", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}'


def assert_anthropic_error(response: RecordingSend, status: int, error_type: str) -> str:
    assert response.status == status, response.body
    assert response.header(b"content-type") == b"application/json"
    assert response.header(b"content-length") == str(len(response.body)).encode()
    assert response.complete
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == error_type
    assert isinstance(error["error"]["message"], str) and error["error"]["message"]
    return error["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/messages", "/anything/v1/messages"])
async def test_messages_go_on_to_the_app(path):
    inner = InnerApp()
    scope = http_scope(path=path, query=b"beta=true", headers=CLIENT_HEADERS, body=MESSAGES_BODY)
    response = await call(AnthropicEndpoints(inner), scope, split_at(MESSAGES_BODY, 10))
    assert response.status == 200 and response.body == b"{}"
    [routed] = inner.scopes
    assert (routed["path"], routed["raw_path"], routed["query_string"]) == (
        "/v1/messages",
        b"/v1/messages",
        b"beta=true",
    )
    assert routed["headers"] == scope["headers"]
    assert inner.bodies == [MESSAGES_BODY]


@pytest.mark.parametrize("path", ["/", "/api/hello"])
async def test_head_preflight_is_200(path):
    inner = InnerApp()
    response = await call(AnthropicEndpoints(inner), http_scope("HEAD", path))
    assert response.status == 200
    assert response.body == b""
    assert response.complete
    assert inner.calls == 0


async def test_count_tokens_is_answered_locally():
    inner = InnerApp()
    app = AnthropicEndpoints(inner)
    counts = {}
    for name in ("018-count_tokens-minimal-foo.json", "019-count_tokens-11-tools.json"):
        body = (CORPUS / name).read_bytes()
        scope = http_scope(path="/v1/messages/count_tokens", query=b"beta=true", headers=CLIENT_HEADERS, body=body)
        response = await call(app, scope, split_at(body, 1000))
        assert response.status == 200
        assert response.header(b"content-type") == b"application/json"
        answer = response.json()
        assert list(answer) == ["input_tokens"]
        assert isinstance(answer["input_tokens"], int) and answer["input_tokens"] > 0
        counts[name] = answer["input_tokens"]
    assert inner.calls == 0
    assert counts["019-count_tokens-11-tools.json"] > counts["018-count_tokens-minimal-foo.json"]


async def test_count_tokens_reads_the_body_a_layer_above_kept():
    inner = InnerApp()
    body = (CORPUS / "018-count_tokens-minimal-foo.json").read_bytes()
    scope = http_scope(path="/v1/messages/count_tokens", body=body)
    exchange_of(scope).request_body = body
    receive = ScriptedReceive(disconnect_now=True)
    send = RecordingSend()
    await AnthropicEndpoints(inner)(scope, receive, send)
    assert send.status == 200 and send.json()["input_tokens"] > 0
    assert receive.calls == 0


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/models"),
        ("GET", "/v1/messages"),
        ("POST", "/v1/complete"),
        ("POST", "/v1/messages/batches"),
        ("GET", "/"),
    ],
)
async def test_other_endpoints_are_404(method, path):
    inner = InnerApp()
    scope = http_scope(method, path, body=b"")
    response = await call(AnthropicEndpoints(inner), scope)
    message = assert_anthropic_error(response, 404, "not_found_error")
    assert path in message
    assert inner.calls == 0
    assert exchange_of(scope).error == f"not_found_error: {message}"


@pytest.mark.parametrize(
    "raw", [b"/v1/messages", b"/anything/v1/messages", b"/v1/messages/count_tokens", b"/v1/files/file%2Dx", b"/"]
)
def test_canonical_path_keeps_what_it_accepts(raw):
    assert canonical_path({"path": "/ignored", "raw_path": raw}) == raw.decode()


@pytest.mark.parametrize(
    "raw",
    [
        b"/v1/%2e%2e/admin",
        b"/v1/%2E/messages",
        b"/v1%2fmessages",
        b"/v1%2Fmessages",
        b"/v1/%5cmessages",
        b"/v1/messages%3bx",
        b"/v1/messages%23x",
        b"/v1\\messages",
        b"/v1/messages;x",
        b"/v1/messages#x",
        b"/v1/./messages",
        b"/v1/x/../messages",
        b"/v1/messages/.",
        b"/v1/messages/..",
        b"/v1//messages",
        b"v1/messages",
        b"*",
    ],
)
def test_canonical_path_refuses_other_spellings(raw):
    """Finding 4: a spelling the provider would normalise to another path than the one matched."""
    with pytest.raises(GatewayError) as caught:
        canonical_path({"path": "/v1/messages", "raw_path": raw})
    assert (caught.value.status, caught.value.error_type) == (400, "invalid_request_error")


def test_canonical_path_without_raw_path_checks_path():
    assert canonical_path({"path": "/v1/messages"}) == "/v1/messages"
    with pytest.raises(GatewayError):
        canonical_path({"path": "/v1/x/../messages", "raw_path": None})


async def test_count_tokens_with_a_bad_body_is_400():
    inner = InnerApp()
    response = await call(AnthropicEndpoints(inner), http_scope(path="/v1/messages/count_tokens", body=b"{}"), [b"{}"])
    assert "messages" in assert_anthropic_error(response, 400, "invalid_request_error")


async def test_count_tokens_body_over_the_limit_is_413():
    inner = InnerApp()
    body = (CORPUS / "018-count_tokens-minimal-foo.json").read_bytes()
    app = AnthropicEndpoints(inner, max_body_size=len(body) - 1)
    response = await call(app, http_scope(path="/v1/messages/count_tokens", body=body), split_at(body, 20))
    assert_anthropic_error(response, 413, "request_too_large")

    app = AnthropicEndpoints(inner, max_body_size=len(body))
    response = await call(app, http_scope(path="/v1/messages/count_tokens", body=body), [body])
    assert response.status == 200


async def test_client_gone_while_sending_the_count_tokens_body():
    inner = InnerApp()
    send = RecordingSend()
    receive = ScriptedReceive([b'{"messages"'], disconnect_now=True, complete=False)
    scope = http_scope(path="/v1/messages/count_tokens", body=b'{"messages": []}')
    await AnthropicEndpoints(inner)(scope, receive, send)
    assert send.messages == []
    assert inner.calls == 0


async def test_lifespan_passes_through():
    inner = InnerApp()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await AnthropicEndpoints(inner)(scope, ScriptedReceive(), RecordingSend())
    assert inner.scopes == [scope]
