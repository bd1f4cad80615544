"""Steps of the SDK scenarios, whatever the provider: sending one request, a tool-use turn
and its tool result, an error the client must get, count_tokens answered by the gateway
itself. test_recipe_scenarios.py runs them over every recipe; the recipe modules use them
in their own tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import anthropic
from tests.e2e.harness import GatewayProcess, exact_log_lines, sdk_client
from tests.fakes.scripted_server import RecordedRequest, Reply

MODEL = "claude-x"  # what the clients ask for; the recipes pick the provider's model
USER = [{"role": "user", "content": "What is 1 + 1?"}]
WEATHER_TOOL = {  # with Anthropic's cache_control, which no other provider may get
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


def only_request(fake, case: str) -> RecordedRequest:
    """The one request ``case`` sent the fake provider."""
    requests = fake.requests_for(case)
    assert len(requests) == 1, [(r.method, r.path) for r in requests]
    return requests[0]


def create_or_stream(client: anthropic.Anthropic, stream: bool, **kwargs) -> anthropic.types.Message:
    """``messages.create`` or, with ``stream``, ``messages.stream``'s final message."""
    if not stream:
        return client.messages.create(**kwargs)
    with client.messages.stream(**kwargs) as events:
        return events.get_final_message()


def assert_still_serving(
    gateway: GatewayProcess, fake, case: str, reply: Reply, messages: list, text: str = "still serving"
) -> None:
    """After an error the gateway answers the next request (``reply`` from the fake) normally."""
    fake.enqueue(reply)
    message = sdk_client(gateway.url, case + "-after").messages.create(model=MODEL, max_tokens=16, messages=messages)
    assert message.content[0].text == text


# ---------------------------------------------------------------- tools


def stream_tool_use(
    client: anthropic.Anthropic, question: str, tools: Sequence[dict], max_tokens: int = 512
) -> tuple[list[str], anthropic.types.Message]:
    """Stream one user ``question`` with ``tools``: the input_json_delta fragments as they
    arrived, and the final message."""
    with client.messages.stream(
        model=MODEL, max_tokens=max_tokens, messages=[{"role": "user", "content": question}], tools=list(tools)
    ) as stream:
        partial = [
            e.delta.partial_json
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        message = stream.get_final_message()
    return partial, message


def tool_result_turn(question: str, tool_use: anthropic.types.Message, *results: dict) -> list[dict]:
    """The conversation after ``tool_use`` answered ``question``: the question, the
    assistant's content and one user turn holding ``results`` (tool_result blocks)."""
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": tool_use.content},
        {"role": "user", "content": list(results)},
    ]


def tool_result(tool_use_id: str, content, **extra) -> dict:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": content, **extra}


def answer_tool_use(
    client: anthropic.Anthropic,
    question: str,
    tool_use: anthropic.types.Message,
    *results: dict,
    tools: Sequence[dict],
    stream: bool = True,
) -> anthropic.types.Message:
    """The second turn: ``results`` for the tool calls of ``tool_use``; the final answer."""
    return create_or_stream(
        client,
        stream,
        model=MODEL,
        max_tokens=512,
        tools=list(tools),
        messages=tool_result_turn(question, tool_use, *results),
    )


# ---------------------------------------------------------------- errors


def request_error(
    error_class: type[anthropic.APIStatusError],
    client: anthropic.Anthropic,
    messages: list,
    stream: bool = False,
    max_tokens: int = 16,
) -> anthropic.APIStatusError:
    """The ``error_class`` the client raises for one request (streamed or not)."""
    try:
        create_or_stream(client, stream, model=MODEL, max_tokens=max_tokens, messages=messages)
    except error_class as error:
        return error
    raise AssertionError(f"the request did not raise {error_class.__name__}")


def assert_error(error: anthropic.APIStatusError, status: int, error_type: str, text: str | None = None) -> None:
    """The client's error has this status and Anthropic error type (and ``text`` in its message)."""
    assert error.status_code == status
    assert error.body["error"]["type"] == error_type
    if text is not None:
        assert text in error.message


def rejected_key_error(
    client: anthropic.Anthropic,
    fake,
    messages: list,
    *,
    wrong_key: str,
    right_key: str,
    key_attribute: str = "expected_token",
) -> anthropic.AuthenticationError:
    """One request while the fake provider wants ``wrong_key`` instead of the gateway's: the
    client's error. Afterwards the fake wants ``right_key`` again and forgets the 401 (this
    test's doing)."""
    setattr(fake, key_attribute, wrong_key)
    try:
        return request_error(anthropic.AuthenticationError, client, messages)
    finally:
        fake.violations.clear()  # the 401 was this test's doing
        setattr(fake, key_attribute, right_key)


# ---------------------------------------------------------------- count_tokens


def assert_count_tokens_is_local(
    client: anthropic.Anthropic, fake, gateway: GatewayProcess, case: str, **kwargs
) -> None:
    """count_tokens is answered by the gateway: a positive count, nothing sent to the
    provider, one logged 200."""
    tokens = client.messages.count_tokens(model=MODEL, **kwargs)
    assert tokens.input_tokens > 0
    assert fake.requests_for(case) == []
    assert exact_log_lines(gateway, case)[0]["response"]["status"] == 200


def assert_chat_tool_round_trip(
    first: dict, second: dict, command: str, printed: str, tool_id: str, first_text: str
) -> dict:
    """The two Chat Completions bodies of the CLI's Bash session: turn 1 asks to run
    ``command``; turn 2 carries the one assistant tool call (``tool_id``, Bash, that command,
    after ``first_text``) and right after it the role "tool" message holding what the command
    ``printed``. Returns that tool message."""
    assert any(m["role"] == "user" and command in json.dumps(m["content"]) for m in first["messages"])
    calls = [(i, m) for i, m in enumerate(second["messages"]) if m["role"] == "assistant" and m.get("tool_calls")]
    assert len(calls) == 1
    index, assistant = calls[0]
    assert assistant["content"] == first_text
    (call,) = assistant["tool_calls"]
    assert (call["id"], call["function"]["name"]) == (tool_id, "Bash")
    assert json.loads(call["function"]["arguments"])["command"] == command
    tool = second["messages"][index + 1]
    assert tool["role"] == "tool" and tool["tool_call_id"] == tool_id
    assert printed in tool["content"]
    return tool
