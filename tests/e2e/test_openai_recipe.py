"""The OpenAI recipe end to end: the Anthropic Python SDK -> Hypercorn serving
recipes.openai:app (a real process) -> a fake OpenAI Chat Completions server on loopback,
playing api.openai.com (``Authorization: Bearer <OPENAI_API_KEY>``; reasoning models take
only ``max_completion_tokens``) or a local OpenAI-compatible server (vLLM, Ollama) that
wants no credential at all.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tests.fakes.openai_chat_server import (
    CHAT_PATH,
    OPENAI,
    OPENAI_MODEL,
    FakeChatServer,
    ToolCall,
    error_reply,
    json_reply,
    openai_completion,
    text_stream,
    tool_call_stream,
)

from tests.e2e.harness import (
    CLIENT_KEY,
    GatewayProcess,
    assert_log_usage,
    checked_fake,
    exact_log_lines,
    running_gateway,
    sdk_client,
)
from tests.e2e.scenarios import WEATHER_TOOL, answer_tool_use, assert_count_tokens_is_local, assert_error, create_or_stream, only_request, rejected_key_error, request_error, stream_tool_use, tool_result
from tests.e2e.scenarios import assert_still_serving as assert_serving_after

pytestmark = pytest.mark.e2e

OPENAI_KEY = "sk-proj-" + "e2eT3stK3yQ9wX2vB7nM4pL6"
DEFAULT_MODEL = "gpt-4.1"  # the recipe's default
LOCAL_MODEL = "qwen3-coder"
USER = [{"role": "user", "content": "What is 1 + 1?"}]
REASONING_PROFILE = dataclasses.replace(OPENAI, max_tokens_field="max_completion_tokens")


@pytest.fixture(scope="module")
def openai_api() -> Iterator[FakeChatServer]:
    with FakeChatServer(OPENAI_KEY, OPENAI) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(openai_api, tmp_path_factory) -> Iterator[GatewayProcess]:
    env = {"OPENAI_API_KEY": OPENAI_KEY, "AIMW_UPSTREAM_URL": openai_api.url}
    with running_gateway("recipes.openai:app", env, tmp_path_factory, "openai-gateway") as gw:
        yield gw


@pytest.fixture(scope="module", params=["o3-mini", "gpt-5"])
def reasoning_gateway(openai_api, tmp_path_factory, request) -> Iterator[GatewayProcess]:
    env = {"OPENAI_API_KEY": OPENAI_KEY, "AIMW_UPSTREAM_URL": openai_api.url, "AIMW_MODEL": request.param}
    with running_gateway("recipes.openai:app", env, tmp_path_factory, f"openai-{request.param}-gateway") as gw:
        yield gw


@pytest.fixture(scope="module")
def local_gateway(openai_api, tmp_path_factory) -> Iterator[GatewayProcess]:
    """A local vLLM / Ollama: AIMW_UPSTREAM_URL and a model, no OPENAI_API_KEY."""
    env = {"AIMW_UPSTREAM_URL": openai_api.url, "AIMW_MODEL": LOCAL_MODEL}
    with running_gateway("recipes.openai:app", env, tmp_path_factory, "openai-local-gateway") as gw:
        yield gw


@pytest.fixture
def fake(openai_api, gateway, request) -> Iterator[FakeChatServer]:
    with checked_fake(openai_api, [gateway], request) as server:
        yield server


@pytest.fixture
def reasoning_fake(openai_api, reasoning_gateway, request) -> Iterator[FakeChatServer]:
    with checked_fake(openai_api, [reasoning_gateway], request) as server:
        server.profile = REASONING_PROFILE
        yield server


@pytest.fixture
def local_fake(openai_api, local_gateway, request) -> Iterator[FakeChatServer]:
    with checked_fake(openai_api, [local_gateway], request) as server:
        server.expected_token = None  # any credential header is a violation
        yield server


def assert_still_serving(gateway: GatewayProcess, fake: FakeChatServer, case: str) -> None:
    assert_serving_after(gateway, fake, case, json_reply(openai_completion("still serving", usage=(3, 2))), USER)


# ---------------------------------------------------------------- api.openai.com


def test_text_oneshot(client, fake, gateway, case):
    fake.enqueue(json_reply(openai_completion("The sum of 1 + 1 is 2.", usage=(25, 12))))

    message = client.messages.create(model="claude-x", max_tokens=256, system="Be brief.", messages=USER)

    assert message.content[0].text == "The sum of 1 + 1 is 2."
    assert message.stop_reason == "end_turn"
    assert message.model == OPENAI_MODEL
    assert (message.usage.input_tokens, message.usage.output_tokens) == (25, 12)
    sent = only_request(fake, case)
    assert (sent.path, sent.query) == (CHAT_PATH, "")
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert CLIENT_KEY not in json.dumps(sent.headers)
    assert sent.body["model"] == DEFAULT_MODEL
    assert sent.body["max_tokens"] == 256 and "max_completion_tokens" not in sent.body
    (line,) = exact_log_lines(gateway, case)
    meta = line["ai"]["proxy"]["meta"]
    assert (meta["provider_name"], meta["request_model"], meta["response_model"], meta["request_mode"]) == (
        "openai",
        DEFAULT_MODEL,
        OPENAI_MODEL,
        "oneshot",
    )
    assert line["upstream_uri"] == CHAT_PATH
    assert_log_usage(line, 25, 12)


def test_text_stream(client, fake, gateway, case):
    fake.enqueue(text_stream(("The ", "answer ", "is 2."), usage=(26, 5), cached_tokens=10, model=OPENAI_MODEL))

    with client.messages.stream(model="claude-x", max_tokens=256, messages=USER) as stream:
        texts = list(stream.text_stream)
        message = stream.get_final_message()

    assert texts == ["The ", "answer ", "is 2."]
    assert message.model == OPENAI_MODEL
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens, message.usage.output_tokens) == (16, 10, 5)
    sent = only_request(fake, case)
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    (line,) = exact_log_lines(gateway, case)
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "stream"
    assert_log_usage(line, 26, 5, cached=10)


def test_streamed_tool_use_then_tool_result(client, fake, gateway, case):
    call = ToolCall("call_oa1", "get_weather", {"city": "Lisbon"})
    fake.enqueue(tool_call_stream([call], pieces=4, usage=(110, 18), model=OPENAI_MODEL))

    partial, message = stream_tool_use(client, "Weather in Lisbon?", [WEATHER_TOOL])

    assert len(partial) == 4
    assert [(b.type, b.id, b.name, b.input) for b in message.content] == [("tool_use", "call_oa1", "get_weather", {"city": "Lisbon"})]
    assert message.stop_reason == "tool_use"

    fake.enqueue(text_stream(("Sunny.",), usage=(140, 2), model=OPENAI_MODEL))
    answer = answer_tool_use(client, "Weather in Lisbon?", message, tool_result("call_oa1", "sunny"), tools=[WEATHER_TOOL])
    assert answer.content[0].text == "Sunny."
    assistant, tool = fake.requests_for(case)[1].body["messages"][-2:]
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_oa1"]
    assert tool == {"role": "tool", "content": "sunny", "tool_call_id": "call_oa1"}
    first, second = exact_log_lines(gateway, case, 2)
    assert_log_usage(first, 110, 18)
    assert_log_usage(second, 140, 2)


def test_wrong_key_is_401(client, fake, gateway, case):
    error = rejected_key_error(client, fake, USER, wrong_key="sk-proj-someOtherKey000000", right_key=OPENAI_KEY)
    assert_error(error, 401, "authentication_error", "Incorrect API key provided")
    assert OPENAI_KEY not in error.response.text
    assert exact_log_lines(gateway, case)[0]["response"]["status"] == 401
    assert_still_serving(gateway, fake, case)


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_rate_limited_keeps_retry_after(client, fake, gateway, case, stream):
    body = {
        "error": {
            "message": "Rate limit reached for gpt-4.1 on requests per min (RPM): Limit 500, Used 500, Requested 1.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    fake.enqueue(error_reply(429, body, headers=(("retry-after", "3"), ("x-ratelimit-remaining-requests", "0"))))
    error = request_error(anthropic.RateLimitError, client, USER, stream)
    assert_error(error, 429, "rate_limit_error", "Rate limit reached for gpt-4.1")
    assert error.response.headers["retry-after"] == "3"
    assert_still_serving(gateway, fake, case)


@pytest.mark.parametrize(
    ("status", "client_status", "error_type"),
    [(500, 500, "api_error"), (503, 529, "overloaded_error")],
    ids=["500", "503"],
)
def test_server_errors(client, fake, gateway, case, status, client_status, error_type):
    body = {"error": {"message": "The server is overloaded or not ready yet.", "type": "server_error", "param": None, "code": None}}
    fake.enqueue(error_reply(status, body))
    error = request_error(anthropic.APIStatusError, client, USER)
    assert_error(error, client_status, error_type, "overloaded or not ready")
    assert exact_log_lines(gateway, case)[0]["response"]["status"] == client_status
    assert_still_serving(gateway, fake, case)


def test_count_tokens_is_local(client, fake, gateway, case):
    assert_count_tokens_is_local(client, fake, gateway, case, system="Be brief.", messages=USER, tools=[WEATHER_TOOL])


# ---------------------------------------------------------------- reasoning models


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_reasoning_model_gets_max_completion_tokens(reasoning_gateway, reasoning_fake, case, stream):
    model = reasoning_gateway.env["AIMW_MODEL"]
    reasoning_fake.enqueue(
        text_stream(("2",), usage=(20, 300), reasoning_tokens=290, model=model)
        if stream
        else json_reply(openai_completion("2", model=model, usage=(20, 300)))
    )

    message = create_or_stream(sdk_client(reasoning_gateway.url, case), stream, model="claude-x", max_tokens=32000, messages=USER)

    assert message.content[0].text == "2"
    sent = only_request(reasoning_fake, case)
    assert sent.body["model"] == model
    assert sent.body["max_completion_tokens"] == 32000 and "max_tokens" not in sent.body
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    (line,) = exact_log_lines(reasoning_gateway, case)
    assert line["ai"]["proxy"]["meta"]["request_model"] == model
    assert_log_usage(line, 20, 300)


# ---------------------------------------------------------------- a local OpenAI-compatible server


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_local_server_gets_no_credentials(local_gateway, local_fake, case, stream):
    """No OPENAI_API_KEY with AIMW_UPSTREAM_URL: nothing in Authorization (the fake rejects
    any credential header), and the client's key never leaves the gateway."""
    local_fake.enqueue(text_stream(("local",), usage=(9, 1), model=LOCAL_MODEL) if stream else json_reply(openai_completion("local", model=LOCAL_MODEL, usage=(9, 1))))

    response = httpx.post(
        local_gateway.url + "/v1/messages?beta=true",
        json={"model": "claude-x", "max_tokens": 64, "stream": stream, "messages": USER},
        headers={"x-api-key": CLIENT_KEY, "authorization": f"Bearer {CLIENT_KEY}", "anthropic-version": "2023-06-01", "x-e2e-case": case},
        trust_env=False,
    )

    assert response.status_code == 200
    assert "local" in response.text
    sent = only_request(local_fake, case)
    assert "authorization" not in sent.headers and "x-api-key" not in sent.headers
    assert CLIENT_KEY not in json.dumps(sent.headers) and CLIENT_KEY.encode() not in sent.raw_body
    assert sent.body["model"] == LOCAL_MODEL
    assert sent.body["max_tokens"] == 64 and "max_completion_tokens" not in sent.body
    (line,) = exact_log_lines(local_gateway, case)
    assert line["ai"]["proxy"]["meta"]["provider_name"] == "openai"
    assert_log_usage(line, 9, 1)
    assert CLIENT_KEY not in local_gateway.log_text()


def test_key_required_without_upstream_url(tmp_path_factory):
    """Pointed at api.openai.com, the recipe refuses to start without OPENAI_API_KEY, naming it."""
    gateway = GatewayProcess("recipes.openai:app", {}, tmp_path_factory.mktemp("openai-no-key"))
    with pytest.raises(AssertionError, match="exited"):
        gateway.start()
    assert "OPENAI_API_KEY" in gateway.output()
    assert not gateway.alive()
