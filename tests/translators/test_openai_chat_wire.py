"""OpenAIChat, the WireFormat object: build_request takes path, query and body from its
ChatOptions (never the client's path or query); the answer, error and stream entry points
are the module's translators."""

from __future__ import annotations

import json

import pytest

from aimw.errors import GatewayError
from aimw.translators import openai_chat as oc
from aimw.translators.anthropic.messages import decode_request
from aimw.translators.wire import AnthropicCall, UpstreamRequest

MODEL = "org/upstream-model"
BODY = json.dumps(
    {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "thinking": {"type": "enabled", "budget_tokens": 512},
        "stream": True,
        "messages": [{"role": "user", "content": "What is 1 + 1?"}],
    }
).encode()


def call(body: bytes = BODY, model: str = MODEL, *, path: str = "/client/prefix/v1/messages") -> AnthropicCall:
    request = decode_request(body)
    return AnthropicCall(body, request, model, request.stream, path, b"beta=true")


def test_the_format_says_what_it_is() -> None:
    wire = oc.OpenAIChat()
    assert (wire.name, wire.passthrough, wire.parses_request) == ("openai_chat", False, True)
    assert wire.options == oc.ChatOptions()
    assert "/v1/chat/completions" in repr(wire)


def test_default_options() -> None:
    upstream = oc.OpenAIChat().build_request(call())
    assert isinstance(upstream, UpstreamRequest)
    assert upstream.path == "/v1/chat/completions"
    assert upstream.query == b""  # the client's ?beta=true is Anthropic's, not forwarded
    assert upstream.body == oc.request_from_anthropic(decode_request(BODY), MODEL)
    chat = json.loads(upstream.body)
    assert chat["model"] == MODEL  # the call's model, not the client's
    assert chat["max_tokens"] == 1024 and "max_completion_tokens" not in chat
    assert chat["stream"] is True
    assert "enable_thinking" not in chat and "thinking" not in chat


def test_path_query_and_fields_come_from_the_options() -> None:
    options = oc.ChatOptions(
        path="/openai/deployments/dep-1/chat/completions",
        query="api-version=2024-10-21",
        max_tokens_field="max_completion_tokens",
    )
    upstream = oc.OpenAIChat(options).build_request(call())
    assert upstream.path == "/openai/deployments/dep-1/chat/completions"
    assert upstream.query == b"api-version=2024-10-21"
    assert upstream.body == oc.request_from_anthropic(
        decode_request(BODY), MODEL, max_tokens_field="max_completion_tokens"
    )
    chat = json.loads(upstream.body)
    assert chat["max_completion_tokens"] == 1024 and "max_tokens" not in chat


def test_qwen_thinking_option() -> None:
    upstream = oc.OpenAIChat(oc.ChatOptions(thinking="qwen")).build_request(call())
    assert upstream.body == oc.request_from_anthropic(decode_request(BODY), MODEL, thinking_format="qwen")
    chat = json.loads(upstream.body)
    assert (chat["enable_thinking"], chat["thinking_budget"]) == (True, 512)


@pytest.mark.parametrize("path", ["/v1/messages", "/anything/v1/messages", "/a/b/v1/messages"])
def test_the_clients_path_never_reaches_the_provider(path: str) -> None:
    wire = oc.OpenAIChat(oc.ChatOptions(path="/compatible-mode/v1/chat/completions"))
    assert wire.build_request(call(path=path)).path == "/compatible-mode/v1/chat/completions"


def test_the_model_is_the_calls_whatever_the_options() -> None:
    wire = oc.OpenAIChat(oc.ChatOptions(path="/openai/deployments/dep-1/chat/completions"))
    assert json.loads(wire.build_request(call(model="other-model")).body)["model"] == "other-model"


def test_an_unparsed_call_is_an_internal_error() -> None:
    unparsed = AnthropicCall(BODY, None, MODEL, True, "/v1/messages", b"")
    with pytest.raises(GatewayError) as info:
        oc.OpenAIChat().build_request(unparsed)
    assert info.value.status == 500
    assert info.value.error_type == "api_error"


def test_content_the_format_cannot_carry_is_a_400() -> None:
    body = json.dumps(
        {
            "max_tokens": 16,
            "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}],
        }
    ).encode()
    with pytest.raises(GatewayError) as info:
        oc.OpenAIChat().build_request(call(body))
    assert info.value.status == 400


def test_answer_error_and_stream_entry_points() -> None:
    wire = oc.OpenAIChat()
    completion = b'{"model":"served","choices":[{"message":{"content":"2"},"finish_reason":"stop"}]}'
    answer = wire.response_to_anthropic(completion, MODEL)
    assert json.loads(answer.body)["content"] == [{"type": "text", "text": "2"}]
    assert answer.model == "served"
    status, body = wire.error_to_anthropic(429, b'{"error":{"message":"slow down","type":"rate_limit"}}')
    assert status == 429
    assert json.loads(body)["error"]["type"] == "rate_limit_error"
    stream = wire.new_stream(MODEL)
    assert isinstance(stream, oc.ChatStreamTranslator)
    assert stream.rewrites_headers is True
    out = stream.feed(b'data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n') + stream.finish()
    assert b'"model":"org/upstream-model"' in out  # the provider named none: the requested model
    assert stream.done
