"""The Hugging Face recipe end to end: the Anthropic Python SDK -> Hypercorn serving
recipes.huggingface:app (a real process) -> the fake Hugging Face router on loopback.

The fake checks every request as the router would (see tests/fakes/openai_chat_server.py);
the ``fake`` fixture fails a test whose requests it rejected or whose replies went unused.
"""

from __future__ import annotations

import json
import threading

import anthropic
import httpx
import pytest

from tests.fakes.openai_chat_server import (
    CHAT_PATH,
    Chunks,
    FakeChatServer,
    Reply,
    ToolCall,
    completion,
    cut_stream,
    hf_bad_request,
    hf_model_loading,
    html_internal_server_error,
    json_reply,
    rate_limited,
    reasoning_stream,
    sse_reply,
    text_stream,
    tool_call_stream,
)

from tests.e2e.harness import CLIENT_KEY, HF_MODEL, HF_TOKEN, GatewayProcess, assert_log_usage, exact_log_lines, sdk_client
from tests.e2e.scenarios import assert_count_tokens_is_local, assert_error, only_request, rejected_key_error, request_error, stream_tool_use, tool_result, tool_result_turn
from tests.e2e.scenarios import assert_still_serving as assert_serving_after

pytestmark = pytest.mark.e2e

USER = [{"role": "user", "content": "What is 1 + 1?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "cache_control": {"type": "ephemeral"},
}
TIME_TOOL = {
    "name": "get_time",
    "description": "The current time in a timezone.",
    "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
}


@pytest.fixture
def client(hf_gateway: GatewayProcess, case: str) -> anthropic.Anthropic:
    return sdk_client(hf_gateway.url, case)


def assert_still_serving(gateway: GatewayProcess, fake: FakeChatServer, case: str) -> None:
    """After an error the gateway answers the next request normally."""
    assert_serving_after(gateway, fake, case, json_reply(completion("still serving", usage=(3, 2))), USER)


def stream_events(stream) -> list[str]:
    """The Anthropic event types of an SDK MessageStream (the SDK's own synthetic events left out)."""
    wire = {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    }
    return [event.type for event in stream if event.type in wire]


# ---------------------------------------------------------------- text


def test_text_oneshot(client, fake, hf_gateway, case):
    fake.enqueue(json_reply(completion(" The sum of 1 + 1 is 2.", model="mistralai/Mistral-7B-Instruct-v0.2")))

    message = client.messages.create(model="claude-x", max_tokens=256, system="Be brief.", messages=USER)

    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == " The sum of 1 + 1 is 2."
    assert message.stop_reason == "end_turn"  # TGI's eos_token
    assert message.model == "mistralai/Mistral-7B-Instruct-v0.2"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (26, 40)
    sent = only_request(fake, case)
    assert sent.method == "POST" and sent.path == CHAT_PATH and sent.query == ""
    assert sent.body["model"] == HF_MODEL
    assert sent.body.get("stream", False) is False and "stream_options" not in sent.body
    assert sent.body["max_tokens"] == 256
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 1 + 1?"},
    ]
    (line,) = exact_log_lines(hf_gateway, case)
    meta = line["ai"]["proxy"]["meta"]
    assert meta["provider_name"] == "huggingface"
    assert meta["request_mode"] == "oneshot"
    assert meta["request_model"] == HF_MODEL
    assert meta["response_model"] == "mistralai/Mistral-7B-Instruct-v0.2"
    assert line["response"]["status"] == 200
    assert line["upstream_uri"] == CHAT_PATH
    port = int(fake.url.rsplit(":", 1)[1])
    assert line["ai"]["proxy"]["tried_targets"] == [
        {
            "provider": "huggingface",
            "model": HF_MODEL,
            "host": "127.0.0.1",
            "port": port,
            "ip": "127.0.0.1",
            "upstream_scheme": "http",
            "upstream_uri": CHAT_PATH,
            "route_type": "llm/v1/chat",
        }
    ]
    assert_log_usage(line, 26, 40)


def test_text_stream(client, fake, hf_gateway, case):
    fake.enqueue(text_stream(("The ", "answer ", "to 1 + ", "1 is ", "2."), usage=(25, 12)))

    with client.messages.stream(model="claude-x", max_tokens=256, messages=USER) as stream:
        events = stream_events(stream)
        message = stream.get_final_message()

    assert events[0] == "message_start" and events[-2:] == ["message_delta", "message_stop"]
    assert events[1:-2] == ["content_block_start"] + ["content_block_delta"] * 5 + ["content_block_stop"]
    assert message.content[0].text == "The answer to 1 + 1 is 2."
    assert message.stop_reason == "end_turn"
    assert message.model == HF_MODEL
    assert (message.usage.input_tokens, message.usage.output_tokens) == (25, 12)
    sent = only_request(fake, case)
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["model"] == HF_MODEL
    (line,) = exact_log_lines(hf_gateway, case)
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "stream"
    assert line["ai"]["proxy"]["meta"]["provider_name"] == "huggingface"
    assert line["response"]["headers"]["content-type"].startswith("text/event-stream")
    assert_log_usage(line, 25, 12)


def test_stream_cached_tokens(client, fake, hf_gateway, case):
    fake.enqueue(text_stream(("Cached.",), usage=(1000, 20), cached_tokens=800))

    with client.messages.stream(model="claude-x", max_tokens=64, messages=USER) as stream:
        message = stream.get_final_message()

    # OpenAI's prompt_tokens include the cached ones; Anthropic's input_tokens do not.
    assert message.usage.input_tokens == 200
    assert message.usage.cache_read_input_tokens == 800
    assert message.usage.output_tokens == 20
    (line,) = exact_log_lines(hf_gateway, case)
    assert_log_usage(line, 1000, 20, cached=800)


# ---------------------------------------------------------------- tools


def test_streamed_tool_use_then_tool_result(client, fake, hf_gateway, case):
    call = ToolCall("call_w1", "get_weather", {"city": "Paris", "unit": "celsius"})
    fake.enqueue(tool_call_stream([call], text=("Let me check.",), pieces=5, usage=(120, 30)))

    partial_json, message = stream_tool_use(client, "Weather in Paris?", [WEATHER_TOOL])

    assert len(partial_json) == 5  # streamed as the fragments arrived, not buffered
    assert json.loads("".join(partial_json)) == call.arguments
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "Let me check."
    tool_use = message.content[1]
    assert (tool_use.id, tool_use.name, tool_use.input) == ("call_w1", "get_weather", {"city": "Paris", "unit": "celsius"})
    assert message.stop_reason == "tool_use"
    first = only_request(fake, case)
    assert first.body["tools"] == [  # no cache_control; input_schema passed verbatim as parameters
        {
            "type": "function",
            "function": {"name": "get_weather", "description": WEATHER_TOOL["description"], "parameters": WEATHER_TOOL["input_schema"]},
        }
    ]

    # Turn 2: the tool result goes back as a role "tool" message answering the call.
    fake.enqueue(text_stream(("It is 18 °C ", "and sunny."), usage=(160, 9)))
    with client.messages.stream(
        model="claude-x",
        max_tokens=512,
        tools=[WEATHER_TOOL],
        messages=tool_result_turn(
            "Weather in Paris?", message, tool_result("call_w1", "18 °C, sunny", cache_control={"type": "ephemeral"})
        ),
    ) as stream:
        answer = stream.get_final_message()

    assert answer.content[0].text == "It is 18 °C and sunny."
    second = fake.requests_for(case)[1]
    assistant, tool = second.body["messages"][-2:]
    assert assistant["role"] == "assistant" and assistant["content"] == "Let me check."
    assert [(c["id"], c["type"], c["function"]["name"]) for c in assistant["tool_calls"]] == [("call_w1", "function", "get_weather")]
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == call.arguments
    assert tool == {"role": "tool", "content": "18 °C, sunny", "tool_call_id": "call_w1"}
    first_line, second_line = exact_log_lines(hf_gateway, case, 2)
    assert_log_usage(first_line, 120, 30)
    assert_log_usage(second_line, 160, 9)


def test_parallel_tool_calls(client, fake, hf_gateway, case):
    calls = [
        ToolCall("call_p1", "get_weather", {"city": "Oslo"}),
        ToolCall("call_p2", "get_time", {"tz": "Europe/Oslo"}),
    ]
    fake.enqueue(tool_call_stream(calls, pieces=3, usage=(140, 44)))

    with client.messages.stream(
        model="claude-x", max_tokens=512, messages=[{"role": "user", "content": "Weather and time in Oslo?"}], tools=[WEATHER_TOOL, TIME_TOOL]
    ) as stream:
        message = stream.get_final_message()

    assert [block.type for block in message.content] == ["tool_use", "tool_use"]
    assert [(b.id, b.name, b.input) for b in message.content] == [(c.id, c.name, c.arguments) for c in calls]
    assert message.stop_reason == "tool_use"

    # Both results in one user turn (one of them an error) -> two tool messages, in call order.
    fake.enqueue(json_reply(completion("Oslo: 3 °C at noon.", finish_reason="stop", usage=(200, 8))))
    answer = client.messages.create(
        model="claude-x",
        max_tokens=512,
        tools=[WEATHER_TOOL, TIME_TOOL],
        messages=tool_result_turn(
            "Weather and time in Oslo?",
            message,
            tool_result("call_p2", [{"type": "text", "text": "12:00"}]),
            tool_result("call_p1", "station offline", is_error=True),
        ),
    )
    assert answer.content[0].text == "Oslo: 3 °C at noon."
    sent = fake.requests_for(case)[1].body["messages"]
    assistant, tool_1, tool_2 = sent[-3:]
    assert [call["id"] for call in assistant["tool_calls"]] == ["call_p1", "call_p2"]
    assert [json.loads(call["function"]["arguments"]) for call in assistant["tool_calls"]] == [c.arguments for c in calls]
    assert (tool_1["tool_call_id"], tool_2["tool_call_id"]) == ("call_p1", "call_p2")
    assert "station offline" in tool_1["content"] and "rror" in tool_1["content"]
    assert tool_2["content"] == "12:00"
    assert len(exact_log_lines(hf_gateway, case, 2)) == 2


def test_oneshot_tool_calls(client, fake, case):
    fake.enqueue(
        json_reply(
            completion(None, finish_reason="tool_calls", tool_calls=[("call_o1", "get_weather", {"city": "Rome"})])
        )
    )
    message = client.messages.create(
        model="claude-x", max_tokens=128, messages=[{"role": "user", "content": "Rome?"}], tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert [(b.type, b.id, b.name, b.input) for b in message.content] == [("tool_use", "call_o1", "get_weather", {"city": "Rome"})]
    assert message.stop_reason == "tool_use"
    assert only_request(fake, case).body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


# ---------------------------------------------------------------- thinking


def test_thinking_from_reasoning_content_stream(client, fake, hf_gateway, case):
    fake.enqueue(reasoning_stream(("Let me ", "add the ", "numbers."), ("It is ", "2."), usage=(30, 16)))

    with client.messages.stream(
        model="claude-x", max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024}, messages=USER
    ) as stream:
        message = stream.get_final_message()

    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Let me add the numbers."
    assert message.content[1].text == "It is 2."
    assert "thinking" not in only_request(fake, case).body  # Anthropic-only: never sent
    assert_log_usage(exact_log_lines(hf_gateway, case)[0], 30, 16)


def test_thinking_from_reasoning_content_oneshot(client, fake, case):
    fake.enqueue(json_reply(completion("2", reasoning_content="1 plus 1 makes 2.", finish_reason="stop")))
    message = client.messages.create(
        model="claude-x", max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024}, messages=USER
    )
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in message.content] == [
        ("thinking", "1 plus 1 makes 2."),
        ("text", "2"),
    ]


def test_log_reasoning_tokens(client, fake, hf_gateway, case):
    fake.enqueue(reasoning_stream(usage=(30, 16), reasoning_tokens=7))
    with client.messages.stream(model="claude-x", max_tokens=2048, messages=USER) as stream:
        stream.get_final_message()
    (line,) = exact_log_lines(hf_gateway, case)
    assert line["ai"]["proxy"]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 7


# ---------------------------------------------------------------- requests the gateway shapes


def test_model_override_and_beta_request(client, fake, hf_gateway, case):
    """Claude Code's form: ?beta=true, anthropic-beta, an Anthropic model name, Anthropic-only fields."""
    fake.enqueue(text_stream(("ok",)))
    with client.beta.messages.stream(
        model="claude-sonnet-4-7-e2e",
        max_tokens=32000,
        betas=["interleaved-thinking-2025-05-14", "context-management-2025-06-27"],
        system=[{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}],
        metadata={"user_id": "user-e2e"},
        extra_body={"context_management": {"edits": []}, "output_config": {"effort": "high"}},
        extra_query={"beta": "true"},
    ) as stream:
        assert stream.get_final_message().content[0].text == "ok"
    sent = only_request(fake, case)
    assert sent.query == ""
    assert sent.body["model"] == HF_MODEL  # the client's claude-* name never reaches the provider
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are Claude Code."},
        {"role": "user", "content": "hi"},
    ]
    (line,) = exact_log_lines(hf_gateway, case)
    assert line["request"]["uri"] == "/v1/messages?beta=true"
    assert line["ai"]["proxy"]["meta"]["request_model"] == HF_MODEL


def test_path_prefix_base_url(hf_gateway, fake, case):
    fake.enqueue(json_reply(completion("prefixed")))
    client = sdk_client(hf_gateway.url + "/anything", case)
    message = client.messages.create(model="claude-x", max_tokens=16, messages=USER)
    assert message.content[0].text == "prefixed"
    assert only_request(fake, case).path == CHAT_PATH
    (line,) = exact_log_lines(hf_gateway, case)
    assert line["request"]["uri"] == "/anything/v1/messages"


def test_provider_sees_only_the_hf_token(hf_gateway, fake, case):
    """The SDK's Authorization: Bearer and Claude Code's x-api-key never leave the gateway."""
    fake.enqueue(json_reply(completion("bearer")), json_reply(completion("x-api-key")))
    sdk_client(hf_gateway.url, case).messages.create(model="claude-x", max_tokens=8, messages=USER)
    response = httpx.post(
        hf_gateway.url + "/v1/messages?beta=true",
        json={"model": "claude-x", "max_tokens": 8, "messages": USER},
        headers={
            "x-api-key": CLIENT_KEY,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
            "x-e2e-case": case,
        },
        trust_env=False,
    )
    assert response.status_code == 200 and response.json()["content"][0]["text"] == "x-api-key"
    requests = fake.requests_for(case)
    assert len(requests) == 2
    for request in requests:
        assert request.headers["authorization"] == f"Bearer {HF_TOKEN}"
        for forbidden in ("x-api-key", "anthropic-version", "anthropic-beta"):
            assert forbidden not in request.headers
        assert CLIENT_KEY not in json.dumps(request.headers)
        assert CLIENT_KEY.encode() not in request.raw_body
    bearer_line, key_line = exact_log_lines(hf_gateway, case, 2)
    assert bearer_line["request"]["headers"]["authorization"] == "REDACTED"
    assert key_line["request"]["headers"]["x-api-key"] == "REDACTED"


def test_count_tokens_is_local(client, fake, hf_gateway, case):
    assert_count_tokens_is_local(client, fake, hf_gateway, case, system="Be brief.", messages=USER, tools=[WEATHER_TOOL])


def test_concurrent_streams_stay_apart(hf_gateway, fake, case):
    """Per-request state: eight simultaneous streams each get their own text and usage."""
    fake.responder = lambda request: text_stream(
        tuple(f"{request.case} part {i}. " for i in range(3)), usage=(int(request.case.rsplit("-", 1)[1]) + 100, 3)
    )
    results: dict[str, tuple[str, int]] = {}

    def one(n: int) -> None:
        own = f"{case}-{n}"
        with sdk_client(hf_gateway.url, own).messages.stream(model="claude-x", max_tokens=64, messages=USER) as stream:
            message = stream.get_final_message()
        results[own] = (message.content[0].text, message.usage.input_tokens)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 8
    for n in range(8):
        own = f"{case}-{n}"
        assert results[own] == ("".join(f"{own} part {i}. " for i in range(3)), n + 100)
        (line,) = exact_log_lines(hf_gateway, own)
        assert_log_usage(line, n + 100, 3)


# ---------------------------------------------------------------- errors


def test_provider_rejects_the_token(client, fake, hf_gateway, case):
    error = rejected_key_error(client, fake, USER, wrong_key="hf_someOtherTokenTheRouterWants", right_key=HF_TOKEN)
    assert_error(error, 401, "authentication_error", "the token seems invalid")
    assert HF_TOKEN not in error.message and HF_TOKEN not in error.response.text
    assert only_request(fake, case).status == 401
    (line,) = exact_log_lines(hf_gateway, case)
    assert line["response"]["status"] == 401
    assert_still_serving(hf_gateway, fake, case)


@pytest.mark.parametrize("header_name", ["retry-after", "Retry-After"])  # any spelling reaches the client
@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_rate_limited_keeps_retry_after(client, fake, hf_gateway, case, header_name, stream):
    fake.enqueue(rate_limited("7", header_name=header_name))
    error = request_error(anthropic.RateLimitError, client, USER, stream)
    assert_error(error, 429, "rate_limit_error", "Rate limit reached")
    assert error.response.headers.get("retry-after") == "7"
    assert_still_serving(hf_gateway, fake, case)


def test_model_loading_is_overloaded(client, fake, hf_gateway, case):
    fake.enqueue(hf_model_loading())
    error = request_error(anthropic.OverloadedError, client, USER)
    assert_error(error, 529, "overloaded_error", "is currently loading")
    (line,) = exact_log_lines(hf_gateway, case)
    assert line["response"]["status"] == 529
    assert_still_serving(hf_gateway, fake, case)


def test_html_500_becomes_api_error(client, fake, hf_gateway, case):
    fake.enqueue(html_internal_server_error())
    error = request_error(anthropic.InternalServerError, client, USER, stream=True)
    assert_error(error, 500, "api_error")
    assert error.response.headers["content-type"].startswith("application/json")
    for html in ("<", "html", "Fake Internal Server Error"):
        assert html not in error.response.text
    assert_still_serving(hf_gateway, fake, case)


def test_provider_bad_request(client, fake, hf_gateway, case):
    fake.enqueue(hf_bad_request())
    error = request_error(anthropic.BadRequestError, client, USER)
    assert_error(error, 400, "invalid_request_error", "Template error")
    assert_still_serving(hf_gateway, fake, case)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'{"max_tokens": 8, "messages": "not a list"}', b'{"max_tokens": 8, "messages": [{"role": "robot", "content": "x"}]}'],
    ids=["not-json", "not-object", "messages-not-list", "bad-role"],
)
def test_invalid_request_body_is_400(hf_gateway, fake, case, body):
    response = httpx.post(
        hf_gateway.url + "/v1/messages",
        content=body,
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json", "x-e2e-case": case},
        trust_env=False,
    )
    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert fake.requests_for(case) == []
    assert_still_serving(hf_gateway, fake, case)


def test_cut_stream_is_an_error_event(client, fake, hf_gateway, case):
    fake.enqueue(cut_stream(("This answer ", "stops ", "in the mid")))
    seen: list[str] = []
    with pytest.raises(anthropic.APIError) as caught:
        with client.messages.stream(model="claude-x", max_tokens=64, messages=USER) as stream:
            for text in stream.text_stream:
                seen.append(text)
    assert "".join(seen) == "This answer stops in the mid"  # what arrived was passed on at once
    assert caught.value.body["error"]["type"] == "api_error"
    (line,) = exact_log_lines(hf_gateway, case)
    assert line["ai"]["proxy"]["meta"]["error"]
    assert_still_serving(hf_gateway, fake, case)


def test_error_inside_a_200_stream(client, fake, hf_gateway, case):
    """TGI and the router report a failure inside a 200 stream as ``data: {"error": ...}``."""
    c = Chunks()
    fake.enqueue(
        sse_reply(
            [
                c.chunk({"content": "", "role": "assistant"}),
                c.chunk({"content": "Partial "}),
                b'data: {"error":"Request failed during generation: Server error: CUDA out of memory","error_type":"generation"}\n\n',
            ],
            done=False,
        )
    )
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(model="claude-x", max_tokens=64, messages=USER) as stream:
            for text in stream.text_stream:
                seen.append(text)
    assert seen == ["Partial "]
    assert caught.value.body["error"]["type"] == "api_error"
    assert "CUDA out of memory" in caught.value.body["error"]["message"]
    (line,) = exact_log_lines(hf_gateway, case)
    assert "CUDA out of memory" in line["ai"]["proxy"]["meta"]["error"]
    assert_still_serving(hf_gateway, fake, case)


def test_client_gone_mid_stream(hf_gateway, fake, case):
    """The client hangs up mid-stream: the gateway cancels the provider call, logs the
    exchange as disconnected, and keeps serving."""
    gate = threading.Event()
    c = Chunks()
    fake.enqueue(
        sse_reply(
            [c.chunk({"content": "", "role": "assistant"}), c.chunk({"content": "first words "}), gate]
            + [c.chunk({"content": f"word {i} "}) for i in range(50)]
            + [c.chunk({}, "stop"), c.usage(10, 52)]
        )
    )
    try:
        with httpx.Client(trust_env=False, timeout=30) as http:
            with http.stream(
                "POST",
                hf_gateway.url + "/v1/messages",
                json={"model": "claude-x", "max_tokens": 64, "stream": True, "messages": USER},
                headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "x-e2e-case": case},
            ) as response:
                received = b""
                for chunk in response.iter_raw():
                    received += chunk
                    if b"first words" in received:
                        break  # leave with the provider's stream still open
        (line,) = exact_log_lines(hf_gateway, case)
    finally:
        gate.set()
    assert line["ai"]["proxy"]["meta"]["error"] == "client disconnected"
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "stream"
    assert_still_serving(hf_gateway, fake, case)


def test_provider_hangs_up_is_502(client, fake, hf_gateway, case):
    """A provider that closes the connection without answering -> 502 api_error."""
    fake.enqueue(Reply(drop=True))
    error = request_error(anthropic.APIStatusError, client, USER)
    assert_error(error, 502, "api_error")
    assert_still_serving(hf_gateway, fake, case)


def test_truncated_json_answer_is_502(client, fake, hf_gateway, case):
    """A non-streaming answer whose body is cut mid-way -> 502 api_error, not an internal error."""
    reply = json_reply(completion("never whole"))
    fake.enqueue(Reply(reply.status, reply.headers, reply.body, cut=True))
    error = request_error(anthropic.APIStatusError, client, USER)
    assert_error(error, 502, "api_error")
    assert_still_serving(hf_gateway, fake, case)


# ---------------------------------------------------------------- the log file


def test_log_file_lines_and_secrets(client, fake, hf_gateway, case):
    fake.enqueue(json_reply(completion("a", usage=(11, 1))), text_stream(("b",), usage=(12, 2)))
    client.messages.create(model="claude-x", max_tokens=8, messages=USER)
    with client.messages.stream(model="claude-x", max_tokens=8, messages=USER) as stream:
        stream.get_final_message()
    oneshot, streamed = exact_log_lines(hf_gateway, case, 2)
    assert oneshot["ai"]["proxy"]["meta"]["request_mode"] == "oneshot"
    assert streamed["ai"]["proxy"]["meta"]["request_mode"] == "stream"
    assert_log_usage(oneshot, 11, 1)
    assert_log_usage(streamed, 12, 2)
    assert oneshot["request"]["headers"]["authorization"] == "REDACTED"
    text = hf_gateway.log_text()
    assert text.endswith("\n")
    for raw in text.splitlines():
        line = json.loads(raw)  # every line is one JSON object
        if "ai" in line:
            assert line["ai"]["proxy"]["meta"]["provider_name"] == "huggingface"
    assert CLIENT_KEY not in text
    assert HF_TOKEN not in text


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_response_headers_are_not_doubled(hf_gateway, fake, case, stream):
    fake.enqueue(text_stream(("x",)) if stream else json_reply(completion("x")))
    with httpx.stream(
        "POST",
        hf_gateway.url + "/v1/messages",
        json={"model": "claude-x", "max_tokens": 8, "stream": stream, "messages": USER},
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "x-e2e-case": case},
        trust_env=False,
    ) as response:
        response.read()
    assert response.status_code == 200
    for name in ("date", "server", "content-type", "cache-control"):
        assert len(response.headers.get_list(name)) <= 1, (name, response.headers.get_list(name))
