"""Gemini streamGenerateContent?alt=sse -> Anthropic stream (gemini.GeminiStreamTranslator).

Streams are driven as SSERewriteMiddleware drives them (each network chunk to feed(), then
finish() at the end of the body), re-split at random byte offsets and byte by byte, and
with CRLF line ends: the output is always the same (tool_use ids are random, so they are
compared as placeholders). Every emitted stream passes the shared Anthropic stream
validator (tests.asgi_helpers.anthropic_stream, DESIGN §6) and the Anthropic SDK's own
accumulator. Kong's Gemini captures are JSON arrays (streamGenerateContent without
``alt=sse``); with ``alt=sse`` Google sends the same GenerateContentResponse objects, one per
``data:`` line, which is how they are replayed here.
"""

from __future__ import annotations

import json
import logging
import random
import re
from typing import Any

import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent

from aimw.translators import gemini
from tests.asgi_helpers import anthropic_stream
from tests.shared_data import KONG

CAPTURES = KONG / "gemini" / "stream-captures"
CHUNK_FORMATS = KONG / "gemini" / "unit" / "streaming-chunk-formats"
MESSAGE_ID = "msg_test_gemini"
MODEL = "requested-model"
TOOL_USE_ID = re.compile(rb"toolu_[0-9a-f]{32}")
_SDK_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


def validate(raw: bytes) -> Any:
    """The shared validator, then (for a finished stream) the SDK's accumulator agreeing."""
    stream = anthropic_stream(raw)
    if stream.error is None:
        snapshot = None
        buffers: dict[int, bytes] = {}
        for _, data in stream.events:
            snapshot = accumulate_event(
                event=_SDK_EVENT.validate_python(data), current_snapshot=snapshot, json_bufs=buffers
            )
        assert snapshot is not None and snapshot.stop_reason == stream.stop_reason
        compared = {"type", "text", "thinking", "signature", "id", "name", "input"}
        assert [b.model_dump(include=compared) for b in snapshot.content] == [
            {k: v for k, v in block.items() if k in compared} for block in stream.blocks
        ]
    return stream


def sse(*responses: dict, crlf: bool = False) -> bytes:
    """Gemini's alt=sse wire: ``data: <compact JSON>`` and a blank line per response."""
    end = b"\r\n\r\n" if crlf else b"\n\n"
    return b"".join(b"data: " + json.dumps(r, separators=(",", ":")).encode() + end for r in responses)


def run(pieces: list[bytes], model: str = MODEL) -> bytes:
    translator = gemini.GeminiStreamTranslator(model, message_id=MESSAGE_ID)
    out = [translator.feed(piece) for piece in pieces]
    out.append(translator.finish())
    return b"".join(out)


def placeholders(out: bytes) -> bytes:
    return TOOL_USE_ID.sub(b"toolu_X", out)


def run_resplit(responses: list[dict], *, seed: int = 7, splits: int = 40) -> Any:
    """Translate the wire whole, then cut anywhere, byte by byte, and with CRLF: the same."""
    wire = sse(*responses)
    whole = run([wire])
    rng = random.Random(seed)
    for _ in range(splits):
        cuts = sorted(rng.sample(range(1, len(wire)), k=min(30, len(wire) - 1)))
        pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
        assert placeholders(run(pieces)) == placeholders(whole)
    assert placeholders(run([wire[i : i + 1] for i in range(len(wire))])) == placeholders(whole)
    assert placeholders(run([sse(*responses, crlf=True)])) == placeholders(whole)
    for crlf in (False, True):  # one whole event per read: the translator's fast path
        assert placeholders(run([sse(response, crlf=crlf) for response in responses])) == placeholders(whole)
    return validate(whole)


def chunk(parts: list[dict] | None = None, finish: str | None = None, usage: dict | None = None, **fields: Any) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts or []}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", **fields}
    if usage is not None:
        body["usageMetadata"] = usage
    return body


def array_capture(text: str) -> list[dict]:
    elements = json.loads(text)
    assert isinstance(elements, list) and elements
    return elements


# ---------------------------------------------------------------- Kong's captures


def test_kong_text_capture() -> None:
    stream = run_resplit(array_capture((CAPTURES / "streamGenerateContent-text.json-array.txt").read_text()))
    assert stream.message["id"] == MESSAGE_ID
    assert stream.message["model"] == MODEL  # the capture names no modelVersion
    assert [b["type"] for b in stream.blocks] == ["text"]
    assert stream.text == "Gemini is a powerful model."
    assert stream.stop_reason == "end_turn"  # "NULL" on the first chunks, STOP on the last


def test_kong_network_chunks_are_the_same_array() -> None:
    chunks = json.loads((CAPTURES / "streamGenerateContent-text.chunks.json").read_text())
    assert array_capture("".join(chunks)) == array_capture(
        (CAPTURES / "streamGenerateContent-text.json-array.txt").read_text()
    )


def test_kong_function_call_capture() -> None:
    stream = run_resplit(array_capture((CAPTURES / "streamGenerateContent-functionCall.json-array.txt").read_text()))
    assert stream.message["model"] == "gemini-1.5-pro-001"
    assert len(stream.blocks) == 1
    block = stream.blocks[0]
    assert (block["type"], block["name"], block["input"]) == ("tool_use", "add", {"a": 2, "b": 12})
    assert re.fullmatch(r"toolu_[0-9a-f]{32}", block["id"])
    assert stream.json_fragments == {0: ['{"a":2,"b":12}']}  # whole args: one input_json_delta
    assert stream.stop_reason == "tool_use"  # Gemini says STOP
    assert (stream.usage["input_tokens"], stream.usage["output_tokens"]) == (47, 3)


def test_kong_thinking_usage_capture() -> None:
    responses = json.loads((CHUNK_FORMATS / "gemini" / "input.json").read_text())
    expected = [
        json.loads(item["data"])
        for item in json.loads((CHUNK_FORMATS / "gemini" / "expected-output.json").read_text())[:-1]
    ]
    assert responses == expected
    stream = run_resplit(responses)
    assert stream.text == "blahblahblah that, to us, appear intelligent."
    assert stream.message["model"] == "gemini-2.5-flash"
    assert (stream.usage["input_tokens"], stream.usage["output_tokens"]) == (4, 1731 + 1241)  # thoughts are output


@pytest.mark.parametrize("name", ["partial-json-split", "partial-json-split-three-parts"])
def test_kong_split_array_chunks(name: str) -> None:
    folder = CHUNK_FORMATS / name
    text = "".join(path.read_text() for path in sorted(folder.glob("input-*.bin")))
    stream = run_resplit(array_capture(text + "]"))  # the captures stop before the closing bracket
    assert stream.text == (folder / "expected-output.bin").read_text()
    assert [b["type"] for b in stream.blocks] == ["text"]  # STOP on every chunk ends nothing early
    assert (stream.usage["input_tokens"], stream.usage["output_tokens"]) == (6, 65)


@pytest.mark.parametrize(
    ("name", "opening", "closing"), [("partial-json-beginning", "", "]"), ("partial-json-end", "[", "")]
)
def test_kong_first_and_last_array_chunks(name: str, opening: str, closing: str) -> None:
    folder = CHUNK_FORMATS / name
    text = (folder / "input.bin").read_text().lstrip(",")
    responses = array_capture(opening + text + closing)
    expected = [
        json.loads(item["data"])
        for item in json.loads((folder / "expected-output.json").read_text())
        if item["data"] != "[DONE]"
    ]
    assert responses == expected
    stream = run_resplit(responses)
    assert stream.text == "".join(part["text"] for r in responses for part in r["candidates"][0]["content"]["parts"])


# ---------------------------------------------------------------- hand-built streams


def test_thoughts_text_and_calls_with_their_signatures() -> None:
    stream = run_resplit(
        [
            chunk([{"text": "Let me think", "thought": True}]),
            chunk([{"text": " it through.", "thought": True, "thoughtSignature": "dGhvdWdodA=="}]),
            chunk([{"text": "I'll list "}]),
            chunk([{"text": "the files."}]),
            chunk([{"functionCall": {"name": "Bash", "args": {"command": "ls"}}, "thoughtSignature": "Y2FsbA+/"}]),
            chunk([{"functionCall": {"name": "Bash", "args": {"command": "pwd"}}}]),
            chunk(
                [{"text": "", "thoughtSignature": "dGV4dA=="}],
                "STOP",
                {"promptTokenCount": 10, "candidatesTokenCount": 5},
            ),
        ]
    )
    blocks = stream.blocks
    assert [b["type"] for b in blocks] == ["thinking", "text", "tool_use", "tool_use", "thinking"]
    assert blocks[0] == {
        "type": "thinking",
        "thinking": "Let me think it through.",
        "signature": "gemini-thought:dGhvdWdodA==",
    }
    assert blocks[1]["text"] == "I'll list the files."
    assert re.fullmatch(r"toolu_[0-9a-f]{32}_gsig_Y2FsbA-_", blocks[2]["id"])
    assert re.fullmatch(r"toolu_[0-9a-f]{32}", blocks[3]["id"])  # no signature came, none is invented
    assert blocks[4] == {"type": "thinking", "thinking": "", "signature": "gemini-text:dGV4dA=="}
    assert stream.stop_reason == "tool_use"


def test_a_text_signature_mid_text_splits_the_text_block() -> None:
    stream = run_resplit([chunk([{"text": "Hello", "thoughtSignature": "c2ln"}]), chunk([{"text": " again"}], "STOP")])
    assert [(b["type"], b.get("text"), b.get("signature")) for b in stream.blocks] == [
        ("text", "Hello", None),
        ("thinking", None, "gemini-text:c2ln"),
        ("text", " again", None),
    ]


def test_parallel_calls_in_one_chunk_keep_one_block_each() -> None:
    stream = run_resplit(
        [
            chunk(
                [
                    {"functionCall": {"name": "Read", "args": {"path": "a"}}},
                    {"functionCall": {"name": "Read", "args": {"path": "b"}}},
                ],
                "STOP",
            )
        ]
    )
    assert [(b["name"], b["input"]) for b in stream.blocks] == [("Read", {"path": "a"}), ("Read", {"path": "b"})]
    assert stream.blocks[0]["id"] != stream.blocks[1]["id"]


@pytest.mark.parametrize("one_chunk", [False, True])
def test_text_after_a_function_call_is_written_where_it_came(one_chunk: bool) -> None:
    """Gemini sends each functionCall whole, so nothing is held (unlike interleaved Chat
    Completions calls, openai_chat.tool_calls): text after a call is its own block, in order,
    as in the JSON answer; the message still stops for tool_use."""
    parts = [
        {"functionCall": {"name": "Read", "args": {"path": "a"}}},
        {"text": "Reading both."},
        {"functionCall": {"name": "Read", "args": {"path": "b"}}},
        {"text": " Then I compare them."},
    ]
    responses = [chunk(parts, "STOP")] if one_chunk else [chunk([part]) for part in parts] + [chunk([], "STOP")]
    stream = run_resplit(responses)
    assert [(b["type"], b.get("input") or b.get("text")) for b in stream.blocks] == [
        ("tool_use", {"path": "a"}),
        ("text", "Reading both."),
        ("tool_use", {"path": "b"}),
        ("text", " Then I compare them."),
    ]
    assert stream.stop_reason == "tool_use"
    message = json.loads(gemini.response_to_anthropic(json.dumps(chunk(parts, "STOP")).encode(), MODEL).body)
    assert [b["type"] for b in message["content"]] == [b["type"] for b in stream.blocks]


def test_usage_is_cumulative_and_the_last_counts() -> None:
    stream = run_resplit(
        [
            chunk([{"text": "a"}], usage={"promptTokenCount": 100, "candidatesTokenCount": 1}),
            chunk(
                [{"text": "b"}],
                "STOP",
                {
                    "promptTokenCount": 100,
                    "cachedContentTokenCount": 40,
                    "candidatesTokenCount": 9,
                    "thoughtsTokenCount": 20,
                },
            ),
        ]
    )
    assert stream.usage == {
        "input_tokens": 60,
        "output_tokens": 29,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 40,
    }
    translator = gemini.GeminiStreamTranslator(MODEL)
    translator.feed(sse(chunk([{"text": "b"}], "STOP", {"promptTokenCount": 5, "thoughtsTokenCount": 7})))
    assert (translator.usage.reasoning_tokens, translator.usage.output_tokens) == (7, 7)


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("STOP", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "refusal"),
        ("RECITATION", "refusal"),
        ("BLOCKLIST", "refusal"),
        ("PROHIBITED_CONTENT", "refusal"),
        ("SPII", "refusal"),
        ("LANGUAGE", "refusal"),
        ("OTHER", "end_turn"),
        ("FINISH_REASON_UNSPECIFIED", "end_turn"),
        (None, "end_turn"),
    ],
)
def test_every_finish_reason(finish: str | None, stop_reason: str) -> None:
    assert run_resplit([chunk([{"text": "partial"}]), chunk(None, finish)]).stop_reason == stop_reason


def test_an_unknown_finish_reason_is_end_turn_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aimw.translators.gemini"):
        assert validate(run([sse(chunk([{"text": "x"}], "BRAND_NEW"))])).stop_reason == "end_turn"
    assert "BRAND_NEW" in caplog.text


def test_a_call_cut_by_max_tokens_is_max_tokens() -> None:
    assert run_resplit([chunk([{"functionCall": {"name": "f", "args": {}}}], "MAX_TOKENS")]).stop_reason == "max_tokens"


@pytest.mark.parametrize("finish", ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"])
def test_a_failed_function_call_ends_with_a_retryable_error(finish: str) -> None:
    failed = chunk(None, finish)
    failed["candidates"][0]["finishMessage"] = "Malformed function call: f("
    stream = run_resplit([chunk([{"text": "Calling"}]), failed])
    assert stream.text == "Calling"
    assert stream.error["type"] == "api_error"
    assert finish in stream.error["message"] and "f(" in stream.error["message"]
    assert "message_delta" not in stream.names


def test_an_error_object_in_the_stream() -> None:
    error = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
        }
    }
    translator = gemini.GeminiStreamTranslator(MODEL, message_id=MESSAGE_ID)
    out = translator.feed(sse(chunk([{"text": "so far"}]), error)) + translator.finish()
    stream = validate(out)
    assert stream.text == "so far"
    assert stream.error == {
        "type": "rate_limit_error",
        "message": "RESOURCE_EXHAUSTED: Resource has been exhausted (e.g. check quota).",
    }
    assert translator.error == "rate_limit_error: RESOURCE_EXHAUSTED: Resource has been exhausted (e.g. check quota)."
    assert translator.done and translator.feed(sse(chunk([{"text": "more"}]))) == b""


def test_a_blocked_prompt_is_an_invalid_request_naming_the_reason() -> None:
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 8}}
    stream = validate(run([sse(blocked)]))
    assert stream.error["type"] == "invalid_request_error" and "PROHIBITED_CONTENT" in stream.error["message"]
    assert stream.blocks == []


@pytest.mark.parametrize(
    ("wire", "words"), [(b"", "before any Gemini response"), (b"data: {not json\n\n", "invalid stream chunk")]
)
def test_a_stream_with_no_response_is_an_error_never_an_empty_success(wire: bytes, words: str) -> None:
    stream = validate(run([wire]))
    assert stream.error["type"] == "api_error" and words in stream.error["message"]


def test_a_body_that_is_not_sse_is_an_error() -> None:
    """Without alt=sse Google sends a JSON array: no SSE event, so not a success."""
    wire = (CAPTURES / "streamGenerateContent-text.json-array.txt").read_bytes()
    assert validate(run([wire])).error["type"] == "api_error"


def test_comments_and_empty_events_are_ignored() -> None:
    wire = b": keep-alive\n\ndata:\n\n" + sse(chunk([{"text": "hi"}], "STOP"))
    assert validate(run([wire])).text == "hi"


def test_a_truncated_last_event_is_still_translated() -> None:
    wire = sse(chunk([{"text": "hi"}]), chunk([{"text": "!"}], "STOP"))[:-2]
    assert validate(run([wire])).text == "hi!"


def test_an_oversized_event_ends_the_stream() -> None:
    translator = gemini.GeminiStreamTranslator(MODEL)
    out = translator.feed(b"data: " + b"x" * (4 * 1024 * 1024 + 1)) + translator.finish()
    assert validate(out).error["type"] == "api_error"


def test_fail_after_content_and_after_the_end() -> None:
    translator = gemini.GeminiStreamTranslator(MODEL, message_id=MESSAGE_ID)
    out = translator.feed(sse(chunk([{"text": "half"}])))
    assert translator.has_content and translator.model == "gemini-2.5-flash"
    out += translator.fail("api_error", "upstream connection lost")
    assert validate(out).error == {"type": "api_error", "message": "upstream connection lost"}
    finished = gemini.GeminiStreamTranslator(MODEL)
    finished.feed(sse(chunk([{"text": "all"}], "STOP")))
    finished.finish()
    assert finished.fail("api_error", "late") == b"" and finished.error is None


def test_the_model_is_unknown_until_the_stream_starts() -> None:
    translator = gemini.GeminiStreamTranslator(MODEL)
    assert translator.model is None and not translator.has_content and translator.rewrites_headers
    assert (
        translator.feed(b'data: {"candidates":[{"content":{"parts":[{"text":"a"}]}}]') == b""
    )  # not a whole event yet
    assert translator.model is None


def test_stream_and_json_answers_give_the_same_blocks() -> None:
    responses = [
        chunk([{"text": "thinking", "thought": True, "thoughtSignature": "AA=="}, {"text": "Hi"}]),
        chunk(
            [{"text": " there", "thoughtSignature": "BB=="}, {"functionCall": {"name": "f", "args": {"x": 1}}}], "STOP"
        ),
    ]
    streamed = validate(run([sse(*responses)])).blocks
    merged = {
        "candidates": [
            {
                "content": {"parts": [p for r in responses for p in r["candidates"][0]["content"]["parts"]]},
                "finishReason": "STOP",
            }
        ]
    }
    message = json.loads(gemini.response_to_anthropic(json.dumps(merged).encode(), MODEL).body)
    for block in [*streamed, *message["content"]]:
        if block["type"] == "tool_use":
            block["id"] = "toolu_X"
    assert streamed == message["content"]
