"""The validators of bench/validate.py: the Anthropic stream validator the tests share
(:func:`read_anthropic_stream`) and the load generator's checks; valid answers pass, each
broken invariant is named."""

from __future__ import annotations

import json

import pytest

from bench.answer import Answer
from bench.fake_upstream import completion_body, stream_events
from bench.validate import (
    check_anthropic_message,
    check_anthropic_stream,
    check_openai_completion,
    check_openai_stream,
    count_events,
    parse_sse,
    read_anthropic_stream,
)

ANSWER = Answer.of(7)


def anthropic_events(answer: Answer = ANSWER) -> list[tuple[str, dict]]:
    """A well-formed Anthropic stream of ``answer``, as (event name, data) pairs."""
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "m",
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    events += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        )
        for text in answer.chunks
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


def encode(events: list[tuple[str | None, dict | str]], newline: str = "\n") -> bytes:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        lines = ([f"event: {name}"] if name is not None else []) + [f"data: {text}", ""]
        out.append(newline.join(lines) + newline)
    return "".join(out).encode()


def anthropic_message(answer: Answer = ANSWER) -> dict:
    return {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "text", "text": answer.text}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens},
    }  # fmt: skip


def test_parse_sse_handles_crlf_comments_and_multiline_data():
    body = b": comment\r\nevent: a\r\ndata: one\r\ndata: two\r\n\r\ndata:three\n\nevent: b\rdata: x\r\r"
    assert [(event.event, event.data) for event in parse_sse(body)] == [("a", "one\ntwo"), (None, "three"), ("b", "x")]


def test_count_events_counts_blank_line_terminated_events():
    assert count_events(encode(anthropic_events())) == len(anthropic_events())
    assert count_events(encode(anthropic_events(), newline="\r\n")) == len(anthropic_events())


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_well_formed_anthropic_stream_is_valid(newline):
    assert check_anthropic_stream(encode(anthropic_events(), newline), ANSWER) == []


def test_input_tokens_may_come_in_message_start_only():
    events = anthropic_events()
    events[0][1]["message"]["usage"]["input_tokens"] = ANSWER.prompt_tokens
    del events[-2][1]["usage"]["input_tokens"]
    assert check_anthropic_stream(encode(events), ANSWER) == []


def test_text_split_over_two_text_blocks_is_valid():
    events = anthropic_events()
    deltas = [event for event in events if event[0] == "content_block_delta"]
    second = [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    for event in deltas[3:]:
        event[1]["index"] = 1
    position = events.index(deltas[3])
    events[position:position] = second
    events[-3] = ("content_block_stop", {"type": "content_block_stop", "index": 1})
    assert check_anthropic_stream(encode(events), ANSWER) == []


def _mutate(mutation):
    events = anthropic_events()
    mutation(events)
    return check_anthropic_stream(encode(events), ANSWER)


def _first(events, name):
    return next(data for event, data in events if event == name)


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda e: e.pop(0), "before message_start"),
        (lambda e: e.insert(3, e[0]), "a second message_start"),
        (lambda e: _first(e, "message_start")["message"].pop("usage"), "message_start without usage"),
        (lambda e: _first(e, "content_block_start").update(index=1), "content_block_start index 1, expected 0"),
        (lambda e: _first(e, "content_block_delta").update(index=3), "content_block_delta for index 3"),
        (
            lambda e: _first(e, "content_block_delta")["delta"].update(type="input_json_delta"),
            "'input_json_delta' inside a 'text' block",
        ),
        (lambda e: _first(e, "content_block_stop").update(index=2), "content_block_stop for index 2"),
        (lambda e: e.pop(-3), "while block 0 is open"),
        (lambda e: e.pop(-2), "no message_delta"),
        (lambda e: _first(e, "message_delta")["delta"].update(stop_reason=None), "message_delta without a stop_reason"),
        (
            lambda e: _first(e, "message_delta")["delta"].update(stop_reason="max_tokens"),
            "stop_reason 'max_tokens', expected 'end_turn'",
        ),
        (lambda e: _first(e, "message_delta").pop("usage"), "message_delta without usage.output_tokens"),
        (lambda e: _first(e, "message_delta")["usage"].update(output_tokens=1), "output_tokens 1, expected 21"),
        (lambda e: _first(e, "message_delta")["usage"].update(input_tokens=5), "input_tokens 5, expected 17"),
        (lambda e: e.pop(), "no message_stop at the end"),
        (lambda e: e.append(("ping", {"type": "ping"})), "after message_stop"),
        (lambda e: e.insert(4, ("error", {"type": "error", "error": {"type": "api_error"}})), "error event"),
        (lambda e: e.insert(4, ("mystery", {"type": "mystery"})), "unknown event type 'mystery'"),
        (lambda e: e.__setitem__(1, ("pong", {"type": "ping"})), "'event: pong' but data type 'ping'"),
        (lambda e: e.__setitem__(1, (None, {"type": "ping"})), "no 'event:' line"),
        (lambda e: e.__setitem__(1, ("ping", "not json")), "data is not JSON"),
        (lambda e: e.pop(3), "text differs at character 0"),
        (lambda e: _first(e, "content_block_delta")["delta"].update(text="alpha t0"), "text differs at character 8"),
    ],
)
def test_each_broken_anthropic_stream_invariant_is_reported(mutation, expected):
    problems = _mutate(mutation)
    assert any(expected in problem for problem in problems), problems


def test_a_stream_cut_before_its_last_blank_line_is_invalid():
    body = encode(anthropic_events())[:-1]
    assert "stream does not end with a blank line" in check_anthropic_stream(body, ANSWER)


def test_a_stream_that_is_not_utf8_is_invalid():
    assert check_anthropic_stream(b"data: \xff\n\n", ANSWER) == [
        "stream is not UTF-8: 'utf-8' codec can't decode byte 0xff in position 6: invalid start byte"
    ]


# ---------------------------------------------------------------- read_anthropic_stream


def message_start(**usage: int) -> tuple[str, dict]:
    name, data = anthropic_events()[0]
    data["message"]["usage"].update(usage)
    return name, data


def block_start(index: int, block: dict | None = None) -> tuple[str, dict]:
    block = block or {"type": "text", "text": ""}
    return ("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


def block_delta(index: int, delta: dict | None = None) -> tuple[str, dict]:
    delta = delta or {"type": "text_delta", "text": "t"}
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def block_stop(index: int) -> tuple[str, dict]:
    return ("content_block_stop", {"type": "content_block_stop", "index": index})


def message_end(stop_reason: str = "end_turn", **usage: int) -> list[tuple[str, dict]]:
    """message_delta (output_tokens 1 unless given) and message_stop."""
    return [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": 1, **usage},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def tool_use(index: int, **fields) -> tuple[str, dict]:
    return block_start(index, {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}, **fields})


def json_delta(index: int, partial: str) -> tuple[str, dict]:
    return block_delta(index, {"type": "input_json_delta", "partial_json": partial})


ERROR = ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


def test_read_anthropic_stream_assembles_the_message():
    events = [
        message_start(input_tokens=30, output_tokens=1),
        ("ping", {"type": "ping"}),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        block_delta(0, {"type": "thinking_delta", "thinking": "Let me "}),
        block_delta(0, {"type": "thinking_delta", "thinking": "look."}),
        block_delta(0, {"type": "signature_delta", "signature": "c2ln"}),
        block_stop(0),
        block_start(1, {"type": "text", "text": "I will "}),
        block_delta(1, {"type": "text_delta", "text": "run it."}),
        block_stop(1),
        tool_use(2),
        json_delta(2, ""),
        json_delta(2, '{"command": '),
        json_delta(2, '"ls"}'),
        block_stop(2),
        *message_end("tool_use", output_tokens=42),
    ]
    stream = read_anthropic_stream(encode(events))
    assert stream.problems == []
    assert stream.message == {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [
            {"type": "thinking", "thinking": "Let me look.", "signature": "c2ln"},
            {"type": "text", "text": "I will run it."},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 42},  # message_start's, updated by message_delta's
    }  # fmt: skip
    assert stream.json_fragments == {2: ["", '{"command": ', '"ls"}']}
    assert stream.text == "I will run it."
    assert stream.names == [name for name, _ in events]
    assert stream.error is None


def test_a_minimal_good_stream_is_valid():
    stream = read_anthropic_stream(
        encode([message_start(), block_start(0), block_delta(0), block_stop(0), *message_end()])
    )
    assert stream.problems == []
    assert stream.text == "t"


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([message_start(), block_start(0), block_delta(0), ERROR], id="inside-a-block"),
        pytest.param([message_start(), ERROR], id="after-message-start"),
        pytest.param([ERROR], id="at-once"),
    ],
)
def test_an_error_event_is_a_well_formed_ending(events):
    stream = read_anthropic_stream(encode(events))
    assert stream.problems == []
    assert stream.error == {"type": "overloaded_error", "message": "Overloaded"}


def test_max_tokens_may_cut_the_tool_input():
    stream = read_anthropic_stream(
        encode(
            [message_start(), tool_use(0), json_delta(0, '{"command": "l'), block_stop(0), *message_end("max_tokens")]
        )
    )
    assert stream.problems == []
    assert stream.blocks[0]["input"] is None


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (message_end(), "'message_delta' before message_start"),
        ([message_start(), block_start(0), block_delta(0), *message_end()], "message_delta while block 0 is open"),
        ([message_start(), block_start(1), block_stop(1), *message_end()], "content_block_start index 1, expected 0"),
        (
            [message_start(), block_start(0), block_stop(0), block_start(0), block_stop(0), *message_end()],
            "content_block_start index 0, expected 1",
        ),
        (
            [message_start(), block_delta(0), *message_end()],
            "content_block_delta for index 0, which is not the open block",
        ),
        (
            [message_start(), block_start(0), block_delta(1), block_stop(0), *message_end()],
            "content_block_delta for index 1",
        ),
        ([message_start(), block_start(0), block_stop(0)], "no message_delta"),
        ([message_start(), block_start(0), block_stop(0)], "no message_stop at the end"),
        ([message_start(), block_start(0), block_stop(0), message_end()[1]], "message_stop without message_delta"),
        ([(None, message_start()[1]), *message_end()], "no 'event:' line"),
        (
            [message_start(), tool_use(0), json_delta(0, "{}"), block_stop(0), *message_end("end_turn")],
            "stop_reason 'end_turn' although a tool_use block was emitted",
        ),
        (
            [message_start(), tool_use(0), json_delta(0, '{"a": '), block_stop(0), *message_end("tool_use")],
            "block 0: its input_json_delta pieces are not JSON",
        ),
        (
            [message_start(), tool_use(0), json_delta(0, "[1]"), block_stop(0), *message_end("tool_use")],
            "block 0: its tool input is not a JSON object",
        ),
        (
            [message_start(), tool_use(0, id=""), block_stop(0), *message_end("tool_use")],
            "tool_use block start without an id",
        ),
        (
            [message_start(), block_start(0, {"type": "mystery"}), block_stop(0), *message_end()],
            "content_block_start with content_block type 'mystery'",
        ),
        (
            [message_start(), block_start(0), block_delta(0, {"type": "text_delta"}), block_stop(0), *message_end()],
            "text_delta without text",
        ),
        ([message_start(output_tokens=5), *message_end(output_tokens=1)], "output_tokens 1 below message_start's 5"),
        ([message_start(), *message_end("finished")], "unknown stop_reason 'finished'"),
        ([message_start(), ERROR, *message_end()], "(message_delta) after the error event"),
        (
            [message_start(), ("error", {"type": "error", "error": {"type": "api_error"}})],
            "is not {type, message} with a message",
        ),
    ],
)
def test_read_anthropic_stream_names_each_broken_invariant(events, expected):
    problems = read_anthropic_stream(encode(events)).problems
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"content": [{"type": "text", "text": "early"}]}, "message_start message is not empty"),
        ({"stop_reason": "end_turn"}, "message_start message is not empty"),
        ({"id": ""}, "message_start message has no id"),
        ({"model": None}, "message_start message has no model"),
    ],
)
def test_message_start_must_open_an_empty_message(message, expected):
    start = ("message_start", {"type": "message_start", "message": {**message_start()[1]["message"], **message}})
    problems = read_anthropic_stream(encode([start, *message_end()])).problems
    assert any(expected in problem for problem in problems), problems


def test_a_well_formed_anthropic_message_is_valid():
    assert check_anthropic_message(json.dumps(anthropic_message()).encode(), ANSWER) == []


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda m: m.update(role="user"), "not an assistant message"),
        (lambda m: m.update(content=[]), "no content block"),
        (lambda m: m["content"][0].update(text="nope"), "text differs"),
        (lambda m: m.update(stop_reason="tool_use"), "stop_reason 'tool_use'"),
        (lambda m: m.pop("usage"), "no usage"),
        (lambda m: m["usage"].update(output_tokens=0), "output_tokens 0"),
    ],
)
def test_each_broken_anthropic_message_field_is_reported(mutation, expected):
    message = anthropic_message()
    mutation(message)
    problems = check_anthropic_message(json.dumps(message).encode(), ANSWER)
    assert any(expected in problem for problem in problems), problems


def test_a_message_that_is_not_json_is_invalid():
    assert check_anthropic_message(b"<html>", ANSWER)[0].startswith("body: data is not JSON")


def test_the_fake_upstreams_own_answers_are_valid_openai():
    assert check_openai_stream(b"".join(stream_events(ANSWER)), ANSWER) == []
    assert check_openai_completion(completion_body(ANSWER), ANSWER) == []


def test_openai_checks_compare_with_the_expected_answer():
    other = Answer.of(8)
    assert any("text differs" in problem for problem in check_openai_stream(b"".join(stream_events(ANSWER)), other))
    assert "completion_tokens 21, expected 24" in check_openai_completion(completion_body(ANSWER), other)


def test_openai_stream_without_done_usage_or_finish_is_invalid():
    events = stream_events(ANSWER)
    problems = check_openai_stream(b"".join(events[:-3] + events[-2:-1]), ANSWER)
    assert "the stream does not end with data: [DONE]" in problems
    assert "finish_reasons [], expected ['stop']" in problems
    assert "no usage chunk" not in problems
    assert "no usage chunk" in check_openai_stream(b"".join(events[:-2] + events[-1:]), ANSWER)
