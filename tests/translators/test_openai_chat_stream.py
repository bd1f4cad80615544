"""Chat Completions stream -> Anthropic stream (openai_chat.ChatStreamTranslator).

Streams are driven the way SSERewriteMiddleware drives them (every network chunk of the
provider's SSE bytes to feed(), then finish() at the end of the body) and re-split at random
byte offsets. Every emitted stream goes through ``validate`` (tests/translators/stream_checks.py):
the shared Anthropic stream validator (DESIGN §6) and the Anthropic Python SDK's own stream
accumulator. The validator's own tests are in tests/bench/test_bench_validate.py; parallel
tool calls whose fragments interleave, and text among them, are in test_tool_call_reassembly.py.
"""

from __future__ import annotations

import json
import logging
import random
from itertools import pairwise
from typing import Any

import pytest

from aimw.sse import SSEDecoder
from aimw.translators.openai_chat import ChatStreamTranslator
from bench.validate import AnthropicStream
from tests.shared_data import KONG
from tests.translators.stream_checks import delta_usage, validate

CAPTURES = KONG / "openai" / "stream-captures"
MESSAGE_ID = "msg_test_0001"
MODEL = "requested-model"


# ---------------------------------------------------------------- driving a stream


def run(pieces: list[bytes], model: str = MODEL, message_id: str = MESSAGE_ID) -> bytes:
    """Drive the translator exactly as SSERewriteMiddleware does."""
    translator = ChatStreamTranslator(model, message_id=message_id)
    out = [translator.feed(piece) for piece in pieces]
    out.append(translator.finish())
    return b"".join(out)


def random_pieces(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), k=rng.randint(1, min(40, len(data) - 1))))
    bounds = [0, *cuts, len(data)]
    return [data[start:end] for start, end in pairwise(bounds)]


def run_resplit(wire: bytes, *, seed: int = 7, splits: int = 40, model: str = MODEL) -> AnthropicStream:
    """Translate ``wire`` whole, then re-split ``splits`` times: always the same bytes."""
    whole = run([wire], model)
    rng = random.Random(seed)
    for _ in range(splits):
        assert run(random_pieces(wire, rng), model) == whole
    events = [event + b"\n\n" for event in wire.split(b"\n\n") if event]
    assert run(events, model) == whole  # one whole event per read: the translator's fast path
    assert run([event.replace(b"\n", b"\r\n") for event in events], model) == whole
    return validate(whole)


def sse(*chunks: dict | str | bytes, done: bool = True) -> bytes:
    """OpenAI's wire: ``data: JSON`` + blank line per chunk, then ``data: [DONE]``."""
    out = []
    for chunk in chunks:
        if isinstance(chunk, dict):
            chunk = json.dumps(chunk)
        if isinstance(chunk, str):
            chunk = chunk.encode()
        out.append(b"data: " + chunk + b"\n\n")
    if done:
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def chunk(delta: dict | None = None, finish: str | None = None, *, model: str = "vllm/served-model") -> dict:
    return {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}],
    }


def usage_chunk(prompt: int, completion: int, cached: int | None = None) -> dict:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "model": "vllm/served-model",
        "choices": [],
        "usage": usage,
    }


def tool_delta(
    index: int, *, call_id: str | None = None, name: str | None = None, arguments: str | None = None
) -> dict:
    call: dict[str, Any] = {"index": index}
    if call_id is not None:
        call.update(id=call_id, type="function")
    function = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    call["function"] = function
    return {"tool_calls": [call]}


# ---------------------------------------------------------------- Kong's real capture


def chunks_as_sent(chunks: list[str]) -> list[bytes]:
    """The network chunks Kong's mock server sent for a chunks.json (its
    09-streaming_integration_spec.lua): each followed by a blank line, unless the next
    chunk continues it mid-event."""
    out = []
    for i, piece in enumerate(chunks):
        continued = i + 1 < len(chunks) and not chunks[i + 1].startswith("data:")
        out.append((piece if continued else piece + "\n\n").encode())
    return out


def test_kong_capture_translates() -> None:
    wire = (CAPTURES / "chat-good.sse").read_bytes()
    stream = validate(run([wire]))
    assert stream.message["id"] == MESSAGE_ID
    assert stream.message["model"] == "gpt-4-0613"  # the upstream's model, from its first chunk
    assert [block["type"] for block in stream.blocks] == ["text"]
    assert stream.text == "The answer to 1 + 1 is 2."
    assert stream.stop_reason == "end_turn"
    assert stream.names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_kong_capture_any_split_gives_identical_output() -> None:
    wire = (CAPTURES / "chat-good.sse").read_bytes()
    reference = run([wire])
    validate(reference)
    rng = random.Random(20240601)
    for _ in range(200):
        assert run(random_pieces(wire, rng)) == reference
    assert run([wire[i : i + 1] for i in range(len(wire))]) == reference
    assert run([wire.replace(b"\n", b"\r\n")]) == reference


@pytest.mark.parametrize("name", ["chat-good.chunks.json", "chat-partial-split.chunks.json"])
def test_kong_network_chunks_give_identical_output(name: str) -> None:
    wire = (CAPTURES / "chat-good.sse").read_bytes()
    pieces = chunks_as_sent(json.loads((CAPTURES / name).read_text()))
    assert b"".join(pieces) == wire  # the same bytes, cut differently
    assert run(pieces) == run([wire])


def test_message_id_is_generated_when_not_given() -> None:
    wire = (CAPTURES / "chat-good.sse").read_bytes()
    ids = []
    for _ in range(2):
        translator = ChatStreamTranslator(MODEL)
        out = translator.feed(wire) + translator.finish()
        ids.append(validate(out).message["id"])
    assert all(i.startswith("msg_") and len(i) > 4 for i in ids)
    assert ids[0] != ids[1]


def test_per_event_chunks_give_the_same_output() -> None:
    """A caller that decoded the SSE itself gives each event's data to chunk() and takes
    the writer's output: the same bytes as feeding the raw stream."""
    wire = (CAPTURES / "chat-good.sse").read_bytes()
    translator = ChatStreamTranslator(MODEL, message_id=MESSAGE_ID)
    out = []
    for event in SSEDecoder().feed(wire):
        translator.chunk(event.data)
        out.append(translator.writer.take())
    out.append(translator.finish())
    assert b"".join(out) == run([wire])


def test_what_the_stream_said_is_readable_as_it_goes() -> None:
    translator = ChatStreamTranslator(MODEL, message_id=MESSAGE_ID)
    assert (translator.model, translator.has_content, translator.done, translator.error) == (None, False, False, None)
    translator.feed(sse(chunk({"role": "assistant"}, model="served/name"), done=False))
    assert translator.model == "served/name"  # named in the first chunk
    assert not translator.has_content
    translator.feed(sse(chunk({"content": "hi"}), done=False))
    assert translator.has_content and not translator.done
    translator.feed(sse(usage_chunk(30, 2, cached=10), done=False))
    usage = translator.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (20, 10, 2)
    translator.finish()
    assert translator.done and translator.error is None


def test_fail_mid_stream_is_an_error_event() -> None:
    translator = ChatStreamTranslator(MODEL, message_id=MESSAGE_ID)
    out = translator.feed(sse(chunk({"content": "partial"}), done=False))
    out += translator.fail("api_error", "upstream provider broke off")
    stream = validate(out)
    assert stream.names[-1] == "error"
    assert stream.error == {"type": "api_error", "message": "upstream provider broke off"}
    assert stream.text == "partial"
    assert translator.error == "api_error: upstream provider broke off"
    assert translator.finish() == b""


def test_fail_after_the_stream_ended_adds_nothing() -> None:
    translator = ChatStreamTranslator(MODEL, message_id=MESSAGE_ID)
    out = translator.feed(sse(chunk({"content": "done"}), chunk({}, "stop")))
    assert translator.done
    assert translator.fail("api_error", "connection reset after the end") == b""
    assert validate(out).stop_reason == "end_turn"
    assert translator.error is None


# ---------------------------------------------------------------- hand-built streams


def test_tool_call_streamed_in_fragments() -> None:
    pieces = ['{"loc', 'ation": "Par', 'is", "un', 'it": "c"}']
    wire = sse(
        chunk({"role": "assistant", "content": None}),
        chunk(tool_delta(0, call_id="call_abc", name="get_weather", arguments="")),
        *[chunk(tool_delta(0, arguments=p)) for p in pieces],
        chunk({}, "tool_calls"),
        usage_chunk(120, 33),
    )
    stream = run_resplit(wire)
    assert stream.blocks == [
        {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"location": "Paris", "unit": "c"}}
    ]
    assert stream.json_fragments[0] == pieces  # streamed as they arrived, in order
    assert stream.stop_reason == "tool_use"
    assert delta_usage(stream)["input_tokens"] == 120 and delta_usage(stream)["output_tokens"] == 33
    assert stream.message["model"] == "vllm/served-model"


def test_tool_call_with_arguments_in_its_first_fragment() -> None:
    wire = sse(chunk(tool_delta(0, call_id="c1", name="f", arguments='{"a": [1, 2]}')), chunk({}, "tool_calls"))
    stream = run_resplit(wire)
    assert stream.blocks == [{"type": "tool_use", "id": "c1", "name": "f", "input": {"a": [1, 2]}}]


def test_two_parallel_tool_calls() -> None:
    wire = sse(
        chunk(tool_delta(0, call_id="call_1", name="get_weather", arguments="")),
        chunk(tool_delta(0, arguments='{"city": ')),
        chunk(tool_delta(0, arguments='"Oslo"}')),
        chunk(tool_delta(1, call_id="call_2", name="get_time", arguments="")),
        chunk(tool_delta(1, arguments='{"tz": "UTC"}')),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert stream.blocks == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {"tz": "UTC"}},
    ]
    assert stream.stop_reason == "tool_use"


def test_two_tool_calls_in_one_chunk() -> None:
    both = {
        "tool_calls": [
            {"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": '{"x": 1}'}},
        ]
    }
    stream = run_resplit(sse(chunk(both), chunk({}, "tool_calls")))
    assert [(b["id"], b["name"], b["input"]) for b in stream.blocks] == [("a", "f", {}), ("b", "g", {"x": 1})]


def test_text_then_tool_call() -> None:
    wire = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Let me "}),
        chunk({"content": "check."}),
        chunk(tool_delta(0, call_id="call_9", name="Bash", arguments='{"command": "ls"}')),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert [block["type"] for block in stream.blocks] == ["text", "tool_use"]
    assert stream.blocks[0]["text"] == "Let me check."
    assert stream.blocks[1]["input"] == {"command": "ls"}
    assert stream.stop_reason == "tool_use"


@pytest.mark.parametrize("field_name", ["reasoning_content", "reasoning"])
def test_reasoning_then_text(field_name: str) -> None:
    wire = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({field_name: "The user asks "}),
        chunk({field_name: "for 1+1."}),
        chunk({"content": "It is "}),
        chunk({"content": "2."}),
        chunk({}, "stop"),
    )
    stream = run_resplit(wire)
    assert [block["type"] for block in stream.blocks] == ["thinking", "text"]
    assert stream.blocks[0]["thinking"] == "The user asks for 1+1."
    assert stream.blocks[1]["text"] == "It is 2."
    assert stream.stop_reason == "end_turn"


def test_trailing_usage_chunk_with_cached_tokens() -> None:
    wire = sse(
        chunk({"content": "hi"}),
        chunk({}, "stop"),
        usage_chunk(prompt=2000, completion=7, cached=1500),
    )
    stream = run_resplit(wire)
    usage = delta_usage(stream)
    assert usage["input_tokens"] == 500
    assert usage["cache_read_input_tokens"] == 1500
    assert usage["output_tokens"] == 7
    assert stream.stop_reason == "end_turn"


def test_reasoning_tokens_are_kept_beside_the_usage() -> None:
    usage = {
        **usage_chunk(prompt=40, completion=30),
        "usage": {"prompt_tokens": 40, "completion_tokens": 30, "completion_tokens_details": {"reasoning_tokens": 12}},
    }
    translator = ChatStreamTranslator(MODEL, message_id=MESSAGE_ID)
    translator.feed(sse(chunk({"content": "x"}), chunk({}, "stop"), usage))
    assert translator.usage.reasoning_tokens == 12
    assert translator.usage.output_tokens == 30


def test_events_with_empty_data_are_ignored() -> None:
    wire = b"data: \n\n" + sse(chunk({"content": "still here"}), chunk({}, "stop"))
    stream = run_resplit(wire)
    assert stream.blocks[0]["text"] == "still here"
    assert "error" not in stream.names


def test_usage_null_on_every_chunk_then_real_usage() -> None:
    # OpenAI with include_usage sends "usage": null on each chunk before the last
    with_null = {**chunk({"content": "x"}), "usage": None}
    stream = run_resplit(sse(with_null, {**chunk({}, "stop"), "usage": None}, usage_chunk(10, 1)))
    assert delta_usage(stream)["input_tokens"] == 10 and delta_usage(stream)["output_tokens"] == 1


def test_done_ends_the_stream_and_later_data_is_ignored() -> None:
    wire = sse(chunk({"content": "a"}), chunk({}, "stop")) + sse(chunk({"content": "LATE"}), done=False)
    stream = run_resplit(wire)
    assert stream.text == "a"
    assert "LATE" not in json.dumps(stream.events)
    translator = ChatStreamTranslator(MODEL, message_id=MESSAGE_ID)
    translator.feed(sse(chunk({"content": "a"}), done=False))
    closing = translator.feed(b"data: [DONE]\n\n")
    assert closing.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert translator.done
    assert translator.feed(sse(chunk({"content": "b"}), done=False)) == b""
    assert translator.finish() == b""


def test_stream_ending_without_finish_reason_or_done() -> None:
    wire = sse(chunk({"content": "partial ans"}), chunk({"content": "wer"}), done=False)
    stream = run_resplit(wire)
    assert stream.text == "partial answer"
    assert stream.stop_reason == "end_turn"
    assert stream.names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_stream_cut_mid_tool_call_still_closes() -> None:
    wire = sse(chunk(tool_delta(0, call_id="c", name="f", arguments='{"a": 1}')), done=False)
    stream = run_resplit(wire)
    assert stream.blocks[0]["input"] == {"a": 1}
    assert stream.stop_reason == "tool_use"


def test_truncated_last_event_is_still_translated() -> None:
    wire = sse(chunk({"content": "one "}), done=False) + b"data: " + json.dumps(chunk({"content": "two"})).encode()
    assert validate(run([wire])).text == "one two"


def test_empty_stream() -> None:
    stream = validate(run([]))
    assert stream.names == ["message_start", "message_delta", "message_stop"]
    assert stream.message["model"] == MODEL
    assert stream.stop_reason == "end_turn"
    only_done = validate(run([b"data: [DONE]\n\n"]))
    assert only_done.names == stream.names


def test_keepalive_comments_are_ignored() -> None:
    wire = b": ping\n\n" + sse(chunk({"content": "x"}), chunk({}, "stop")).replace(b"\n\n", b"\n\n: keep-alive\n\n", 1)
    assert validate(run([wire])).text == "x"


@pytest.mark.parametrize(
    ("error", "error_type"),
    [
        ({"message": "Model is overloaded", "code": 503}, "overloaded_error"),
        ({"message": "Too many requests", "code": 429}, "rate_limit_error"),
        ({"message": "bad things", "type": "internal_error", "code": "internal"}, "api_error"),
        ("Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096", "api_error"),
    ],
)
def test_in_stream_error_chunk(error: dict | str, error_type: str) -> None:
    wire = sse(chunk({"content": "starting "}), {"error": error}, chunk({"content": "AFTER"}), chunk({}, "stop"))
    stream = run_resplit(wire)
    assert stream.names[-1] == "error"
    assert stream.error["type"] == error_type
    message = error if isinstance(error, str) else error["message"]
    assert message in stream.error["message"]
    assert stream.text == "starting "
    assert "AFTER" not in json.dumps(stream.events)
    assert "message_stop" not in stream.names


def test_error_as_the_first_chunk_still_starts_the_message() -> None:
    stream = validate(run([sse({"error": {"message": "nope", "code": 400}})]))
    assert stream.names == ["message_start", "error"]
    assert stream.error["type"] == "invalid_request_error"


def test_error_chunk_secrets_are_redacted() -> None:
    wire = sse(
        {"error": {"message": "invalid token hf_AbCdEfGhIjKlMnOpQrStUv for Bearer sk-live-12345678", "code": 401}}
    )
    raw = run([wire])
    assert b"hf_AbCdEfGhIjKlMnOpQrStUv" not in raw and b"sk-live-12345678" not in raw
    assert validate(raw).error["type"] == "authentication_error"


@pytest.mark.parametrize("bad", [b"{not json", b'{"choices": "nope"}', b"[1, 2]", b'"text"'])
def test_invalid_chunk_is_an_error_event(bad: bytes) -> None:
    wire = sse(chunk({"content": "ok "}), bad, chunk({"content": "AFTER"}))
    stream = run_resplit(wire)
    assert stream.names[-1] == "error"
    assert stream.error["type"] == "api_error"
    assert "AFTER" not in json.dumps(stream.events)


def test_length_wins_over_tool_use() -> None:
    # the arguments were cut by the token limit (not valid JSON): the client must hear max_tokens
    wire = sse(chunk(tool_delta(0, call_id="c", name="Write", arguments='{"content": "abc')), chunk({}, "length"))
    stream = run_resplit(wire)
    assert stream.stop_reason == "max_tokens"
    assert [b["type"] for b in stream.blocks] == ["tool_use"]
    assert "".join(stream.json_fragments[0]) == '{"content": "abc'


def test_length_with_complete_tool_call() -> None:
    wire = sse(chunk(tool_delta(0, call_id="c", name="f", arguments="{}")), chunk({}, "length"))
    assert run_resplit(wire).stop_reason == "max_tokens"


def test_finish_reason_tool_calls_without_a_tool_call_is_end_turn() -> None:
    assert run_resplit(sse(chunk({"content": "x"}), chunk({}, "tool_calls"))).stop_reason == "end_turn"


def test_finish_reason_stop_with_tool_call_is_tool_use() -> None:
    wire = sse(chunk(tool_delta(0, call_id="c", name="f", arguments="{}")), chunk({}, "stop"))
    assert run_resplit(wire).stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [("stop", "end_turn"), ("eos_token", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")],
)
def test_finish_reasons(finish: str, stop_reason: str) -> None:
    assert run_resplit(sse(chunk({"content": "x"}), chunk({}, finish))).stop_reason == stop_reason


def test_unknown_finish_reason_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aimw.translators.openai_chat"):
        stream = validate(run([sse(chunk({"content": "x"}), chunk({}, "brand_new"))]))
    assert stream.stop_reason == "end_turn"
    assert any("brand_new" in record.getMessage() for record in caplog.records)


def test_refusal_delta() -> None:
    stream = run_resplit(sse(chunk({"refusal": "I can't "}), chunk({"refusal": "do that."}), chunk({}, "stop")))
    assert stream.text == "I can't do that."
    assert stream.stop_reason == "refusal"


def test_model_comes_from_the_first_chunk_or_the_request() -> None:
    stream = validate(run([sse(chunk({"content": "x"}, model="served/name"))], model="asked/name"))
    assert stream.message["model"] == "served/name"
    no_model = {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]}
    assert validate(run([sse(no_model)], model="asked/name")).message["model"] == "asked/name"


def test_only_the_first_choice_is_translated() -> None:
    two = {
        "model": "m",
        "choices": [
            {"index": 0, "delta": {"content": "first"}, "finish_reason": None},
            {"index": 1, "delta": {"content": "SECOND"}, "finish_reason": "length"},
        ],
    }
    stream = run_resplit(sse(two, chunk({}, "stop")))
    assert stream.text == "first"
    assert stream.stop_reason == "end_turn"


def test_unicode_text_survives_any_split() -> None:
    text = ["caf\u00e9 ", "\u20ac\U0001f600 ", "\u65e5\u672c\u8a9e", ' "q" \\ \n end']
    wire = sse(*[chunk({"content": piece}) for piece in text], chunk({}, "stop"))
    assert run_resplit(wire, splits=100).text == "".join(text)


def test_two_streams_interleaved_do_not_share_state() -> None:
    """DESIGN §8: stream state declared at class level corrupted concurrent streams elsewhere."""
    first = sse(
        chunk({"content": "alpha"}),
        chunk(tool_delta(0, call_id="a", name="f", arguments="{}")),
        chunk({}, "tool_calls"),
    )
    second = sse(chunk({"reasoning_content": "hmm"}), chunk({"content": "beta"}), chunk({}, "stop"), usage_chunk(5, 2))
    alone = [run([first], message_id="msg_1"), run([second], message_id="msg_2")]
    translators = [ChatStreamTranslator(MODEL, message_id="msg_1"), ChatStreamTranslator(MODEL, message_id="msg_2")]
    outputs: list[list[bytes]] = [[], []]
    rng = random.Random(3)
    pieces = [random_pieces(first, rng), random_pieces(second, rng)]
    for step in range(max(map(len, pieces))):
        for k in (0, 1):
            if step < len(pieces[k]):
                outputs[k].append(translators[k].feed(pieces[k][step]))
    for k in (0, 1):
        outputs[k].append(translators[k].finish())
    assert [b"".join(o) for o in outputs] == alone
    assert validate(alone[0]).stop_reason == "tool_use"
    assert validate(alone[1]).stop_reason == "end_turn"


# ---------------------------------------------------------------- tool calls without index, or sharing one


def bare_tool_delta(
    *, index: int | None = None, call_id: str | None = None, name: str | None = None, arguments: Any = None
) -> dict:
    """A tool_calls fragment with only the fields given (no ``index`` unless given)."""
    call: dict[str, Any] = {"type": "function", "function": {}}
    if index is not None:
        call["index"] = index
    if call_id is not None:
        call["id"] = call_id
    if name is not None:
        call["function"]["name"] = name
    if arguments is not None:
        call["function"]["arguments"] = arguments
    return {"tool_calls": [call]}


def test_parallel_tool_calls_without_index_keep_one_block_each() -> None:
    """Gemini's OpenAI-compatible API and mistral.rs: whole calls, each with an id, no index."""
    wire = sse(
        chunk(bare_tool_delta(call_id="call_a", name="get_weather", arguments='{"city": "Oslo"}')),
        chunk(bare_tool_delta(call_id="call_b", name="get_time", arguments='{"tz": "UTC"}')),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert stream.blocks == [
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {"tz": "UTC"}},
    ]
    assert stream.stop_reason == "tool_use"


def test_tool_call_fragments_without_index_continue_the_open_block() -> None:
    wire = sse(
        chunk(bare_tool_delta(call_id="call_a", name="f", arguments='{"x": ')),
        chunk(bare_tool_delta(arguments="1}")),
        chunk(bare_tool_delta(call_id="call_b", name="g", arguments='{"y": ')),
        chunk(bare_tool_delta(arguments="2}")),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert [(b["id"], b["name"], b["input"]) for b in stream.blocks] == [
        ("call_a", "f", {"x": 1}),
        ("call_b", "g", {"y": 2}),
    ]


def test_parallel_tool_calls_sharing_an_index_keep_one_block_each() -> None:
    """Some Ollama and Dynamo builds send every call at index 0, each with its own id."""
    wire = sse(
        chunk(tool_delta(0, call_id="call_a", name="f", arguments='{"x": 1}')),
        chunk(tool_delta(0, call_id="call_b", name="g", arguments='{"y": ')),
        chunk(tool_delta(0, arguments="2}")),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert [(b["id"], b["name"], b["input"]) for b in stream.blocks] == [
        ("call_a", "f", {"x": 1}),
        ("call_b", "g", {"y": 2}),
    ]
    assert stream.stop_reason == "tool_use"


def test_a_repeated_id_continues_its_block() -> None:
    wire = sse(
        chunk(tool_delta(0, call_id="call_a", name="f", arguments='{"x": ')),
        chunk(tool_delta(0, call_id="call_a", arguments="1}")),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert [(b["id"], b["input"]) for b in stream.blocks] == [("call_a", {"x": 1})]
    assert stream.json_fragments[0] == ['{"x": ', "1}"]


# ---------------------------------------------------------------- finish_reason "" on every chunk


def test_empty_finish_reason_on_every_chunk_is_no_finish_reason(caplog: pytest.LogCaptureFixture) -> None:
    """SGLang 0.4.x and older Ollama send ``finish_reason: ""`` until the last chunk."""
    wire = sse(
        chunk({"content": "Let me "}, ""),
        chunk({"content": "check."}, ""),
        chunk(tool_delta(0, call_id="call_a", name="f", arguments='{"x": ')),
        chunk(tool_delta(0, arguments="1"), ""),
        chunk(tool_delta(0, arguments="}"), ""),
        chunk({}, "tool_calls"),
    )
    with caplog.at_level(logging.WARNING, logger="aimw.translators.openai_chat"):
        stream = run_resplit(wire)
    assert [b["type"] for b in stream.blocks] == ["text", "tool_use"]
    assert stream.text == "Let me check."
    assert stream.blocks[1]["input"] == {"x": 1}
    assert stream.stop_reason == "tool_use"
    assert not caplog.records


def test_empty_finish_reason_to_the_end_is_end_turn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aimw.translators.openai_chat"):
        stream = run_resplit(sse(chunk({"content": "a"}, ""), chunk({"content": "b"}, "")))
    assert stream.text == "ab" and len(stream.blocks) == 1
    assert stream.stop_reason == "end_turn"
    assert not caplog.records


# ---------------------------------------------------------------- arguments as a JSON object


def test_object_arguments_are_one_input_json_delta() -> None:
    """TGI and some llama.cpp builds send ``arguments`` as an object, not a JSON string."""
    wire = sse(
        chunk(tool_delta(0, call_id="call_a", name="get_weather")),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": {"city": "Oslo", "days": [1, 2]}}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "g", "arguments": {}}}]}),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert [(b["id"], b["name"], b["input"]) for b in stream.blocks] == [
        ("call_a", "get_weather", {"city": "Oslo", "days": [1, 2]}),
        ("call_b", "g", {}),
    ]
    assert len(stream.json_fragments[0]) == 1 and len(stream.json_fragments[1]) == 1
