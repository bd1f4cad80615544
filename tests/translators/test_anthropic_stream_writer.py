"""AnthropicStreamWriter: the Anthropic side of every translated stream (DESIGN §6).

Every stream written here is checked by the same validator (and the Anthropic SDK's
accumulator) as the translated Chat Completions streams.
"""

from __future__ import annotations

import re

import pytest

from aimw.exchange import Usage
from aimw.translators.anthropic import AnthropicStreamWriter
from aimw.translators.anthropic.stream_writer import TEXT, THINKING, TOOL_USE, new_message_id, new_tool_use_id
from tests.asgi_helpers import sse_events
from tests.translators.stream_checks import delta_usage, validate

MODEL = "served-model"
MESSAGE_ID = "msg_writer_0001"


def writer() -> AnthropicStreamWriter:
    return AnthropicStreamWriter(MODEL, MESSAGE_ID)


# ---------------------------------------------------------------- ids


@pytest.mark.parametrize(("new_id", "prefix"), [(new_message_id, "msg_"), (new_tool_use_id, "toolu_")])
def test_ids_are_128_random_bits(new_id, prefix: str) -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(prefix + "[0-9a-f]{32}", i) for i in ids)


def test_message_id_is_generated_when_not_given() -> None:
    first, second = AnthropicStreamWriter(MODEL), AnthropicStreamWriter(MODEL)
    assert first.message_id.startswith("msg_") and first.message_id != second.message_id
    first.end("end_turn")
    assert validate(first.take()).message["id"] == first.message_id


# ---------------------------------------------------------------- the invariants


def test_a_full_stream_is_well_formed() -> None:
    w = writer()
    w.thinking("Let me ")
    w.thinking("think.")
    w.signature("sig-1")
    w.text("Calling ")
    w.text("a tool.")
    assert w.tool_use("toolu_a", "get_weather") == 2
    w.input_json('{"city": ')
    w.input_json('"Oslo"}')
    w.usage = Usage(input_tokens=12, output_tokens=34, cache_read_input_tokens=5)
    w.end("tool_use")
    stream = validate(w.take())
    assert stream.message["id"] == MESSAGE_ID
    assert stream.message["model"] == MODEL
    assert stream.events[0][1]["message"]["usage"] == {  # message_start's
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert stream.blocks == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig-1"},
        {"type": "text", "text": "Calling a tool."},
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
    ]
    assert stream.json_fragments[2] == ['{"city": ', '"Oslo"}']
    assert stream.stop_reason == "tool_use"
    assert delta_usage(stream) == {
        "input_tokens": 12,
        "output_tokens": 34,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 5,
    }
    assert stream.names[-1] == "message_stop"
    assert w.done and w.tool_used and w.error is None


def test_an_empty_message() -> None:
    w = writer()
    assert not w.started and not w.has_content
    w.end("end_turn")
    stream = validate(w.take())
    assert stream.names == ["message_start", "message_delta", "message_stop"]
    assert stream.blocks == []
    assert not w.has_content and not w.tool_used


def test_start_is_written_once_and_first() -> None:
    w = writer()
    w.start()
    w.start()
    w.text("x")
    w.start()
    w.end("end_turn")
    names = [name for name, _ in sse_events(w.take())]
    assert names.count("message_start") == 1 and names[0] == "message_start"


def test_the_model_may_change_until_start() -> None:
    w = writer()
    w.model = "named-by-the-provider"
    w.start()
    w.model = "too-late"
    w.end("end_turn")
    assert validate(w.take()).message["model"] == "named-by-the-provider"


def test_end_closes_the_open_block_and_ends_once() -> None:
    w = writer()
    w.text("open")
    w.end("max_tokens")
    out = w.take()
    assert [name for name, _ in sse_events(out)][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert validate(out).stop_reason == "max_tokens"
    w.end("end_turn")
    w.fail("api_error", "too late")
    assert w.take() == b""
    assert w.error is None


# ---------------------------------------------------------------- block indices


def test_blocks_are_indexed_from_zero_one_open_at_a_time() -> None:
    w = writer()
    w.text("a")
    assert w.open_block(TEXT) == 0 and w.open_block(TOOL_USE) == -1
    w.text("b")  # the same block
    w.thinking("c")  # closes the text block
    assert w.open_block(THINKING) == 1 and w.open_block(TEXT) == -1
    assert w.tool_use("toolu_1", "f") == 2
    assert w.tool_use("toolu_2", "g") == 3  # parallel calls: one block each
    assert w.open_block(TOOL_USE) == 3
    w.close_block()
    assert w.open_block(TOOL_USE) == -1
    w.close_block()  # nothing open: nothing written
    w.text("d")  # a new text block after a close
    assert w.open_block(TEXT) == 4
    w.end("tool_use")
    out = w.take()
    events = sse_events(out)
    starts = [data["index"] for name, data in events if name == "content_block_start"]
    stops = [data["index"] for name, data in events if name == "content_block_stop"]
    assert starts == stops == [0, 1, 2, 3, 4]
    stream = validate(out)
    assert [block["type"] for block in stream.blocks] == ["text", "thinking", "tool_use", "tool_use", "text"]
    assert stream.text == "abd"


def test_has_content_once_a_block_started() -> None:
    w = writer()
    w.start()
    assert not w.has_content
    w.input_json('{"a": 1}')  # no tool_use block open: ignored
    w.signature("s")  # no thinking block open: ignored
    assert not w.has_content
    w.text("x")
    assert w.has_content


def test_input_json_only_into_an_open_tool_use_block() -> None:
    w = writer()
    w.tool_use("toolu_1", "f")
    w.input_json("")  # no empty input_json_delta
    w.input_json('{"a": 1}')
    w.text("then text")
    w.input_json('{"b": 2}')  # the tool_use block is closed: ignored
    w.end("tool_use")
    stream = validate(w.take())
    assert stream.json_fragments == {0: ['{"a": 1}']}
    assert stream.blocks[0]["input"] == {"a": 1}


@pytest.mark.parametrize("before", ["nothing", "start", "text", "tool_use", "closed thinking"])
def test_signature_is_ignored_without_an_open_thinking_block(before: str) -> None:
    w = writer()
    if before == "start":
        w.start()
    elif before == "text":
        w.text("t")
    elif before == "tool_use":
        w.tool_use("toolu_1", "f")
    elif before == "closed thinking":
        w.thinking("t")
        w.close_block()
    w.signature("sig-ignored")
    w.end("tool_use" if w.tool_used else "end_turn")
    out = w.take()
    assert b"signature_delta" not in out
    assert b"sig-ignored" not in out
    validate(out)


def test_signature_goes_to_the_open_thinking_block() -> None:
    w = writer()
    w.thinking("t")
    w.signature("sig-")
    w.signature("kept")
    w.end("end_turn")
    assert validate(w.take()).blocks == [{"type": "thinking", "thinking": "t", "signature": "sig-kept"}]


# ---------------------------------------------------------------- fail


def test_fail_before_anything_still_starts_the_message() -> None:
    w = writer()
    w.fail("overloaded_error", "Model is overloaded")
    stream = validate(w.take())
    assert stream.names == ["message_start", "error"]
    assert stream.error == {"type": "overloaded_error", "message": "Model is overloaded"}
    assert w.done and w.error == "overloaded_error: Model is overloaded"


def test_fail_after_start_ends_the_stream_with_an_error_event() -> None:
    w = writer()
    w.text("partial ")
    first = w.take()
    w.fail("api_error", "upstream broke off")
    rest = w.take()
    stream = validate(first + rest)
    assert stream.names == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert [name for name, _ in sse_events(rest)] == ["error"]  # message_start is not written twice
    assert stream.text == "partial "
    assert w.done and w.error == "api_error: upstream broke off"
    w.end("end_turn")
    w.fail("api_error", "again")
    assert w.take() == b""
    assert w.error == "api_error: upstream broke off"


def test_fail_redacts_secrets() -> None:
    w = writer()
    w.fail("authentication_error", "invalid token hf_AbCdEfGhIjKlMnOpQrStUv for Bearer sk-live-12345678")
    out = w.take()
    for secret in ("hf_AbCdEfGhIjKlMnOpQrStUv", "sk-live-12345678"):
        assert secret.encode() not in out
        assert w.error is not None and secret not in w.error
    assert validate(out).error["type"] == "authentication_error"


@pytest.mark.parametrize("ending", ["end", "fail"])
def test_nothing_is_written_after_the_stream_ended(ending: str) -> None:
    w = writer()
    w.text("a")
    if ending == "end":
        w.end("end_turn")
    else:
        w.fail("api_error", "broke off")
    w.take()
    w.text("late")
    w.thinking("late")
    w.tool_use("toolu_late", "f")
    w.input_json("{}")
    w.close_block()
    assert w.take() == b""


# ---------------------------------------------------------------- take


def test_take_drains_what_was_written_since_the_last_take() -> None:
    w = writer()
    assert w.take() == b""
    w.start()
    start = w.take()
    assert [name for name, _ in sse_events(start)] == ["message_start"]
    assert w.take() == b""
    w.text("a")
    w.text("b")
    text = w.take()
    assert [name for name, _ in sse_events(text)] == [
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
    ]
    assert w.take() == b""
    w.end("end_turn")
    end = w.take()
    assert [name for name, _ in sse_events(end)] == ["content_block_stop", "message_delta", "message_stop"]
    assert w.take() == b""
    again = writer()
    again.text("a")
    again.text("b")
    again.end("end_turn")
    assert start + text + end == again.take()  # taking in pieces loses and repeats nothing


def test_two_writers_do_not_share_state() -> None:
    """DESIGN §8: stream state declared at class level corrupted concurrent streams elsewhere."""
    first, second = AnthropicStreamWriter(MODEL, "msg_1"), AnthropicStreamWriter(MODEL, "msg_2")
    first.tool_use("toolu_1", "f")
    second.text("hello")
    first.usage.output_tokens = 7
    second.end("end_turn")
    first.end("tool_use")
    one, two = validate(first.take()), validate(second.take())
    assert (one.message["id"], one.blocks[0]["type"], delta_usage(one)["output_tokens"]) == ("msg_1", "tool_use", 7)
    assert len(one.blocks) == 1
    assert (two.message["id"], two.text, delta_usage(two)["output_tokens"]) == ("msg_2", "hello", 0)
    assert first.tool_used and not second.tool_used


# ---------------------------------------------------------------- the content written, counted


def test_content_chars_count_the_content_written_and_nothing_else() -> None:
    w = writer()
    w.thinking("Let me ")  # 7
    w.signature("sig-not-counted")
    w.text("café ☕")  # 6 characters, whatever their encoding
    w.tool_use("toolu_a", "get_weather")  # 11: the model writes the tool's name
    w.input_json('{"city": "Oslo"}')  # 16
    w.input_json("")
    w.close_block()
    w.input_json("ignored: no tool_use block is open")
    w.end("tool_use")
    w.text("after the end")
    assert w.content_chars == 7 + 6 + 11 + 16
