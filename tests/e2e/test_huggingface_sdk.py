"""The Hugging Face recipe's own behaviour end to end: the Anthropic Python SDK -> Hypercorn
serving recipes.huggingface:app (a real process) -> the fake Hugging Face router on
loopback. What every recipe does is tested in test_recipe_scenarios.py.

The fake checks every request as the router would (see tests/fakes/openai_chat_server.py);
the ``fake`` fixture fails a test whose requests it rejected or whose replies went unused.
"""

from __future__ import annotations

import json
import threading

import httpx
import pytest

import anthropic
from tests.e2e.harness import (
    CLIENT_KEY,
    HF_TOKEN,
    GatewayProcess,
    assert_log_usage,
    exact_log_lines,
    leave_mid_stream,
    sdk_client,
)
from tests.e2e.recipes import HUGGINGFACE, Usage
from tests.e2e.scenarios import (
    USER,
    WEATHER_TOOL,
    assert_error,
    assert_still_serving,
    only_request,
    request_error,
    tool_result,
    tool_result_turn,
)
from tests.fakes.openai_chat_server import (
    Chunks,
    FakeChatServer,
    Reply,
    ToolCall,
    completion,
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

pytestmark = pytest.mark.e2e

TIME_TOOL = {
    "name": "get_time",
    "description": "The current time in a timezone.",
    "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
}


@pytest.fixture
def client(hf_gateway: GatewayProcess, case: str) -> anthropic.Anthropic:
    return sdk_client(hf_gateway.url, case)


def still_serving(gateway: GatewayProcess, fake: FakeChatServer, case: str) -> None:
    """After an error the gateway answers the next request normally."""
    assert_still_serving(gateway, fake, case, HUGGINGFACE.completion("still serving", Usage(3, 2)), USER)


# ---------------------------------------------------------------- tools


def test_parallel_tool_calls(client, fake, hf_gateway, case):
    calls = [
        ToolCall("call_p1", "get_weather", {"city": "Oslo"}),
        ToolCall("call_p2", "get_time", {"tz": "Europe/Oslo"}),
    ]
    fake.enqueue(tool_call_stream(calls, pieces=3, usage=(140, 44)))

    with client.messages.stream(
        model="claude-x",
        max_tokens=512,
        messages=[{"role": "user", "content": "Weather and time in Oslo?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
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
    assert [json.loads(call["function"]["arguments"]) for call in assistant["tool_calls"]] == [
        c.arguments for c in calls
    ]
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
        model="claude-x",
        max_tokens=128,
        messages=[{"role": "user", "content": "Rome?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert [(b.type, b.id, b.name, b.input) for b in message.content] == [
        ("tool_use", "call_o1", "get_weather", {"city": "Rome"})
    ]
    assert message.stop_reason == "tool_use"
    assert only_request(fake, case).body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


# ---------------------------------------------------------------- thinking


def test_log_reasoning_tokens(client, fake, hf_gateway, case):
    """Reasoning tokens are logged even when the client did not ask for thinking."""
    fake.enqueue(reasoning_stream(usage=(30, 16), reasoning_tokens=7))
    with client.messages.stream(model="claude-x", max_tokens=2048, messages=USER) as stream:
        stream.get_final_message()
    (line,) = exact_log_lines(hf_gateway, case)
    assert line["ai"]["proxy"]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 7


# ---------------------------------------------------------------- requests the gateway shapes


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


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_retry_after_in_lower_case_reaches_the_client(client, fake, hf_gateway, case, stream):
    """Any spelling of Retry-After reaches the client (test_recipe_scenarios.py sends the router's own)."""
    fake.enqueue(rate_limited("7", header_name="retry-after"))
    error = request_error(anthropic.RateLimitError, client, USER, stream)
    assert_error(error, 429, "rate_limit_error", "Rate limit reached")
    assert error.response.headers.get("retry-after") == "7"
    still_serving(hf_gateway, fake, case)


def test_model_loading_is_overloaded(client, fake, hf_gateway, case):
    fake.enqueue(hf_model_loading())
    error = request_error(anthropic.OverloadedError, client, USER)
    assert_error(error, 529, "overloaded_error", "is currently loading")
    (line,) = exact_log_lines(hf_gateway, case)
    assert line["response"]["status"] == 529
    still_serving(hf_gateway, fake, case)


def test_html_500_becomes_api_error(client, fake, hf_gateway, case):
    fake.enqueue(html_internal_server_error())
    error = request_error(anthropic.InternalServerError, client, USER, stream=True)
    assert_error(error, 500, "api_error")
    assert error.response.headers["content-type"].startswith("application/json")
    for html in ("<", "html", "Fake Internal Server Error"):
        assert html not in error.response.text
    still_serving(hf_gateway, fake, case)


def test_provider_bad_request(client, fake, hf_gateway, case):
    fake.enqueue(hf_bad_request())
    error = request_error(anthropic.BadRequestError, client, USER)
    assert_error(error, 400, "invalid_request_error", "Template error")
    still_serving(hf_gateway, fake, case)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"max_tokens": 8, "messages": "not a list"}',
        b'{"max_tokens": 8, "messages": [{"role": "robot", "content": "x"}]}',
    ],
    ids=["not-json", "not-object", "messages-not-list", "bad-role"],
)
def test_invalid_request_body_is_400(hf_gateway, fake, case, body):
    response = httpx.post(
        hf_gateway.url + "/v1/messages",
        content=body,
        headers={
            "x-api-key": CLIENT_KEY,
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
            "x-e2e-case": case,
        },
        trust_env=False,
    )
    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert fake.requests_for(case) == []
    still_serving(hf_gateway, fake, case)


def test_error_inside_a_200_stream(client, fake, hf_gateway, case):
    """TGI and the router report a failure inside a 200 stream as ``data: {"error": ...}``."""
    c = Chunks()
    fake.enqueue(
        sse_reply(
            [
                c.chunk({"content": "", "role": "assistant"}),
                c.chunk({"content": "Partial "}),
                b'data: {"error":"Request failed during generation: Server error: CUDA out of memory",'
                b'"error_type":"generation"}\n\n',
            ],
            done=False,
        )
    )
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="claude-x", max_tokens=64, messages=USER) as stream,
    ):
        for text in stream.text_stream:
            seen.append(text)
    assert seen == ["Partial "]
    assert caught.value.body["error"]["type"] == "api_error"
    assert "CUDA out of memory" in caught.value.body["error"]["message"]
    (line,) = exact_log_lines(hf_gateway, case)
    assert "CUDA out of memory" in line["ai"]["proxy"]["meta"]["error"]
    still_serving(hf_gateway, fake, case)


def test_client_gone_mid_stream(hf_gateway, fake, case):
    """The client hangs up mid-stream: the gateway cancels the provider call, logs the
    exchange as a departure (499), and keeps serving."""
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
        leave_mid_stream(hf_gateway.url, "claude-x", USER, case, b"first words")
        (line,) = exact_log_lines(hf_gateway, case)
    finally:
        gate.set()
    assert line["response"]["status"] == 499  # nginx's "client closed request"
    assert line["ai"]["proxy"]["meta"]["error"].startswith("client closed request mid-stream (after HTTP 200 and ")
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "stream"
    still_serving(hf_gateway, fake, case)


def test_truncated_json_answer_is_502(client, fake, hf_gateway, case):
    """A non-streaming answer whose body is cut mid-way -> 502 api_error, not an internal error."""
    reply = json_reply(completion("never whole"))
    fake.enqueue(Reply(reply.status, reply.headers, reply.body, cut=True))
    error = request_error(anthropic.APIStatusError, client, USER)
    assert_error(error, 502, "api_error")
    still_serving(hf_gateway, fake, case)


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
