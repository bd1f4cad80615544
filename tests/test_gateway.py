"""gateway: the standard stacks, driven with ASGI calls.

translated_gateway against an httpx transport that records what would go on the wire
(defaults and AIMW_* overrides, each provider's URL, query and auth); passthrough_gateway
against a real HTTP/1.1 server on loopback (bodies, headers, query and streams unchanged).
"""

from __future__ import annotations

import asyncio
import json

import anyio
import httpx
import pytest

from aimw.gateway import passthrough_gateway, translated_gateway
from aimw.providers import Provider
from aimw.providers.anthropic import ANTHROPIC
from aimw.providers.azure import azure
from aimw.providers.dashscope import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, dashscope
from aimw.providers.huggingface import HUGGINGFACE
from aimw.providers.openai import openai
from aimw.settings import Settings
from aimw.upstream import UpstreamApp
from tests.asgi_helpers import RecordingSend, ScriptedReceive, anthropic_stream, http_scope, split_at, sse_events
from tests.fakes.loopback_server import LoopbackServer, Request, chunked, response_head
from tests.shared_data import CORPUS, KONG

pytestmark = pytest.mark.anyio

GUARD = 10  # seconds: a hang guard only, never an assertion about speed
CLIENT_KEY = b"sk-ant-client-key-0001"
CLIENT_HEADERS = [
    (b"content-type", b"application/json"),
    (b"x-api-key", CLIENT_KEY),
    (b"authorization", b"Bearer client-oauth-token-0002"),
    (b"anthropic-version", b"2023-06-01"),
    (b"anthropic-beta", b"claude-code-20250219,interleaved-thinking-2025-05-14"),
    (b"anthropic-dangerous-direct-browser-access", b"true"),
    (b"user-agent", b"claude-cli/2.1.329 (external, sdk-cli)"),
    (b"x-stainless-retry-count", b"0"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"connection", b"keep-alive"),
]
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "model": "served-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "2"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
    }
).encode()


def upstream_of(app) -> UpstreamApp:
    while not isinstance(app, UpstreamApp):
        app = app.app
    return app


async def post(
    app, path="/v1/messages", body=b"{}", *, query=b"", headers=CLIENT_HEADERS, method="POST"
) -> RecordingSend:
    """One request through ``app``; the client keeps its connection open while it answers."""
    scope = http_scope(method, path, query=query, headers=headers, body=body if method != "HEAD" else None)
    send = RecordingSend()
    with anyio.fail_after(GUARD):
        await app(scope, ScriptedReceive(split_at(body, 3, 200)), send)
    return send


def read_log(path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


# ================================================================ translated_gateway


class RecordingTransport(httpx.AsyncBaseTransport):
    """Stands in for the network: records each request (and its body), answers ``answer``
    as a streamed response, like a provider would."""

    def __init__(
        self, answer: bytes = COMPLETION, *, status: int = 200, content_type: str = "application/json"
    ) -> None:
        self.answer = answer
        self.status = status
        self.content_type = content_type
        self.requests: list[tuple[httpx.Request, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.requests.append((request, body))
        return httpx.Response(
            self.status, headers={"content-type": self.content_type}, stream=httpx.ByteStream(self.answer)
        )

    @property
    def request(self) -> httpx.Request:
        assert len(self.requests) == 1, self.requests
        return self.requests[0][0]

    @property
    def json(self) -> dict:
        assert len(self.requests) == 1, self.requests
        return json.loads(self.requests[0][1])


def messages(**fields) -> bytes:
    body = {"model": "claude-opus-5-5", "messages": [{"role": "user", "content": "What is 1 + 1?"}], **fields}
    return json.dumps(body).encode()


async def translated(
    provider: Provider, settings: Settings, body: bytes, *, credential="provider-secret-key", **defaults
):
    transport = RecordingTransport()
    app = translated_gateway(provider, settings, secret=credential, transport=transport, **defaults)
    response = await post(app, body=body, query=b"beta=true")
    await upstream_of(app).transport.close()
    assert response.status == 200, response.body
    assert response.json()["content"] == [{"type": "text", "text": "2"}]
    return transport, response


# ---------------------------------------------------------------- max_tokens and temperature


@pytest.fixture
def log_settings(tmp_path):
    def make(**environ: str) -> Settings:
        return Settings.from_env({"AIMW_LOG_PATH": str(tmp_path / "aimw.log"), **environ})

    return make


@pytest.mark.parametrize(
    "client, upstream",
    [
        (
            {"max_tokens": 32000, "temperature": 0.3},
            {"max_tokens": DEFAULT_MAX_TOKENS, "temperature": DEFAULT_TEMPERATURE},
        ),
        ({"max_tokens": 100}, {"max_tokens": 100, "temperature": DEFAULT_TEMPERATURE}),
        ({"max_tokens": 8192, "temperature": 1.0}, {"max_tokens": 8192, "temperature": 1.0}),
    ],
)
async def test_recipe_defaults_cap_max_tokens_and_set_temperature(log_settings, client, upstream):
    transport, _ = await translated(
        dashscope(),
        log_settings(),
        messages(**client),
        default_max_tokens=DEFAULT_MAX_TOKENS,
        default_temperature=DEFAULT_TEMPERATURE,
    )
    chat = transport.json
    assert {key: chat.get(key) for key in upstream} == upstream


@pytest.mark.parametrize(
    "environ, client, upstream",
    [
        (
            {"AIMW_MAX_TOKENS": "4096", "AIMW_TEMPERATURE": "0.2"},
            {"max_tokens": 32000, "temperature": 0.9},
            (4096, 0.2),
        ),
        ({"AIMW_MAX_TOKENS": "16000"}, {"max_tokens": 32000}, (16000, DEFAULT_TEMPERATURE)),  # above the default
        ({"AIMW_MAX_TOKENS": "4096"}, {"max_tokens": 2000}, (2000, DEFAULT_TEMPERATURE)),  # a cap, not a value
        (
            {"AIMW_TEMPERATURE": "0"},
            {"max_tokens": 32000, "temperature": 0.7},
            (DEFAULT_MAX_TOKENS, 0.0),
        ),  # 0 is a setting
    ],
)
async def test_aimw_settings_win_over_recipe_defaults(log_settings, environ, client, upstream):
    transport, _ = await translated(
        dashscope(),
        log_settings(**environ),
        messages(**client),
        default_max_tokens=DEFAULT_MAX_TOKENS,
        default_temperature=DEFAULT_TEMPERATURE,
    )
    chat = transport.json
    assert (chat["max_tokens"], chat["temperature"]) == upstream


async def test_the_translated_stack_parses_the_body_once(log_settings, monkeypatch):
    """StripFields parses the Messages request once; Translate and the wire format reuse it."""
    from aimw.translators.anthropic import messages as anthropic_messages

    decoded: list[bytes] = []
    real = anthropic_messages.request_decoder

    class CountingDecoder:
        def decode(self, body: bytes):
            decoded.append(bytes(body))
            return real.decode(body)

    monkeypatch.setattr(anthropic_messages, "request_decoder", CountingDecoder())
    body = messages(max_tokens=32000, temperature=0.3, stream=False)
    transport, _ = await translated(HUGGINGFACE, log_settings(AIMW_MAX_TOKENS="1000"), body)
    assert decoded == [body]
    assert transport.json["max_tokens"] == 1000


async def test_without_defaults_or_settings_the_clients_values_pass(log_settings):
    transport, _ = await translated(HUGGINGFACE, log_settings(), messages(max_tokens=32000, temperature=0.3))
    assert (transport.json["max_tokens"], transport.json["temperature"]) == (32000, 0.3)

    transport, _ = await translated(HUGGINGFACE, log_settings(), messages(max_tokens=32000))
    assert transport.json["max_tokens"] == 32000
    assert "temperature" not in transport.json


async def test_aimw_settings_without_defaults(log_settings):
    transport, _ = await translated(
        HUGGINGFACE, log_settings(AIMW_MAX_TOKENS="1024", AIMW_TEMPERATURE="0.5"), messages(max_tokens=32000)
    )
    assert (transport.json["max_tokens"], transport.json["temperature"]) == (1024, 0.5)


async def test_max_completion_tokens_field_is_capped_too(log_settings):
    transport, _ = await translated(
        azure("res", "o3-mini", max_tokens_field="max_completion_tokens"),
        log_settings(),
        messages(max_tokens=32000),
        default_max_tokens=4000,
    )
    assert transport.json["max_completion_tokens"] == 4000
    assert "max_tokens" not in transport.json


# ---------------------------------------------------------------- each provider on the wire


def header_values(request: httpx.Request, name: str) -> list[str]:
    return request.headers.get_list(name)


def assert_no_client_credentials_or_anthropic_headers(request: httpx.Request) -> None:
    assert CLIENT_KEY.decode() not in str(request.headers.raw)
    assert "client-oauth-token" not in str(request.headers.raw)
    for name in ("x-api-key", "anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access"):
        assert header_values(request, name) == [], name


@pytest.mark.parametrize(
    "auth_header, header, value",
    [("api-key", "api-key", "azure-key-123"), ("authorization", "authorization", "Bearer azure-key-123")],
)
async def test_azure_on_the_wire(log_settings, tmp_path, auth_header, header, value):
    provider = azure("my-resource", "gpt-4o-prod", "2024-10-21", auth_header=auth_header)
    transport, response = await translated(
        provider, log_settings(), messages(max_tokens=10), credential="azure-key-123"
    )
    request = transport.request
    assert str(request.url) == (
        "https://my-resource.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    )
    assert header_values(request, header) == [value]
    other = "authorization" if header == "api-key" else "api-key"
    assert header_values(request, other) == []
    assert_no_client_credentials_or_anthropic_headers(request)
    assert transport.json["model"] == "gpt-4o-prod"
    assert transport.json["max_tokens"] == 10
    assert response.header(b"x-aimw-llm-model") == b"azure/gpt-4o-prod"

    [line] = read_log(tmp_path / "aimw.log")
    meta = line["ai"]["proxy"]["meta"]
    assert meta["provider_name"] == "azure"
    assert meta["request_mode"] == "oneshot"
    assert (meta["azure_instance_id"], meta["azure_deployment_id"], meta["azure_api_version"]) == (
        "my-resource",
        "gpt-4o-prod",
        "2024-10-21",
    )
    assert line["upstream_uri"] == "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    [target] = line["ai"]["proxy"]["tried_targets"]
    assert (target["host"], target["port"], target["upstream_scheme"]) == ("my-resource.openai.azure.com", 443, "https")
    assert target["upstream_uri"] == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert "azure-key-123" not in (tmp_path / "aimw.log").read_text()


async def test_azure_behind_aimw_upstream_url_keeps_path_and_query(log_settings):
    transport, _ = await translated(
        azure("res", "dep"), log_settings(AIMW_UPSTREAM_URL="http://127.0.0.1:9/"), messages(max_tokens=10)
    )
    url = "http://127.0.0.1:9/openai/deployments/dep/chat/completions?api-version=2025-01-01-preview"
    assert str(transport.request.url) == url


@pytest.mark.parametrize(
    "region, host", [("international", "dashscope-intl.aliyuncs.com"), ("china", "dashscope.aliyuncs.com")]
)
async def test_dashscope_on_the_wire(log_settings, region, host):
    body = messages(max_tokens=32000, stream=True, thinking={"type": "enabled", "budget_tokens": 4000})
    transport, response = await translated(dashscope(region), log_settings(), body, credential="sk-dashscope")
    request = transport.request
    assert str(request.url) == f"https://{host}/compatible-mode/v1/chat/completions"
    assert header_values(request, "authorization") == ["Bearer sk-dashscope"]
    assert_no_client_credentials_or_anthropic_headers(request)
    chat = transport.json
    assert chat["model"] == "qwen-plus"
    assert (chat["enable_thinking"], chat["thinking_budget"]) == (True, 4000)
    assert response.header(b"x-aimw-llm-model") == b"dashscope/qwen-plus"


@pytest.mark.parametrize(
    "environ, model, field",
    [({}, "gpt-4.1", "max_tokens"), ({"AIMW_MODEL": "gpt-5"}, "gpt-5", "max_completion_tokens")],
)
async def test_openai_on_the_wire(log_settings, environ, model, field):
    settings = log_settings(**environ)
    provider = openai(settings.model or "gpt-4.1")
    transport, _ = await translated(provider, settings, messages(max_tokens=77), credential="sk-openai")
    request = transport.request
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert header_values(request, "authorization") == ["Bearer sk-openai"]
    assert_no_client_credentials_or_anthropic_headers(request)
    assert transport.json["model"] == model
    assert transport.json[field] == 77


async def test_no_credential_sends_none(log_settings):
    settings = log_settings(AIMW_UPSTREAM_URL="http://127.0.0.1:11434")
    transport, _ = await translated(openai("qwen3-coder"), settings, messages(max_tokens=5), credential=None)
    assert str(transport.request.url) == "http://127.0.0.1:11434/v1/chat/completions"
    assert header_values(transport.request, "authorization") == []
    assert_no_client_credentials_or_anthropic_headers(transport.request)


async def test_a_recipes_forward_headers_join_the_allowlist(log_settings):
    """Finding 8, settable per recipe: the recipe's names and AIMW_FORWARD_HEADERS' both go
    on, in any case; any other client header still does not."""
    transport = RecordingTransport()
    settings = log_settings(AIMW_FORWARD_HEADERS="X-Operator")
    app = translated_gateway(
        HUGGINGFACE, settings, secret="provider-secret-key", transport=transport, forward_headers=("X-Recipe",)
    )
    headers = [*CLIENT_HEADERS, (b"x-recipe", b"r1"), (b"x-operator", b"o1"), (b"x-other", b"x1")]
    response = await post(app, body=messages(max_tokens=5), headers=headers)
    await upstream_of(app).transport.close()

    assert response.status == 200, response.body
    assert header_values(transport.request, "x-recipe") == ["r1"]
    assert header_values(transport.request, "x-operator") == ["o1"]
    assert header_values(transport.request, "x-other") == []
    assert_no_client_credentials_or_anthropic_headers(transport.request)


# ================================================================ passthrough_gateway

TEXT_SSE = (KONG / "anthropic" / "stream-captures" / "messages-stream-text.sse").read_bytes()
MESSAGE_BODY = (CORPUS / "001-default-text-json-2.1.329.json").read_bytes()
NONSTREAM_BODY = (CORPUS / "016-nonstream-fallback-after-stream-errors.json").read_bytes()
COUNT_BODY = (CORPUS / "019-count_tokens-11-tools.json").read_bytes()
ANSWER = (
    b'{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",'
    b'"content":[{"type":"text","text":"2"}],"stop_reason":"end_turn","stop_sequence":null,'
    b'"usage":{"input_tokens":26,"output_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}'
)


def test_the_passthrough_inputs():
    for body in (MESSAGE_BODY, NONSTREAM_BODY, COUNT_BODY):
        assert b"\n " in body  # pretty-printed: any re-encoding would show
    assert json.loads(MESSAGE_BODY)["stream"] is True
    assert json.loads(NONSTREAM_BODY)["stream"] is False
    assert set(json.loads(COUNT_BODY)) == {"model", "messages", "tools"}


RATE_LIMITED = (
    b'{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}'
)


def json_answer(status: int, body: bytes, *headers: tuple[str, str]) -> bytes:
    head = [("Content-Type", "application/json"), *headers, ("Content-Length", str(len(body)))]
    return response_head(status, head) + body


class Anthropic:
    """A loopback Anthropic: count_tokens -> JSON, messages -> JSON or the captured stream
    (in a few chunks, broken off at ``break_stream_at`` when set), HEAD -> 200; ``status``
    other than 200 answers an Anthropic rate-limit error."""

    def __init__(self, *, status: int = 200, break_stream_at: int | None = None) -> None:
        self.status = status
        self.break_stream_at = break_stream_at

    async def __call__(self, request: Request, reader, writer, connection) -> None:
        if request.method == "HEAD":
            writer.write(response_head(200, [("Content-Length", "0")]))
        elif self.status != 200:
            writer.write(json_answer(self.status, RATE_LIMITED, ("Retry-After", "17")))
        elif "/count_tokens" in request.target:
            writer.write(json_answer(200, b'{"input_tokens":4321}'))
        elif json.loads(request.body).get("stream"):
            headers = [
                ("Content-Type", "text/event-stream; charset=utf-8"),
                ("Cache-Control", "no-cache"),
                ("Request-Id", "req_0123"),
                ("Transfer-Encoding", "chunked"),
            ]
            writer.write(response_head(200, headers))
            stream = TEXT_SSE if self.break_stream_at is None else TEXT_SSE[: self.break_stream_at]
            for piece in split_at(stream, 7, 300, 301, 900):
                writer.write(chunked(piece))
                await writer.drain()
            if self.break_stream_at is not None:
                writer.transport.abort()
                raise ConnectionResetError
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(json_answer(200, ANSWER, ("Request-Id", "req_0456")))
        await writer.drain()


async def passthrough(tmp_path, requests, *, credential=None, server=None, **environ: str):
    """Run ``requests`` (kwargs of :func:`post`) through a passthrough gateway in front of a
    loopback Anthropic; returns (server requests, client responses, log lines)."""
    async with LoopbackServer(server or Anthropic()) as upstream:
        environ = {"AIMW_UPSTREAM_URL": upstream.url, "AIMW_LOG_PATH": str(tmp_path / "aimw.log"), **environ}
        settings = Settings.from_env(environ)
        app = passthrough_gateway(ANTHROPIC, settings, secret=credential)
        responses = [await post(app, **request) for request in requests]
        await upstream_of(app).transport.close()
    return upstream, upstream.requests, responses, read_log(tmp_path / "aimw.log")


def value(request: Request, name: str) -> list[str]:
    return request.values(name)


async def test_bodies_headers_and_query_pass_unchanged(tmp_path):
    server, [messages_request, count_request], [answer, count], lines = await passthrough(
        tmp_path,
        [
            {"body": NONSTREAM_BODY, "query": b"beta=true"},
            {"path": "/v1/messages/count_tokens", "body": COUNT_BODY, "query": b"beta=true"},
        ],
    )
    cases = (
        (messages_request, NONSTREAM_BODY, "/v1/messages"),
        (count_request, COUNT_BODY, "/v1/messages/count_tokens"),
    )
    for request, body, path in cases:
        assert request.method == "POST"
        assert request.target == path + "?beta=true"
        assert request.body == body  # byte for byte
        assert value(request, "content-length") == [str(len(body))]
        assert value(request, "x-api-key") == [CLIENT_KEY.decode()]  # no credential: the client's own key
        assert value(request, "authorization") == ["Bearer client-oauth-token-0002"]
        assert value(request, "anthropic-version") == ["2023-06-01"]
        assert value(request, "anthropic-beta") == ["claude-code-20250219,interleaved-thinking-2025-05-14"]
        assert value(request, "anthropic-dangerous-direct-browser-access") == ["true"]
        assert value(request, "user-agent") == ["claude-cli/2.1.329 (external, sdk-cli)"]
        assert value(request, "x-stainless-retry-count") == ["0"]
        assert value(request, "accept-encoding") == ["identity"]
        assert value(request, "host") == [f"127.0.0.1:{server.port}"]

    assert answer.status == 200 and answer.body == ANSWER and answer.complete
    assert answer.header(b"request-id") == b"req_0456"
    assert answer.header(b"content-type") == b"application/json"
    assert answer.header(b"x-aimw-llm-model") == b"anthropic/gw-test-model"
    assert count.status == 200 and count.body == b'{"input_tokens":4321}'

    message_line, count_line = lines
    assert message_line["upstream_uri"] == "/v1/messages?beta=true"
    assert message_line["request"]["uri"] == "/v1/messages?beta=true"
    meta = message_line["ai"]["proxy"]["meta"]
    assert meta["provider_name"] == "anthropic"
    assert meta["request_model"] == "gw-test-model"
    assert meta["response_model"] == "claude-sonnet-4-5-20250929"
    assert meta["request_mode"] == "oneshot"
    usage = message_line["ai"]["proxy"]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (26, 3)
    assert count_line["upstream_uri"] == "/v1/messages/count_tokens?beta=true"
    assert CLIENT_KEY.decode() not in (tmp_path / "aimw.log").read_text()


async def test_a_stream_passes_byte_for_byte(tmp_path):
    _, [request], [answer], [line] = await passthrough(tmp_path, [{"body": MESSAGE_BODY, "query": b"beta=true"}])
    assert request.body == MESSAGE_BODY
    assert answer.status == 200
    assert answer.body == TEXT_SSE
    assert answer.complete
    assert answer.header(b"content-type") == b"text/event-stream; charset=utf-8"
    assert answer.header(b"cache-control") == b"no-cache"
    assert answer.header(b"request-id") == b"req_0123"
    for message in answer.body_messages:
        assert message["body"] == b"" or message["body"].endswith(b"\n\n")
    meta = line["ai"]["proxy"]["meta"]
    assert meta["request_mode"] == "stream"  # inferred from the answer: nothing translated it
    assert meta["response_model"] == "claude-2.1"
    assert "error" not in meta
    usage = line["ai"]["proxy"]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (15, 9)


async def test_a_stream_broken_mid_event_ends_with_an_error_event(tmp_path):
    cut = TEXT_SSE.index(b"event: content_block_delta") + 40
    _, _, [answer], [line] = await passthrough(
        tmp_path, [{"body": MESSAGE_BODY}], server=Anthropic(break_stream_at=cut)
    )
    whole = TEXT_SSE[: TEXT_SSE.rfind(b"\n\n", 0, cut) + 2]
    assert answer.status == 200
    assert answer.complete
    assert answer.body.startswith(whole)
    [(name, data)] = sse_events(answer.body[len(whole) :])
    assert name == "error" and data["error"]["type"] == "api_error"
    assert anthropic_stream(answer.body).error == data["error"]  # the whole stream: a well-formed error ending
    assert line["ai"]["proxy"]["meta"]["error"].startswith("the upstream provider's answer broke off")
    assert line["ai"]["proxy"]["tried_targets"][0]["failure"] == line["ai"]["proxy"]["meta"]["error"]


async def test_settings_edit_messages_and_count_tokens_differently(tmp_path):
    _, [messages_request, count_request], [answer, _], [line, _] = await passthrough(
        tmp_path,
        [{"body": MESSAGE_BODY}, {"path": "/v1/messages/count_tokens", "body": COUNT_BODY}],
        AIMW_MODEL="claude-sonnet-4-5",
        AIMW_TEMPERATURE="0.5",
        AIMW_MAX_TOKENS="1000",
    )
    sent, original = json.loads(messages_request.body), json.loads(MESSAGE_BODY)
    assert sent["model"] == "claude-sonnet-4-5"
    assert sent["temperature"] == 0.5
    assert sent["max_tokens"] == 1000
    assert {k: v for k, v in sent.items() if k not in ("model", "temperature", "max_tokens")} == {
        k: v for k, v in original.items() if k not in ("model", "max_tokens")
    }
    assert value(messages_request, "content-length") == [str(len(messages_request.body))]

    counted = json.loads(count_request.body)
    assert counted == {**json.loads(COUNT_BODY), "model": "claude-sonnet-4-5"}  # no temperature, no max_tokens
    assert value(count_request, "content-length") == [str(len(count_request.body))]

    assert answer.header(b"x-aimw-llm-model") == b"anthropic/claude-sonnet-4-5"
    assert line["ai"]["proxy"]["meta"]["request_model"] == "claude-sonnet-4-5"


async def test_settings_that_change_nothing_keep_the_bytes(tmp_path):
    body = b'{ "model" : "claude-x",\n  "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100 }'
    _, [request], _, _ = await passthrough(tmp_path, [{"body": body}], AIMW_MAX_TOKENS="4096")
    assert request.body == body


async def test_a_credential_replaces_the_clients(tmp_path):
    _, requests, responses, _ = await passthrough(
        tmp_path,
        [{"body": NONSTREAM_BODY}, {"path": "/v1/messages/count_tokens", "body": COUNT_BODY}],
        credential="sk-ant-gateway-key-0003",
    )
    for request in requests:
        assert value(request, "x-api-key") == ["sk-ant-gateway-key-0003"]
        assert value(request, "authorization") == []
        assert value(request, "anthropic-version") == ["2023-06-01"]
    assert [r.status for r in responses] == [200, 200]
    assert "sk-ant-gateway-key-0003" not in (tmp_path / "aimw.log").read_text()


@pytest.mark.parametrize(
    "path, forwarded",
    [
        ("/anything/v1/messages", "/v1/messages"),
        ("/a/b/v1/messages/count_tokens", "/v1/messages/count_tokens"),
        ("/v1/messages", "/v1/messages"),
    ],
)
async def test_a_client_prefix_is_dropped(tmp_path, path, forwarded):
    body = COUNT_BODY if path.endswith("count_tokens") else NONSTREAM_BODY
    _, [request], [answer], [line] = await passthrough(
        tmp_path, [{"path": path, "body": body, "query": b"beta=true"}], AIMW_MODEL="claude-haiku-4-5"
    )
    assert request.target == forwarded + "?beta=true"
    assert json.loads(request.body)["model"] == "claude-haiku-4-5"  # the prefixed path is edited too
    assert answer.status == 200
    assert line["upstream_uri"] == forwarded + "?beta=true"
    assert line["request"]["uri"] == path + "?beta=true"


async def test_preflight_head_is_answered_here(tmp_path):
    """Issue 8, finding 2: nothing but the Messages API reaches Anthropic under the key."""
    _, requests, [answer], _ = await passthrough(tmp_path, [{"method": "HEAD", "path": "/", "body": b""}])
    assert requests == []
    assert answer.status == 200


async def test_provider_errors_pass_unchanged(tmp_path):
    _, _, [answer], [line] = await passthrough(tmp_path, [{"body": NONSTREAM_BODY}], server=Anthropic(status=429))
    assert answer.status == 429
    assert answer.header(b"retry-after") == b"17"
    assert answer.json() == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Number of requests has exceeded your rate limit"},
    }
    assert line["response"]["status"] == 429
    assert line["ai"]["proxy"]["meta"]["error"].startswith("rate_limit_error")


async def test_a_body_that_is_not_json_is_refused_before_anthropic(tmp_path):
    server_requests = None
    async with LoopbackServer(Anthropic()) as upstream:
        settings = Settings(upstream_url=upstream.url, log_path=str(tmp_path / "aimw.log"))
        app = passthrough_gateway(ANTHROPIC, settings, secret=None)
        answer = await post(app, body=b"model=claude")
        await upstream_of(app).transport.close()
        server_requests = upstream.requests
    assert answer.status == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert server_requests == []


def test_passthrough_stack_shape(tmp_path):
    app = passthrough_gateway(ANTHROPIC, Settings(log_path=str(tmp_path / "x.log")), secret=None)
    names = []
    while not isinstance(app, UpstreamApp):
        names.append(type(app).__name__)
        app = app.app
    assert names == [
        "MemoryReleaseMiddleware",
        "ObserveMiddleware",
        "ClientGuard",
        "AnthropicEndpoints",
        "StripFieldsMiddleware",
        "StripFieldsMiddleware",
        "TranslateMiddleware",
        "SSERewriteMiddleware",
    ]
    assert app.base_url == "https://api.anthropic.com"
    assert app.provider_name == "anthropic"

    app = passthrough_gateway(ANTHROPIC, Settings(log_path=str(tmp_path / "x.log")), secret="k")
    names = []
    while not isinstance(app, UpstreamApp):
        names.append(type(app).__name__)
        app = app.app
    assert names[-1] == "ProviderAuthMiddleware"


async def test_a_stream_over_a_slow_upstream_is_not_buffered(tmp_path):
    """The first events reach the client before the upstream has sent the rest."""
    first_event_end = TEXT_SSE.index(b"\n\n") + 2
    release = asyncio.Event()

    async def slow(request, reader, writer, connection):
        writer.write(response_head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
        writer.write(chunked(TEXT_SSE[: first_event_end + 10]))
        await writer.drain()
        await release.wait()
        writer.write(chunked(TEXT_SSE[first_event_end + 10 :]) + b"0\r\n\r\n")
        await writer.drain()

    class Send(RecordingSend):
        async def __call__(self, message):
            await super().__call__(message)
            if message.get("body"):
                release.set()

    async with LoopbackServer(slow) as upstream:
        settings = Settings(upstream_url=upstream.url, log_path=str(tmp_path / "aimw.log"))
        app = passthrough_gateway(ANTHROPIC, settings, secret=None)
        send = Send()
        with anyio.fail_after(GUARD):
            await app(http_scope(body=MESSAGE_BODY, headers=CLIENT_HEADERS), ScriptedReceive([MESSAGE_BODY]), send)
        await upstream_of(app).transport.close()
    assert send.body_messages[0]["body"] == TEXT_SSE[:first_event_end]
    assert send.body == TEXT_SSE
