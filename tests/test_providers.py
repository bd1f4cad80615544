"""providers: where each provider lives (URL, wire format and its options: path, query,
token field, thinking format; credential, log meta), and what TranslateMiddleware sends to it."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import anyio
import httpx
import pytest

from aimw.credentials import HeaderCredential, bearer
from aimw.exchange import exchange_of
from aimw.gateway import translated_gateway
from aimw.middleware.provider_auth import ProviderAuthMiddleware
from aimw.middleware.translate import TranslateMiddleware
from aimw.providers import Provider
from aimw.providers.anthropic import ANTHROPIC
from aimw.providers.azure import CREDENTIALS, DEFAULT_API_VERSION, azure
from aimw.providers.dashscope import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, REGION_HOSTS, dashscope
from aimw.providers.gemini import GEMINI
from aimw.providers.openai import DEFAULT_MODEL, max_tokens_field_for, openai
from aimw.providers.vertex import vertex
from aimw.settings import ConfigurationError, Settings
from aimw.translators import openai_chat as oc
from aimw.translators.anthropic import ANTHROPIC_MESSAGES
from aimw.translators.anthropic.messages import decode_request
from aimw.translators.wire import AnthropicCall, UpstreamRequest
from tests.asgi_helpers import InnerApp, RecordingSend, ScriptedReceive, anthropic_stream, call, http_scope

SECRET = "provider-secret-1"
pytest_anyio = pytest.mark.anyio
CALL_BODY = b'{"messages":[{"role":"user","content":"hi"}],"max_tokens":64}'


def credential_headers(provider: Provider, secret: str = SECRET) -> list[tuple[bytes, bytes]]:
    """The headers the provider's credential adds for ``secret`` (it adds no query)."""
    credential = provider.credential_for(secret)
    assert credential is not None
    headers, query = asyncio.run(credential.authorization())
    assert query == b""
    return headers


def chat_options(provider: Provider) -> oc.ChatOptions:
    """The options of a provider that speaks OpenAI Chat Completions."""
    assert isinstance(provider.wire_format, oc.OpenAIChat)
    assert provider.wire_format.name == "openai_chat"
    assert provider.wire_format.passthrough is False
    return provider.wire_format.options


def upstream_path(provider: Provider, model: str) -> tuple[str, bytes]:
    """Where the provider's wire format sends a client's ``POST /v1/messages?beta=true`` for ``model``."""
    request = None if provider.wire_format.passthrough else decode_request(CALL_BODY)
    call = AnthropicCall(CALL_BODY, request, model, False, "/v1/messages", b"beta=true")
    upstream = provider.wire_format.build_request(call)
    return upstream.path, upstream.query


# ---------------------------------------------------------------- Anthropic


def test_anthropic_constants():
    assert ANTHROPIC.name == "anthropic"
    assert ANTHROPIC.base_url == "https://api.anthropic.com"
    assert ANTHROPIC.wire_format is ANTHROPIC_MESSAGES
    assert ANTHROPIC.wire_format.name == "anthropic"
    assert ANTHROPIC.wire_format.passthrough is True
    assert credential_headers(ANTHROPIC) == [(b"x-api-key", SECRET.encode())]  # the key as is, no "Bearer "
    assert ANTHROPIC.default_model.startswith("claude-")
    assert dict(ANTHROPIC.log_meta) == {}
    # the client's path, query and body go on untouched (no thinking translation, ?beta=true kept)
    call = AnthropicCall(CALL_BODY, None, "claude-x", False, "/v1/messages", b"beta=true")
    assert ANTHROPIC.wire_format.build_request(call) == UpstreamRequest("/v1/messages", b"beta=true", CALL_BODY)


def test_no_secret_is_no_credential():
    for provider in (ANTHROPIC, azure("res", "dep"), dashscope(), openai()):
        assert provider.credential_for(None) is None


def test_credentials_do_not_show_their_secret():
    for provider in (ANTHROPIC, azure("res", "dep"), azure("res", "dep", auth_header="authorization"), openai()):
        assert SECRET not in repr(provider.credential_for(SECRET))


def test_providers_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ANTHROPIC.base_url = "https://evil.example"  # type: ignore[misc]
    provider = azure("res", "dep")
    with pytest.raises(TypeError):
        provider.log_meta["azure_instance_id"] = "other"  # type: ignore[index]
    with pytest.raises(AttributeError):
        chat_options(provider).path = "/elsewhere"  # type: ignore[misc]


# ---------------------------------------------------------------- Azure OpenAI


def test_azure_defaults():
    provider = azure("my-resource", "gpt-4o-prod")
    assert provider.name == "azure"
    assert provider.base_url == "https://my-resource.openai.azure.com"
    assert chat_options(provider) == oc.ChatOptions(
        path="/openai/deployments/gpt-4o-prod/chat/completions",
        query=f"api-version={DEFAULT_API_VERSION}",
        max_tokens_field="max_tokens",
        thinking="none",
    )
    assert DEFAULT_API_VERSION == "2025-01-01-preview"
    assert provider.default_model == "gpt-4o-prod"
    assert credential_headers(provider) == [(b"api-key", SECRET.encode())]
    assert dict(provider.log_meta) == {
        "azure_instance_id": "my-resource",
        "azure_deployment_id": "gpt-4o-prod",
        "azure_api_version": DEFAULT_API_VERSION,
    }


def test_azure_path_is_the_deployment_whatever_the_model():
    provider = azure("res", "dep-1", "2024-10-21")
    assert upstream_path(provider, "some-other-model") == (
        "/openai/deployments/dep-1/chat/completions",
        b"api-version=2024-10-21",
    )
    assert provider.log_meta["azure_api_version"] == "2024-10-21"


@pytest.mark.parametrize(
    "auth_header, header, prefix", [("api-key", "api-key", ""), ("authorization", "authorization", "Bearer ")]
)
def test_azure_auth_headers(auth_header, header, prefix):
    provider = azure("res", "dep", auth_header=auth_header)
    assert credential_headers(provider) == [(header.encode(), (prefix + SECRET).encode())]
    credential = CREDENTIALS[auth_header](SECRET)
    assert isinstance(credential, HeaderCredential)
    assert credential.header == header


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_azure_max_tokens_field(field):
    assert chat_options(azure("res", "o3-mini", max_tokens_field=field)).max_tokens_field == field


def test_azure_unknown_auth_header_is_refused():
    with pytest.raises(KeyError):
        azure("res", "dep", auth_header="x-api-key")


# ---------------------------------------------------------------- DashScope


@pytest.mark.parametrize(
    "region, host",
    [("international", "https://dashscope-intl.aliyuncs.com"), ("china", "https://dashscope.aliyuncs.com")],
)
def test_dashscope_regions(region, host):
    provider = dashscope(region)
    assert provider.base_url == host == REGION_HOSTS[region]
    assert provider.name == "dashscope"
    assert chat_options(provider) == oc.ChatOptions(
        path="/compatible-mode/v1/chat/completions", query="", max_tokens_field="max_tokens", thinking="qwen"
    )
    assert credential_headers(provider) == [(b"authorization", f"Bearer {SECRET}".encode())]
    assert provider.default_model == "qwen-plus"
    assert dict(provider.log_meta) == {}
    assert upstream_path(provider, "qwen3-max") == ("/compatible-mode/v1/chat/completions", b"")


def test_dashscope_default_region_and_constants():
    assert dashscope() == dashscope("international")
    assert set(REGION_HOSTS) == {"international", "china"}
    assert DEFAULT_MAX_TOKENS == 8192 and isinstance(DEFAULT_MAX_TOKENS, int)
    assert DEFAULT_TEMPERATURE == 1.0


@pytest.mark.parametrize("region", ["singapore", "China", "", "intl"])
def test_dashscope_unknown_region_is_refused(region):
    with pytest.raises(KeyError):
        dashscope(region)


# ---------------------------------------------------------------- OpenAI


@pytest.mark.parametrize(
    "model, field",
    [
        ("o1", "max_completion_tokens"),
        ("o1-mini", "max_completion_tokens"),
        ("o3", "max_completion_tokens"),
        ("o3-mini-2025-01-31", "max_completion_tokens"),
        ("o4-mini", "max_completion_tokens"),
        ("gpt-5", "max_completion_tokens"),
        ("gpt-5-mini", "max_completion_tokens"),
        ("gpt-4.1", "max_tokens"),
        ("gpt-4o-mini", "max_tokens"),
        ("gpt-4", "max_tokens"),
        ("llama3.1:8b", "max_tokens"),
        ("meta-llama/Llama-3.3-70B-Instruct", "max_tokens"),
        ("qwen3-coder", "max_tokens"),
    ],
)
def test_max_tokens_field_for(model, field):
    assert max_tokens_field_for(model) == field
    assert chat_options(openai(model)).max_tokens_field == field
    assert openai(model).default_model == model


def test_openai_defaults():
    provider = openai()
    assert DEFAULT_MODEL == "gpt-4.1"
    assert provider.name == "openai"
    assert provider.base_url == "https://api.openai.com"
    assert chat_options(provider) == oc.ChatOptions(
        path="/v1/chat/completions", query="", max_tokens_field="max_tokens", thinking="none"
    )
    assert provider.default_model == DEFAULT_MODEL
    assert credential_headers(provider) == [(b"authorization", f"Bearer {SECRET}".encode())]
    assert dict(provider.log_meta) == {}


@pytest.mark.parametrize(
    "model, override", [("gpt-4.1", "max_completion_tokens"), ("o3", "max_tokens"), ("gpt-5", "max_completion_tokens")]
)
def test_openai_max_tokens_field_override(model, override):
    assert chat_options(openai(model, max_tokens_field=override)).max_tokens_field == override


# ---------------------------------------------------------------- Google: the Gemini API and Vertex AI

VERTEX_HOST = "us-central1-aiplatform.googleapis.com"
VERTEX_MODEL = f"https://{VERTEX_HOST}/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash"
GEMINI_MODEL = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
GENERATED = json.dumps(
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "2"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 1, "totalTokenCount": 9},
        "modelVersion": "gemini-2.5-flash",
    }
).encode()


async def sent_urls(provider: Provider, tmp_path, *, stream: bool, credential) -> list[str]:
    """The URLs translated_gateway sends a client's ``POST /v1/messages?beta=true`` to for
    ``provider``, with no AIMW_UPSTREAM_URL: the real service's (an httpx transport records
    them instead of the network)."""
    settings = Settings.from_env({"AIMW_LOG_PATH": str(tmp_path / "aimw.log")})
    assert settings.upstream_url is None
    urls: list[str] = []

    def google(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        if stream:
            return httpx.Response(
                200,
                headers={"content-type": "text/event-stream"},
                stream=httpx.ByteStream(b"data: " + GENERATED + b"\r\n\r\n"),
            )
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=httpx.ByteStream(GENERATED))

    app = translated_gateway(provider, settings, credential=credential, transport=httpx.MockTransport(google))
    body = json.dumps(
        {"model": "claude-x", "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "1 + 1?"}]}
    ).encode()
    receive = ScriptedReceive([body])
    send = RecordingSend()
    with anyio.fail_after(10):
        await app(
            http_scope(query=b"beta=true", headers=[(b"content-type", b"application/json")], body=body), receive, send
        )
    assert send.status == 200, send.body
    return urls


def test_google_base_urls():
    assert GEMINI.base_url == "https://generativelanguage.googleapis.com"
    assert vertex("p", "us-central1", VERTEX_HOST).base_url == f"https://{VERTEX_HOST}"


@pytest_anyio
@pytest.mark.parametrize(
    "stream, url",
    [(False, f"{VERTEX_MODEL}:generateContent"), (True, f"{VERTEX_MODEL}:streamGenerateContent?alt=sse")],
)
async def test_vertex_ai_real_url(tmp_path, stream, url):
    """Vertex AI REST reference, "projects.locations.publishers.models.generateContent"."""
    provider = vertex("p", "us-central1", VERTEX_HOST)
    assert await sent_urls(provider, tmp_path, stream=stream, credential=bearer("ya29.token")) == [url]


@pytest_anyio
@pytest.mark.parametrize(
    "stream, url",
    [(False, f"{GEMINI_MODEL}:generateContent"), (True, f"{GEMINI_MODEL}:streamGenerateContent?alt=sse")],
)
async def test_gemini_api_real_url(tmp_path, stream, url):
    """Gemini API reference, "Generating content" (the key in x-goog-api-key, never in the URL)."""
    credential = GEMINI.credential_for("AIzaSyTestKey0123456789")
    assert await sent_urls(GEMINI, tmp_path, stream=stream, credential=credential) == [url]


@pytest.mark.parametrize(
    "endpoint, base_url",
    [
        (VERTEX_HOST, f"https://{VERTEX_HOST}"),
        (f"https://{VERTEX_HOST}", f"https://{VERTEX_HOST}"),
        (f"https://{VERTEX_HOST}/", f"https://{VERTEX_HOST}"),
        (f" HTTPS://{VERTEX_HOST}/ ", f"https://{VERTEX_HOST}"),
        (f"{VERTEX_HOST}:443", f"https://{VERTEX_HOST}:443"),
        ("https://vertex.internal.example:8443", "https://vertex.internal.example:8443"),
    ],
)
def test_vertex_endpoint_forms(endpoint, base_url):
    """GEMINI_API_ENDPOINT: a host, or https:// and the host, a port, a trailing slash."""
    assert vertex("p", "us-central1", endpoint).base_url == base_url


@pytest.mark.parametrize(
    "endpoint, words",
    [
        ("http://localhost:8080", "https://host"),  # never turned into https silently: AIMW_UPSTREAM_URL is for that
        ("http://us-central1-aiplatform.googleapis.com", "https://host"),
        ("ftp://aiplatform.googleapis.com", "https://host"),
        ("aiplatform.googleapis.com/v1", "no path"),  # would be /v1/v1/projects/...
        ("https://aiplatform.googleapis.com/v1/", "no path"),
        ("https://aiplatform.googleapis.com/v1/projects/p/locations/l", "no path"),
        ("aiplatform.googleapis.com?alt=sse", "no path"),
        ("aiplatform.googleapis.com:99999", "host[:port]"),
        ("aiplatform.googleapis.com:https", "host[:port]"),
        ("https://", "host[:port]"),
        ("", "host[:port]"),
    ],
)
def test_vertex_endpoint_with_a_path_or_another_scheme_is_refused(endpoint, words):
    with pytest.raises(ConfigurationError) as refused:
        vertex("p", "us-central1", endpoint)
    message = str(refused.value)
    assert message.startswith("aimw: GEMINI_API_ENDPOINT ") and words in message


def test_vertex_endpoint_with_a_password_is_refused_without_showing_it():
    with pytest.raises(ConfigurationError) as refused:
        vertex("p", "us-central1", "http://user:pa55word@aiplatform.googleapis.com")
    assert "GEMINI_API_ENDPOINT" in str(refused.value) and "pa55word" not in str(refused.value)


# ---------------------------------------------------------------- what TranslateMiddleware sends each one

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "model": "served-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "2"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
    }
).encode()


def messages_body(**extra) -> bytes:
    """A Messages request as TranslateMiddleware gets it in a gateway: the client's model
    already dropped by StripFieldsMiddleware."""
    body = {
        "messages": [{"role": "user", "content": "What is 1 + 1?"}],
        "max_tokens": 512,
        "thinking": {"type": "enabled", "budget_tokens": 256},
        **extra,
    }
    return json.dumps(body).encode()


async def translated(provider: Provider, model: str | None = None, **extra) -> tuple[InnerApp, dict, dict]:
    """Translate > ProviderAuth > the fake inner app, wired from ``provider`` as translated_gateway wires them."""
    recorder = InnerApp(body=COMPLETION)
    app = TranslateMiddleware(
        ProviderAuthMiddleware(recorder, credential=provider.credential_for(SECRET)),
        wire_format=provider.wire_format,
        default_model=provider.default_model,
        model=model,
        log_meta=dict(provider.log_meta),
    )
    body = messages_body(**extra)
    scope = http_scope(path="/anything/v1/messages", query=b"beta=true", body=body)
    response = await call(app, scope, [body])
    assert response.status == 200, response.body
    return recorder, json.loads(recorder.body), scope


def header(recorder: InnerApp, name: bytes) -> bytes | None:
    values = [value for key, value in recorder.scope["headers"] if key == name]
    assert len(values) <= 1, values
    return values[0] if values else None


@pytest_anyio
@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_azure_request_goes_to_the_deployment(field):
    provider = azure("res", "gpt-4o-prod", "2024-10-21", max_tokens_field=field)
    recorder, chat, scope = await translated(provider)
    assert recorder.scope["path"] == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert recorder.scope["raw_path"] == b"/openai/deployments/gpt-4o-prod/chat/completions"
    assert recorder.scope["query_string"] == b"api-version=2024-10-21"  # ?beta=true is not forwarded
    assert chat[field] == 512
    other = "max_completion_tokens" if field == "max_tokens" else "max_tokens"
    assert other not in chat
    assert chat["model"] == "gpt-4o-prod"  # the deployment is the default model
    assert "enable_thinking" not in chat and "thinking" not in chat
    assert header(recorder, b"api-key") == SECRET.encode()
    assert header(recorder, b"authorization") is None
    exchange = exchange_of(scope)
    assert exchange.request_model == "gpt-4o-prod"
    assert exchange.log_meta == {
        "azure_instance_id": "res",
        "azure_deployment_id": "gpt-4o-prod",
        "azure_api_version": "2024-10-21",
    }


@pytest_anyio
async def test_dashscope_request_carries_qwen_thinking():
    recorder, chat, scope = await translated(dashscope("china"), model="qwen3-max", stream=True)
    assert recorder.scope["path"] == "/compatible-mode/v1/chat/completions"
    assert recorder.scope["query_string"] == b""
    assert chat["model"] == "qwen3-max"
    assert chat["enable_thinking"] is True
    assert chat["thinking_budget"] == 256
    assert "thinking" not in chat
    assert header(recorder, b"authorization") == f"Bearer {SECRET}".encode()
    assert exchange_of(scope).request_model == "qwen3-max"
    assert exchange_of(scope).log_meta == {}


@pytest_anyio
@pytest.mark.parametrize("model, field", [("gpt-5", "max_completion_tokens"), ("gpt-4.1", "max_tokens")])
async def test_openai_request_uses_the_models_token_field(model, field):
    recorder, chat, _ = await translated(openai(model))
    assert recorder.scope["path"] == "/v1/chat/completions"
    assert chat["model"] == model
    assert chat[field] == 512
    assert set(chat) & {"max_tokens", "max_completion_tokens"} == {field}
    assert "enable_thinking" not in chat
    assert header(recorder, b"authorization") == f"Bearer {SECRET}".encode()


# ---------------------------------------------------------------- Azure's content filter finish_reason


def test_azure_content_filter_finish_reason_is_a_refusal():
    # Azure OpenAI docs, "Content filtering": a filtered completion keeps what came before
    # and says finish_reason "content_filter", with the per-category results beside it.
    body = json.dumps(
        {
            "id": "chatcmpl-9",
            "object": "chat.completion",
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "content_filter",
                    "message": {"role": "assistant", "content": "I started to answer"},
                    "content_filter_results": {"violence": {"filtered": True, "severity": "medium"}},
                }
            ],
            "usage": {"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24},
        }
    ).encode()
    message = json.loads(oc.response_to_anthropic(body, "gpt-4o-prod").body)
    assert message["stop_reason"] == "refusal"
    assert message["content"] == [{"type": "text", "text": "I started to answer"}]
    assert message["model"] == "gpt-4o-2024-08-06"


def test_azure_content_filter_with_no_content_is_a_refusal():
    body = b'{"choices":[{"index":0,"finish_reason":"content_filter","message":{"role":"assistant","content":null}}]}'
    message = json.loads(oc.response_to_anthropic(body, "dep").body)
    assert message["stop_reason"] == "refusal"
    assert message["content"] == []


def test_azure_content_filter_in_a_stream_is_a_refusal():
    translator = oc.ChatStreamTranslator("dep")
    out = translator.feed(
        b'data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'
    )
    out += translator.feed(b'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}\n\n')
    out += translator.feed(b"data: [DONE]\n\n")
    stream = anthropic_stream(out)
    assert stream.names[-2:] == ["message_delta", "message_stop"]
    assert stream.stop_reason == "refusal"
