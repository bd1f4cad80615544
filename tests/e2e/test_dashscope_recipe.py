"""The DashScope (Alibaba Cloud Model Studio, Qwen) recipe end to end: the Anthropic Python
SDK -> Hypercorn serving recipes.dashscope:app (a real process) -> a fake DashScope
compatible-mode endpoint on loopback.

The fake (tests/fakes/openai_chat_server.py, DASHSCOPE profile) checks ``POST
/compatible-mode/v1/chat/completions``, ``Authorization: Bearer <key>`` and a valid body,
where DashScope's ``enable_thinking`` / ``thinking_budget`` and an assistant's
``reasoning_content`` are allowed. It streams as DashScope does (``"usage": null`` on every
chunk, ``reasoning_content`` deltas, tool call fragments with an empty ``id``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import pytest

from tests.fakes.openai_chat_server import (
    DASHSCOPE,
    DASHSCOPE_MODEL,
    DASHSCOPE_PATH,
    FakeChatServer,
    ToolCall,
    dashscope_completion,
    dashscope_rate_limited,
    dashscope_stream,
    dashscope_tool_call_stream,
    error_reply,
    json_reply,
)

from tests.e2e.harness import CLIENT_KEY, GatewayProcess, assert_log_usage, checked_fake, exact_log_lines, running_gateway, sdk_client
from tests.e2e.scenarios import WEATHER_TOOL, answer_tool_use, assert_count_tokens_is_local, assert_error, only_request, rejected_key_error, request_error, stream_tool_use, tool_result
from tests.e2e.scenarios import assert_still_serving as assert_serving_after

pytestmark = pytest.mark.e2e

DASHSCOPE_KEY = "sk-" + "4c1e9a7b2d6f40e8a3b5c7d9e1f2a3b4"
DEFAULT_MAX_TOKENS = 8192  # Kong's Claude Code guide for DashScope
DEFAULT_TEMPERATURE = 1.0
# the tuned gateway's settings
TUNED_MODEL = "qwen3-max"
TUNED_MAX_TOKENS = 1000
TUNED_TEMPERATURE = 0.3
USER = [{"role": "user", "content": "What is 1 + 1?"}]


@pytest.fixture(scope="module")
def dashscope_api() -> Iterator[FakeChatServer]:
    with FakeChatServer(DASHSCOPE_KEY, DASHSCOPE) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(dashscope_api, tmp_path_factory) -> Iterator[GatewayProcess]:
    env = {"DASHSCOPE_API_KEY": DASHSCOPE_KEY, "AIMW_UPSTREAM_URL": dashscope_api.url}
    with running_gateway("recipes.dashscope:app", env, tmp_path_factory, "dashscope-gateway") as gw:
        yield gw


@pytest.fixture(scope="module")
def tuned_gateway(dashscope_api, tmp_path_factory) -> Iterator[GatewayProcess]:
    env = {
        "DASHSCOPE_API_KEY": DASHSCOPE_KEY,
        "AIMW_UPSTREAM_URL": dashscope_api.url,
        "AIMW_MODEL": TUNED_MODEL,
        "AIMW_MAX_TOKENS": str(TUNED_MAX_TOKENS),
        "AIMW_TEMPERATURE": str(TUNED_TEMPERATURE),
    }
    with running_gateway("recipes.dashscope:app", env, tmp_path_factory, "dashscope-tuned-gateway") as gw:
        yield gw


@pytest.fixture
def fake(dashscope_api, gateway, request) -> Iterator[FakeChatServer]:
    with checked_fake(dashscope_api, [gateway], request) as server:
        yield server


@pytest.fixture
def tuned_fake(dashscope_api, tuned_gateway, request) -> Iterator[FakeChatServer]:
    with checked_fake(dashscope_api, [tuned_gateway], request) as server:
        yield server


def assert_still_serving(gateway: GatewayProcess, fake: FakeChatServer, case: str) -> None:
    assert_serving_after(gateway, fake, case, json_reply(dashscope_completion("still serving", usage=(3, 2))), USER)


# ---------------------------------------------------------------- text, defaults


def test_text_oneshot(client, fake, gateway, case):
    fake.enqueue(json_reply(dashscope_completion("1 + 1 = 2.", usage=(22, 8))))

    message = client.messages.create(model="claude-x", max_tokens=256, system="Be brief.", messages=USER)

    assert [(b.type, b.text) for b in message.content] == [("text", "1 + 1 = 2.")]
    assert message.stop_reason == "end_turn"
    assert message.model == DASHSCOPE_MODEL
    assert (message.usage.input_tokens, message.usage.output_tokens, message.usage.cache_read_input_tokens) == (22, 8, 0)
    sent = only_request(fake, case)
    assert sent.path == DASHSCOPE_PATH
    assert sent.headers["authorization"] == f"Bearer {DASHSCOPE_KEY}"
    assert CLIENT_KEY not in json.dumps(sent.headers)
    assert sent.body["model"] == "qwen-plus"
    assert sent.body["max_tokens"] == 256  # under the cap: kept
    assert sent.body["temperature"] == DEFAULT_TEMPERATURE
    assert sent.body["enable_thinking"] is False and "thinking_budget" not in sent.body  # never thinking off-stream
    (line,) = exact_log_lines(gateway, case)
    meta = line["ai"]["proxy"]["meta"]
    assert (meta["provider_name"], meta["request_model"], meta["response_model"], meta["request_mode"]) == (
        "dashscope",
        "qwen-plus",
        DASHSCOPE_MODEL,
        "oneshot",
    )
    assert line["upstream_uri"] == DASHSCOPE_PATH
    assert_log_usage(line, 22, 8)


def test_text_stream_caps_max_tokens_and_sets_temperature(client, fake, gateway, case):
    fake.enqueue(dashscope_stream(("1 + 1 ", "= 2."), usage=(25, 7)))

    with client.messages.stream(model="claude-x", max_tokens=32000, messages=USER, extra_body={"temperature": 0.2}) as stream:
        texts = list(stream.text_stream)
        message = stream.get_final_message()

    assert texts == ["1 + 1 ", "= 2."]
    assert [block.type for block in message.content] == ["text"]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (25, 7)
    sent = only_request(fake, case)
    assert sent.body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert sent.body["temperature"] == DEFAULT_TEMPERATURE
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    (line,) = exact_log_lines(gateway, case)
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "stream"
    assert_log_usage(line, 25, 7)


def test_settings_override_the_defaults(tuned_gateway, tuned_fake, case):
    """AIMW_MODEL, AIMW_MAX_TOKENS and AIMW_TEMPERATURE replace the recipe's defaults."""
    tuned_fake.enqueue(dashscope_stream(("ok",), model=TUNED_MODEL), json_reply(dashscope_completion("ok", model=TUNED_MODEL)))
    client = sdk_client(tuned_gateway.url, case)
    with client.messages.stream(model="claude-x", max_tokens=32000, messages=USER, extra_body={"temperature": 0.9}) as stream:
        assert stream.get_final_message().content[0].text == "ok"
    assert client.messages.create(model="claude-x", max_tokens=500, messages=USER).content[0].text == "ok"

    streamed, oneshot = (request.body for request in tuned_fake.requests_for(case))
    assert (streamed["model"], streamed["max_tokens"], streamed["temperature"]) == (TUNED_MODEL, TUNED_MAX_TOKENS, TUNED_TEMPERATURE)
    assert (oneshot["model"], oneshot["max_tokens"], oneshot["temperature"]) == (TUNED_MODEL, 500, TUNED_TEMPERATURE)
    lines = exact_log_lines(tuned_gateway, case, 2)
    assert [line["ai"]["proxy"]["meta"]["request_model"] for line in lines] == [TUNED_MODEL] * 2


# ---------------------------------------------------------------- thinking


def test_enabled_thinking_streams_a_thinking_block(client, fake, gateway, case):
    fake.enqueue(dashscope_stream(("It is ", "2."), reasoning=("The user ", "asks 1 + 1; ", "that is 2."), usage=(30, 120), reasoning_tokens=100))

    with client.messages.stream(
        model="claude-x", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048}, messages=USER
    ) as stream:
        thinking = [e.delta.thinking for e in stream if e.type == "content_block_delta" and e.delta.type == "thinking_delta"]
        message = stream.get_final_message()

    assert thinking == ["The user ", "asks 1 + 1; ", "that is 2."]  # streamed as they came
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "The user asks 1 + 1; that is 2."
    assert message.content[1].text == "It is 2."
    sent = only_request(fake, case)
    assert sent.body["enable_thinking"] is True
    assert sent.body["thinking_budget"] == 2048
    assert "thinking" not in sent.body
    (line,) = exact_log_lines(gateway, case)
    assert_log_usage(line, 30, 120)
    assert line["ai"]["proxy"]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 100


def test_thinking_budget_within_the_capped_max_tokens(client, fake, case):
    """max_tokens 16000 is capped to 8192 before translation; the budget follows the cap."""
    fake.enqueue(dashscope_stream(("2",), reasoning=("1 + 1.",)))
    with client.messages.stream(
        model="claude-x", max_tokens=16000, thinking={"type": "enabled", "budget_tokens": 10000}, messages=USER
    ) as stream:
        stream.get_final_message()
    body = only_request(fake, case).body
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert body["enable_thinking"] is True
    assert body["thinking_budget"] == DEFAULT_MAX_TOKENS


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [  # non-streaming: Qwen3 on DashScope refuses thinking off-stream, so it is always turned off
        ({"type": "adaptive"}, {"enable_thinking": False}),
        ({"type": "disabled"}, {"enable_thinking": False}),
        (None, {"enable_thinking": False}),
    ],
    ids=["adaptive", "disabled", "absent"],
)
def test_other_thinking_modes(client, fake, case, thinking, expected):
    fake.enqueue(json_reply(dashscope_completion("2")))
    extra = {} if thinking is None else {"extra_body": {"thinking": thinking}}
    client.messages.create(model="claude-x", max_tokens=1024, messages=USER, **extra)
    body = only_request(fake, case).body
    assert {key: body[key] for key in ("enable_thinking", "thinking_budget") if key in body} == expected


def test_oneshot_reasoning_content_is_a_thinking_block(client, fake, case):
    fake.enqueue(json_reply(dashscope_completion("2", reasoning_content="One plus one is two.")))
    message = client.messages.create(model="claude-x", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024}, messages=USER)
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in message.content] == [
        ("thinking", "One plus one is two."),
        ("text", "2"),
    ]


def test_earlier_thinking_goes_back_as_reasoning_content(client, fake, gateway, case):
    """A follow-up turn carries the assistant's thinking block: DashScope gets it as that
    assistant message's reasoning_content."""
    fake.enqueue(dashscope_stream(("It is 2.",), reasoning=("Adding ", "one and one."), usage=(30, 20)))
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with client.messages.stream(model="claude-x", max_tokens=4096, thinking=thinking, messages=USER) as stream:
        first = stream.get_final_message()
    assert [block.type for block in first.content] == ["thinking", "text"]

    fake.enqueue(dashscope_stream(("It is 4.",), usage=(60, 5)))
    with client.messages.stream(
        model="claude-x",
        max_tokens=4096,
        thinking=thinking,
        messages=[*USER, {"role": "assistant", "content": first.content}, {"role": "user", "content": "And 2 + 2?"}],
    ) as stream:
        assert stream.get_final_message().content[0].text == "It is 4."

    messages = fake.requests_for(case)[1].body["messages"]
    assert messages[-2] == {"role": "assistant", "content": "It is 2.", "reasoning_content": "Adding one and one."}
    assert messages[-1] == {"role": "user", "content": "And 2 + 2?"}
    assert "reasoning_content" not in messages[0]


def test_cached_tokens(client, fake, gateway, case):
    fake.enqueue(dashscope_stream(("Cached.",), usage=(1000, 20), cached_tokens=800))
    with client.messages.stream(model="claude-x", max_tokens=64, messages=USER) as stream:
        message = stream.get_final_message()
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens, message.usage.output_tokens) == (200, 800, 20)
    assert_log_usage(exact_log_lines(gateway, case)[0], 1000, 20, cached=800)


# ---------------------------------------------------------------- tools


def test_streamed_tool_use_then_tool_result(client, fake, gateway, case):
    call = ToolCall("call_8f08d2b0fc0c4d8fab7123", "get_weather", {"city": "Hangzhou"})
    fake.enqueue(dashscope_tool_call_stream([call], text=("Checking.",), pieces=4, usage=(150, 25)))

    partial, message = stream_tool_use(client, "Weather in Hangzhou?", [WEATHER_TOOL])

    assert len(partial) == 4
    assert [block.type for block in message.content] == ["text", "tool_use"]
    tool_use = message.content[1]
    assert (tool_use.id, tool_use.name, tool_use.input) == (call.id, "get_weather", {"city": "Hangzhou"})
    assert message.stop_reason == "tool_use"

    fake.enqueue(json_reply(dashscope_completion("Sunny, 25 °C.", usage=(190, 7))))
    answer = answer_tool_use(
        client, "Weather in Hangzhou?", message, tool_result(call.id, "sunny, 25 °C"), tools=[WEATHER_TOOL], stream=False
    )
    assert answer.content[0].text == "Sunny, 25 °C."
    assistant, tool = fake.requests_for(case)[1].body["messages"][-2:]
    assert assistant["content"] == "Checking."
    assert [(c["id"], json.loads(c["function"]["arguments"])) for c in assistant["tool_calls"]] == [(call.id, call.arguments)]
    assert tool == {"role": "tool", "content": "sunny, 25 °C", "tool_call_id": call.id}
    first, second = exact_log_lines(gateway, case, 2)
    assert_log_usage(first, 150, 25)
    assert_log_usage(second, 190, 7)


# ---------------------------------------------------------------- errors


def test_wrong_key_is_401(client, fake, gateway, case):
    error = rejected_key_error(client, fake, USER, wrong_key="sk-someOtherDashScopeKey0000", right_key=DASHSCOPE_KEY)
    assert_error(error, 401, "authentication_error", "Incorrect API key provided")
    assert DASHSCOPE_KEY not in error.response.text
    assert exact_log_lines(gateway, case)[0]["response"]["status"] == 401
    assert_still_serving(gateway, fake, case)


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_rate_limited_keeps_retry_after(client, fake, gateway, case, stream):
    fake.enqueue(dashscope_rate_limited("9"))
    error = request_error(anthropic.RateLimitError, client, USER, stream)
    assert_error(error, 429, "rate_limit_error", "rate limit exceeded")
    assert error.response.headers["retry-after"] == "9"
    assert_still_serving(gateway, fake, case)


@pytest.mark.parametrize(
    ("status", "client_status", "error_type"),
    [(500, 500, "api_error"), (503, 529, "overloaded_error")],
    ids=["500", "503"],
)
def test_server_errors(client, fake, gateway, case, status, client_status, error_type):
    body = {
        "error": {"message": "The server had an error while responding.", "type": "internal_error", "param": None, "code": "internal_error"},
        "request_id": "b5f3e7a2-0000-4000-8000-000000000000",
    }
    fake.enqueue(error_reply(status, body))
    error = request_error(anthropic.APIStatusError, client, USER)
    assert_error(error, client_status, error_type, "The server had an error")
    assert_still_serving(gateway, fake, case)


def test_count_tokens_is_local(client, fake, gateway, case):
    assert_count_tokens_is_local(client, fake, gateway, case, messages=USER, tools=[WEATHER_TOOL])
