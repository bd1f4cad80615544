"""ClientAuthMiddleware at the ASGI level (issue 12, Kong's key-auth): a consumer's key in
x-api-key or Authorization: Bearer admits the request and names its consumer; no key or an
unknown one is a 401 in Anthropic's shape, logged with the reason and never the key. Then
the standard stacks: where the layer sits, the open gateway's warning, the configurations
refused, and Kong's log fields."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest

from aimw import ObserveMiddleware, Settings, config_gateway, passthrough_gateway, translated_gateway
from aimw.config import Consumer, KeyauthCredential, keyring, load_config
from aimw.exchange import exchange_of
from aimw.gateway import OPEN_GATEWAY
from aimw.middleware.client_auth import ClientAuthMiddleware
from aimw.middleware.client_guard import ClientGuard
from aimw.providers.anthropic import ANTHROPIC
from aimw.providers.huggingface import HUGGINGFACE
from aimw.settings import ConfigurationError
from aimw.sinks import KongFileLog
from tests.asgi_helpers import InnerApp, call, http_scope

pytestmark = pytest.mark.anyio

ALICE_KEY = "aimw-alice-" + "7c1f0e9b4a2d6e83"
BOB_KEY = "aimw-bob-" + "d45b2e8f1c0a9b77"  # stored hashed
WRONG_KEY = "aimw-mallory-" + "0a1b2c3d4e5f6a7b"
JSON = (b"content-type", b"application/json")
BODY = b'{"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}'
CONSUMERS = (
    Consumer(username="alice", keyauth_credentials=(KeyauthCredential(key=ALICE_KEY),)),
    Consumer(
        username="bob",
        custom_id="team-b",
        keyauth_credentials=(KeyauthCredential(key="sha256:" + hashlib.sha256(BOB_KEY.encode()).hexdigest()),),
    ),
)
KEYRING = keyring(CONSUMERS)


def request(*headers: tuple[bytes, bytes], method: str = "POST", path: str = "/v1/messages") -> dict:
    return http_scope(method, path, headers=[JSON, *headers], body=BODY if method == "POST" else None)


async def authenticate(scope: dict) -> tuple[InnerApp, object]:
    inner = InnerApp()
    response = await call(ClientAuthMiddleware(inner, keyring=KEYRING), scope, [BODY])
    return inner, response


def assert_refused(inner: InnerApp, response, scope: dict, message_start: str) -> None:
    """401 authentication_error in Anthropic's shape, not to be retried; nothing below ran."""
    assert inner.calls == 0
    assert response.status == 401
    assert response.header(b"content-type") == b"application/json"
    assert response.header(b"content-length") == str(len(response.body)).encode()
    assert response.header(b"x-should-retry") == b"false"
    assert response.header(b"www-authenticate") == b'Bearer realm="aimw"'
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "authentication_error"
    assert error["error"]["message"].startswith(message_start)
    assert exchange_of(scope).consumer is None
    assert exchange_of(scope).error.startswith("authentication_error: ")


@pytest.mark.parametrize(
    ("header", "username"),
    [
        ((b"x-api-key", ALICE_KEY.encode()), "alice"),
        ((b"authorization", b"Bearer " + ALICE_KEY.encode()), "alice"),
        ((b"authorization", b"bearer   " + ALICE_KEY.encode()), "alice"),  # scheme in any case, RFC 9110
        ((b"x-api-key", BOB_KEY.encode()), "bob"),  # a key stored as sha256:<hex>
        ((b"authorization", b"Bearer " + BOB_KEY.encode()), "bob"),
    ],
)
async def test_a_consumers_key_admits_the_request_and_names_the_consumer(header, username):
    scope = request(header)
    inner, response = await authenticate(scope)

    assert inner.calls == 1 and inner.body == BODY
    assert response.status == 200
    consumer = exchange_of(scope).consumer
    assert consumer is not None and consumer.username == username
    assert consumer is exchange_of(inner.scope).consumer  # the layers below see it
    assert consumer == KEYRING[hashlib.sha256((ALICE_KEY if username == "alice" else BOB_KEY).encode()).digest()]


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-api-key", WRONG_KEY.encode())],
        [(b"authorization", b"Bearer " + WRONG_KEY.encode())],
        [(b"x-api-key", WRONG_KEY.encode()), (b"authorization", b"Bearer " + WRONG_KEY.encode())],
        [(b"x-api-key", ALICE_KEY.encode() + b"x")],  # a key and one more character
        [(b"x-api-key", ALICE_KEY[:-1].encode())],  # a key but its last character
        [(b"x-api-key", hashlib.sha256(BOB_KEY.encode()).hexdigest().encode())],  # the stored digest itself
        [(b"x-api-key", b"sha256:" + hashlib.sha256(BOB_KEY.encode()).hexdigest().encode())],
    ],
)
async def test_an_unknown_key_is_401(headers, caplog):
    scope = request(*headers)
    with caplog.at_level(logging.WARNING, "aimw.client_auth"):
        inner, response = await authenticate(scope)

    assert_refused(inner, response, scope, "Invalid authentication credentials")
    (record,) = caplog.records
    assert "unknown key in" in record.getMessage() and "127.0.0.1" in record.getMessage()
    for _, value in headers:  # the key is in no log record and not in the answer
        token = value.removeprefix(b"Bearer ").decode()
        assert token not in caplog.text and token.encode() not in response.body


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([], "no key"),
        ([(b"x-api-key", b"")], "no key"),
        ([(b"authorization", b"Bearer ")], "no key"),
        ([(b"authorization", b"Basic " + ALICE_KEY.encode())], "no key (Authorization is not Bearer)"),
        ([(b"authorization", ALICE_KEY.encode())], "no key (Authorization is not Bearer)"),
    ],
)
async def test_no_key_is_401_saying_where_to_send_one(headers, reason, caplog):
    scope = request(*headers)
    with caplog.at_level(logging.WARNING, "aimw.client_auth"):
        inner, response = await authenticate(scope)

    assert_refused(inner, response, scope, "No API key found in request")
    assert "x-api-key or Authorization: Bearer" in response.json()["error"]["message"]
    assert caplog.records[0].getMessage().endswith(": " + reason)
    assert ALICE_KEY not in caplog.text


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-api-key", WRONG_KEY.encode()), (b"authorization", b"Bearer " + ALICE_KEY.encode())],
        [(b"x-api-key", ALICE_KEY.encode()), (b"authorization", b"Bearer " + WRONG_KEY.encode())],
        [(b"authorization", b"Basic eDp5"), (b"x-api-key", ALICE_KEY.encode())],
    ],
)
async def test_either_of_both_headers_may_hold_the_key(headers):
    """Clients with both ANTHROPIC_API_KEY and ANTHROPIC_AUTH_TOKEN set send both headers."""
    scope = request(*headers)
    inner, response = await authenticate(scope)
    assert inner.calls == 1 and response.status == 200
    assert exchange_of(scope).consumer.username == "alice"


@pytest.mark.parametrize("path", ["/", "/api/hello", "/v1/messages"])
async def test_head_preflights_need_no_key(path):
    """Claude Code's pre-flight HEAD carries no key (corpus 023, 024); AnthropicEndpoints answers it."""
    scope = request(method="HEAD", path=path)
    inner, response = await authenticate(scope)
    assert inner.calls == 1 and response.status == 200
    assert exchange_of(scope).consumer is None


async def test_count_tokens_and_other_paths_need_a_key():
    for path in ("/v1/messages/count_tokens", "/v1/models", "/anything"):
        scope = request(path=path)
        inner, response = await authenticate(scope)
        assert_refused(inner, response, scope, "No API key found in request")


async def test_lifespan_passes_untouched():
    inner = InnerApp()
    await ClientAuthMiddleware(inner, keyring=KEYRING)({"type": "lifespan"}, None, None)
    assert inner.calls == 1


def test_an_empty_keyring_is_refused():
    with pytest.raises(ValueError, match="at least one key"):
        ClientAuthMiddleware(InnerApp(), keyring={})
    assert repr(ClientAuthMiddleware(InnerApp(), keyring=KEYRING)) == "ClientAuthMiddleware(keys=2)"


# ---------------------------------------------------------------- Kong's log fields


async def test_the_log_names_the_consumer_and_never_the_key(tmp_path):
    """Kong's ``consumer: {id, username, custom_id}`` and ``authenticated_entity: {id}`` on an
    admitted request; none on a refused one; the key in no line."""
    log_path = tmp_path / "aimw.log"
    app = ObserveMiddleware(ClientAuthMiddleware(InnerApp(), keyring=KEYRING), sinks=[KongFileLog(str(log_path))])

    await call(app, request((b"authorization", b"Bearer " + BOB_KEY.encode())), [BODY])
    await call(app, request((b"x-api-key", ALICE_KEY.encode())), [BODY])
    await call(app, request((b"x-api-key", WRONG_KEY.encode())), [BODY])

    text = log_path.read_text()
    for key in (ALICE_KEY, BOB_KEY, WRONG_KEY, hashlib.sha256(BOB_KEY.encode()).hexdigest()):
        assert key not in text
    bob, alice, refused = (json.loads(line) for line in text.splitlines())
    bob_consumer = KEYRING[hashlib.sha256(BOB_KEY.encode()).digest()]
    assert bob["consumer"] == {"id": bob_consumer.id, "username": "bob", "custom_id": "team-b"}
    assert bob["authenticated_entity"] == {"id": bob_consumer.credential_id}
    assert bob["request"]["headers"]["authorization"] == "REDACTED"
    assert alice["consumer"] == {"id": str(CONSUMERS[0].consumer_id), "username": "alice"}
    assert alice["authenticated_entity"] == {"id": str(CONSUMERS[0].credential_id(0))}
    assert alice["request"]["headers"]["x-api-key"] == "REDACTED"
    assert refused["response"]["status"] == 401
    assert "consumer" not in refused and "authenticated_entity" not in refused
    assert list(alice).index("consumer") < list(alice).index("client_ip")  # Kong's order


# ---------------------------------------------------------------- the standard stacks


def layers(app) -> list:
    """The stack's layers from the top, following ``.app``."""
    found = []
    while app is not None:
        found.append(app)
        app = getattr(app, "app", None)
    return found


def consumers_file(tmp_path, key: str = ALICE_KEY) -> str:
    path = tmp_path / "consumers.yaml"
    path.write_text(f"consumers:\n  - username: alice\n    keyauth_credentials: [{{key: {key}}}]\n")
    return str(path)


def test_client_auth_sits_right_under_observe(tmp_path):
    """Observe > ClientAuth > (RateLimit) > ClientGuard: a client without a key learns
    nothing, not even which Host, Origin or path the gateway takes."""
    settings = Settings(consumers_path=consumers_file(tmp_path), log_path=str(tmp_path / "aimw.log"))
    for app in (
        translated_gateway(HUGGINGFACE, settings, secret="hf_" + "x" * 20),
        passthrough_gateway(ANTHROPIC, settings, secret="sk-ant-" + "x" * 20),
    ):
        stack = layers(app)
        index = next(i for i, layer in enumerate(stack) if isinstance(layer, ClientAuthMiddleware))
        assert isinstance(stack[index - 1], ObserveMiddleware)
        assert any(isinstance(layer, ClientGuard) for layer in stack[index + 1 :])  # RateLimit may sit between


def test_without_consumers_there_is_no_layer_and_one_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, "aimw.gateway"):
        app = translated_gateway(HUGGINGFACE, Settings(log_path=str(tmp_path / "aimw.log")), secret="hf_" + "x" * 20)
    assert not any(isinstance(layer, ClientAuthMiddleware) for layer in layers(app))
    assert [record.getMessage() for record in caplog.records] == [OPEN_GATEWAY]


async def test_an_unauthenticated_client_gets_401_before_any_other_check(tmp_path):
    """A foreign Host, an Origin, a path the gateway does not serve: all 401 without a key."""
    settings = Settings(consumers_path=consumers_file(tmp_path), log_path=str(tmp_path / "aimw.log"))
    app = translated_gateway(HUGGINGFACE, settings, secret="hf_" + "x" * 20)
    for scope in (
        request((b"origin", b"https://evil.example")),
        request(path="/v1/files"),
        {**request(), "headers": [(b"host", b"evil.example"), JSON]},
    ):
        response = await call(app, scope, [BODY])
        assert response.status == 401, response.body
    keyed = await call(app, request((b"x-api-key", ALICE_KEY.encode()), (b"origin", b"https://evil.example")), [BODY])
    assert keyed.status == 403  # with a key, ClientGuard's refusal


def test_the_pass_through_needs_its_own_key_with_consumers(tmp_path):
    """Without ANTHROPIC_API_KEY the client's key would go to Anthropic: a consumer's key."""
    settings = Settings(consumers_path=consumers_file(tmp_path), log_path=str(tmp_path / "aimw.log"))
    with pytest.raises(ConfigurationError, match="must send its own anthropic key"):
        passthrough_gateway(ANTHROPIC, settings, secret=None)


CONFIG = """\
llm_format: anthropic
targets:
  - model: {{provider: {provider}, name: some-model}}
{auth}consumers:
  - username: alice
    keyauth_credentials: [{{key: {key}}}]
"""


def test_a_config_with_consumers_refuses_an_anthropic_target_without_auth(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG.format(provider="anthropic", auth="", key=ALICE_KEY))
    with pytest.raises(ConfigurationError, match=r"targets\[0\]\.auth: required with consumers"):
        config_gateway(load_config(str(path), {}), Settings(log_path=str(tmp_path / "aimw.log")))


def test_consumers_come_from_one_place(tmp_path):
    path = tmp_path / "gateway.yaml"
    auth = "    auth: {header_name: x-api-key, header_value: sk-ant-provider-key}\n"
    path.write_text(CONFIG.format(provider="anthropic", auth=auth, key=ALICE_KEY))
    config = load_config(str(path), {})
    log_path = str(tmp_path / "aimw.log")
    app = config_gateway(config, Settings(log_path=log_path))
    assert any(isinstance(layer, ClientAuthMiddleware) for layer in layers(app))
    with pytest.raises(ConfigurationError, match="consumers are given twice"):
        config_gateway(config, Settings(log_path=log_path, consumers_path=consumers_file(tmp_path)))
