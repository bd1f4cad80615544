"""Parallel tool calls whose argument fragments the provider interleaves (index 0, 1, 0, 1 ...)
end to end: the Anthropic Python SDK -> Hypercorn serving recipes.huggingface:app (a real
process, the session's) -> the fake Hugging Face router on loopback, which streams the calls'
fragments interleaved, one ``chat.completion.chunk`` per HTTP chunk.

The gateway reassembles them (aimw.translators.openai_chat.tool_calls): the SDK's own stream
accumulator must see one whole tool_use block per call, with parsed input.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import anthropic
from aimw.translators.openai_chat.tool_calls import MAX_HELD_BYTES
from tests.e2e.harness import GatewayProcess, assert_log_usage, exact_log_lines, sdk_client
from tests.e2e.recipes import HUGGINGFACE, Usage
from tests.e2e.scenarios import USER, WEATHER_TOOL, assert_still_serving
from tests.fakes.openai_chat_server import Chunks, FakeChatServer, ToolCall, fragments, sse_reply

pytestmark = pytest.mark.e2e

TIME_TOOL = {
    "name": "get_time",
    "description": "The current time in a timezone.",
    "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
}
ASK = [{"role": "user", "content": "Weather and time in Oslo and Lima?"}]
TOOLS = [WEATHER_TOOL, TIME_TOOL]


@pytest.fixture
def client(hf_gateway: GatewayProcess, case: str) -> anthropic.Anthropic:
    return sdk_client(hf_gateway.url, case)


def interleaved_chunks(
    calls: Sequence[ToolCall], *, pieces: int = 3, text_after_turn: str | None = None, usage: tuple[int, int]
) -> list[dict]:
    """Every call's id and name first (arguments ""), then their arguments in ``pieces``
    turns (call 0's piece, call 1's ...), ``text_after_turn`` as content after the first
    turn; finish_reason tool_calls; the usage chunk."""
    c = Chunks()
    out = [c.chunk({"content": "", "role": "assistant"})]
    for index, call in enumerate(calls):
        function = {"name": call.name, "arguments": ""}
        out.append(c.chunk({"tool_calls": [{"index": index, "id": call.id, "type": "function", "function": function}]}))
    split = [fragments(call.arguments_json, pieces) for call in calls]
    for turn in range(pieces):
        for index in range(len(calls)):
            out.append(c.chunk({"tool_calls": [{"index": index, "function": {"arguments": split[index][turn]}}]}))
        if turn == 0 and text_after_turn is not None:
            out.append(c.chunk({"content": text_after_turn}))
    out.append(c.chunk({}, "tool_calls"))
    out.append(c.usage(*usage))
    return out


def test_interleaved_calls_reach_the_sdk_as_one_block_each(client, fake, hf_gateway, case):
    calls = [
        ToolCall("call_w", "get_weather", {"city": "Oslo", "unit": "celsius"}),
        ToolCall("call_t", "get_time", {"tz": "Europe/Oslo"}),
    ]
    fake.enqueue(sse_reply(interleaved_chunks(calls, usage=(140, 44))))

    seen: list[tuple[str, int]] = []
    with client.messages.stream(
        model="claude-x", max_tokens=512, messages=ASK, tools=[WEATHER_TOOL, TIME_TOOL]
    ) as stream:
        for event in stream:
            if event.type in ("content_block_start", "content_block_stop"):
                seen.append((event.type, event.index))
        message = stream.get_final_message()

    assert [(b.type, b.id, b.name, b.input) for b in message.content] == [
        ("tool_use", c.id, c.name, c.arguments) for c in calls
    ]
    assert seen == [
        ("content_block_start", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_stop", 1),
    ]
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 44
    (line,) = exact_log_lines(hf_gateway, case)
    assert_log_usage(line, 140, 44)


def test_three_interleaved_calls_and_text_among_them(client, fake, case):
    calls = [
        ToolCall("call_1", "get_weather", {"city": "Oslo"}),
        ToolCall("call_2", "get_weather", {"city": "Lima", "unit": "fahrenheit"}),
        ToolCall("call_3", "get_time", {"tz": "America/Lima"}),
    ]
    fake.enqueue(sse_reply(interleaved_chunks(calls, pieces=4, text_after_turn="Checking both cities.", usage=(9, 9))))

    with client.messages.stream(
        model="claude-x", max_tokens=512, messages=ASK, tools=[WEATHER_TOOL, TIME_TOOL]
    ) as stream:
        message = stream.get_final_message()

    assert [(b.type, getattr(b, "id", None), getattr(b, "input", None)) for b in message.content] == [
        *[("tool_use", c.id, c.arguments) for c in calls],
        ("text", None, None),
    ]
    assert message.content[-1].text == "Checking both cities."
    assert message.stop_reason == "tool_use"


def test_held_fragments_past_the_bound_end_the_stream_with_an_error(client, fake: FakeChatServer, hf_gateway, case):
    """A provider that never finishes the first call while streaming a second without end:
    past MAX_HELD_BYTES held, the stream ends with an api_error event naming the bound."""
    c = Chunks()

    def fragment(index: int, arguments: str, call_id: str | None = None) -> dict:
        call: dict = {"index": index, "function": {"arguments": arguments}}
        if call_id is not None:
            call.update(id=call_id, type="function", function={"name": "get_time", "arguments": arguments})
        return c.chunk({"tool_calls": [call]})

    piece = "x" * (64 * 1024)
    chunks = [
        fragment(0, '{"tz": ', "call_a"),
        fragment(1, '{"tz": "', "call_b"),
        *[fragment(1, piece)] * (MAX_HELD_BYTES // len(piece) + 1),
    ]
    fake.enqueue(sse_reply(chunks, done=False))

    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="claude-x", max_tokens=512, messages=ASK, tools=[TIME_TOOL]) as stream,
    ):
        stream.get_final_message()

    assert caught.value.body["error"]["type"] == "api_error"
    assert f"bound on held stream content ({MAX_HELD_BYTES} bytes held" in caught.value.body["error"]["message"]
    (line,) = exact_log_lines(hf_gateway, case)
    assert "bound on held stream content" in line["ai"]["proxy"]["meta"]["error"]
    assert_still_serving(hf_gateway, fake, case, HUGGINGFACE.completion("still serving", Usage(3, 2)), USER)
