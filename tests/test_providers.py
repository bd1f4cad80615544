"""providers: where each provider lives (URL, path, query, auth, log meta, token field,
thinking format), and what TranslateMiddleware sends to it."""

from __future__ import annotations

import dataclasses
import json

import pytest
from asgi_helpers import call, http_scope, sse_events

from aimw.exchange import exchange_of
from aimw.middleware.translate import TranslateMiddleware
from aimw.providers import Provider
from aimw.providers.anthropic import ANTHROPIC
from aimw.providers.azure import AUTH_HEADERS, DEFAULT_API_VERSION, azure
from aimw.providers.dashscope import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, REGION_HOSTS, dashscope
from aimw.providers.openai import DEFAULT_MODEL, max_tokens_field_for, openai
from aimw.translators import openai_chat as oc

# ---------------------------------------------------------------- Anthropic


def test_anthropic_constants():
    assert ANTHROPIC.name == "anthropic"
    assert ANTHROPIC.base_url == "https://api.anthropic.com"
    assert ANTHROPIC.path == "/v1/messages"
    assert ANTHROPIC.query == ""
    assert ANTHROPIC.wire_format == "anthropic"
    assert ANTHROPIC.auth_header == "x-api-key"
    assert ANTHROPIC.auth_prefix == ""  # the key as is, no "Bearer "
    assert ANTHROPIC.default_model.startswith("claude-")
    assert ANTHROPIC.thinking_format == "none"
    assert dict(ANTHROPIC.log_meta) == {}
    assert ANTHROPIC.upstream_path("claude-x") == ("/v1/messages", "")


def test_providers_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ANTHROPIC.base_url = "https://evil.example"  # type: ignore[misc]
    provider = azure("res", "dep")
    with pytest.raises(TypeError):
        provider.log_meta["azure_instance_id"] = "other"  # type: ignore[index]


# ---------------------------------------------------------------- Azure OpenAI


def test_azure_defaults():
    provider = azure("my-resource", "gpt-4o-prod")
    assert provider.name == "azure"
    assert provider.base_url == "https://my-resource.openai.azure.com"
    assert provider.path == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert provider.query == f"api-version={DEFAULT_API_VERSION}"
    assert DEFAULT_API_VERSION == "2025-01-01-preview"
    assert provider.wire_format == "openai_chat"
    assert provider.default_model == "gpt-4o-prod"
    assert (provider.auth_header, provider.auth_prefix) == ("api-key", "")
    assert provider.max_tokens_field == "max_tokens"
    assert provider.thinking_format == "none"
    assert dict(provider.log_meta) == {
        "azure_instance_id": "my-resource",
        "azure_deployment_id": "gpt-4o-prod",
        "azure_api_version": DEFAULT_API_VERSION,
    }


def test_azure_path_is_the_deployment_whatever_the_model():
    provider = azure("res", "dep-1", "2024-10-21")
    assert provider.upstream_path("some-other-model") == (
        "/openai/deployments/dep-1/chat/completions",
        "api-version=2024-10-21",
    )
    assert provider.log_meta["azure_api_version"] == "2024-10-21"


@pytest.mark.parametrize(
    "auth_header, header, prefix", [("api-key", "api-key", ""), ("authorization", "authorization", "Bearer ")]
)
def test_azure_auth_headers(auth_header, header, prefix):
    provider = azure("res", "dep", auth_header=auth_header)
    assert (provider.auth_header, provider.auth_prefix) == (header, prefix)
    assert AUTH_HEADERS[auth_header] == (header, prefix)


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_azure_max_tokens_field(field):
    assert azure("res", "o3-mini", max_tokens_field=field).max_tokens_field == field


def test_azure_unknown_auth_header_is_refused():
    with pytest.raises(KeyError):
        azure("res", "dep", auth_header="x-api-key")


# ---------------------------------------------------------------- DashScope


@pytest.mark.parametrize(
    "region, host", [("international", "https://dashscope-intl.aliyuncs.com"), ("china", "https://dashscope.aliyuncs.com")]
)
def test_dashscope_regions(region, host):
    provider = dashscope(region)
    assert provider.base_url == host == REGION_HOSTS[region]
    assert provider.name == "dashscope"
    assert provider.path == "/compatible-mode/v1/chat/completions"
    assert provider.query == ""
    assert provider.wire_format == "openai_chat"
    assert (provider.auth_header, provider.auth_prefix) == ("authorization", "Bearer ")
    assert provider.default_model == "qwen-plus"
    assert provider.max_tokens_field == "max_tokens"
    assert provider.thinking_format == "qwen"
    assert dict(provider.log_meta) == {}
    assert provider.upstream_path("qwen3-max") == ("/compatible-mode/v1/chat/completions", "")


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
    assert openai(model).max_tokens_field == field
    assert openai(model).default_model == model


def test_openai_defaults():
    provider = openai()
    assert DEFAULT_MODEL == "gpt-4.1"
    assert provider.name == "openai"
    assert provider.base_url == "https://api.openai.com"
    assert provider.path == "/v1/chat/completions"
    assert provider.query == ""
    assert provider.wire_format == "openai_chat"
    assert provider.default_model == DEFAULT_MODEL
    assert (provider.auth_header, provider.auth_prefix) == ("authorization", "Bearer ")
    assert provider.max_tokens_field == "max_tokens"
    assert provider.thinking_format == "none"
    assert dict(provider.log_meta) == {}


@pytest.mark.parametrize(
    "model, override", [("gpt-4.1", "max_completion_tokens"), ("o3", "max_tokens"), ("gpt-5", "max_completion_tokens")]
)
def test_openai_max_tokens_field_override(model, override):
    assert openai(model, max_tokens_field=override).max_tokens_field == override


# ---------------------------------------------------------------- what TranslateMiddleware sends each one

pytest_anyio = pytest.mark.anyio


class Recorder:
    """The app below TranslateMiddleware: records the translated request, answers ``answer``."""

    def __init__(self, answer: bytes, content_type: bytes = b"application/json") -> None:
        self.answer = answer
        self.content_type = content_type
        self.scope = None
        self.body = b""

    async def __call__(self, scope, receive, send) -> None:
        self.scope = scope
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", self.content_type)]})
        await send({"type": "http.response.body", "body": self.answer, "more_body": False})


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


async def translated(provider: Provider, model: str | None = None, **extra) -> tuple[Recorder, dict, dict]:
    recorder = Recorder(COMPLETION)
    app = TranslateMiddleware(recorder, provider=provider, model=model)
    body = messages_body(**extra)
    scope = http_scope(path="/anything/v1/messages", query=b"beta=true", body=body)
    response = await call(app, scope, [body])
    assert response.status == 200, response.body
    return recorder, json.loads(recorder.body), scope


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
    exchange = exchange_of(scope)
    assert exchange.provider_name == "azure"
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
    assert exchange_of(scope).provider_name == "dashscope"
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
    out, _ = oc.response_to_anthropic(body, "gpt-4o-prod")
    message = json.loads(out)
    assert message["stop_reason"] == "refusal"
    assert message["content"] == [{"type": "text", "text": "I started to answer"}]
    assert message["model"] == "gpt-4o-2024-08-06"


def test_azure_content_filter_with_no_content_is_a_refusal():
    body = b'{"choices":[{"index":0,"finish_reason":"content_filter","message":{"role":"assistant","content":null}}]}'
    message = json.loads(oc.response_to_anthropic(body, "dep")[0])
    assert message["stop_reason"] == "refusal"
    assert message["content"] == []


def test_azure_content_filter_in_a_stream_is_a_refusal():
    translator = oc.ChatStreamTranslator("dep")
    out = translator.feed(b'{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}')
    out += translator.feed(b'{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}')
    out += translator.feed(b"[DONE]")
    events = sse_events(out)
    assert [name for name, _ in events][-2:] == ["message_delta", "message_stop"]
    assert events[-2][1]["delta"]["stop_reason"] == "refusal"
