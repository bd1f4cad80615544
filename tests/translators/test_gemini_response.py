"""Gemini GenerateContentResponse -> Anthropic Message (gemini.response_to_anthropic).

Golden tests on Kong's real Gemini captures, then hand-built responses for what they do not
show (thoughts and signatures, function calls, every finishReason, usage with cache and
thinking, errors). Every Message is also validated by the Anthropic SDK's own model.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

import anthropic
from aimw.errors import GatewayError
from aimw.translators import gemini
from tests.shared_data import KONG

FALLBACK = "requested-model"
RESPONSES = KONG / "gemini" / "llm-v1-chat" / "responses"
TOOL_USE_ID = re.compile(r"toolu_[0-9a-f]{32}")


def translate(body: bytes | dict, fallback: str = FALLBACK) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = gemini.response_to_anthropic(raw, fallback)
    message = json.loads(answer.body)
    anthropic.types.Message.model_validate(message)
    assert message["id"].startswith("msg_") and message["type"] == "message" and message["role"] == "assistant"
    recorded = answer.usage  # what the log gets is what the client reads
    assert message["usage"] == {
        "input_tokens": recorded.input_tokens,
        "output_tokens": recorded.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": recorded.cache_read_input_tokens,
    }
    assert answer.model == (message["model"] if message["model"] != fallback else None)
    return message


def response(parts: list[dict] | None = None, finish: str | None = "STOP", **fields: Any) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts or []}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", **fields}


# ---------------------------------------------------------------- Kong's captures


@pytest.mark.parametrize(
    ("name", "model"), [("good.json", "gemini-1.5-flash-002"), ("good-gemini-2.0-flash.json", "gemini-2.0-flash-079")]
)
def test_kong_good_responses(name: str, model: str) -> None:
    message = translate((RESPONSES / name).read_bytes())
    assert message["model"] == model
    assert message["content"] == [{"type": "text", "text": "Everything is okay."}]
    assert message["stop_reason"] == "end_turn"
    assert (message["usage"]["input_tokens"], message["usage"]["output_tokens"]) == (2, 11)


def test_kong_real_vertex_response() -> None:
    message = translate((KONG / "gemini" / "unit" / "real-responses" / "llm-v1-chat.aigw-393.json").read_bytes())
    expected = json.loads((KONG / "gemini" / "unit" / "expected-responses" / "llm-v1-chat.aigw-393.json").read_text())
    assert message["model"] == expected["model"] == "gemini-1.5-pro-002"
    assert message["content"] == [{"type": "text", "text": expected["choices"][0]["message"]["content"]}]
    assert message["usage"]["input_tokens"] == expected["usage"]["prompt_tokens"]
    assert message["usage"]["output_tokens"] == expected["usage"]["completion_tokens"]


def test_kong_response_without_model_version_uses_the_requested_model() -> None:
    message = translate((KONG / "gemini" / "unit" / "real-responses" / "llm-v1-chat.json").read_bytes())
    assert message["model"] == FALLBACK
    assert (message["usage"]["input_tokens"], message["usage"]["output_tokens"]) == (14, 128)


def test_kong_json_text_stays_text() -> None:
    message = translate((KONG / "gemini" / "request-transformer" / "response-in-json.json").read_bytes())
    assert json.loads(message["content"][0]["text"])["persons"][0]["name"] == "Kong A"


def test_kong_safety_stop_is_a_refusal() -> None:
    message = translate((RESPONSES / "fails_safety.json").read_bytes())
    assert message["stop_reason"] == "refusal"
    assert message["content"] == []
    assert message["usage"]["input_tokens"] == 319


def test_kong_blocked_prompt_is_a_400_naming_the_reason() -> None:
    with pytest.raises(GatewayError) as caught:
        gemini.response_to_anthropic((RESPONSES / "fails-model-armor-floor.json").read_bytes(), FALLBACK)
    assert (caught.value.status, caught.value.error_type) == (400, "invalid_request_error")
    assert "MODEL_ARMOR" in caught.value.message and "Model Armor Floor Setting" in caught.value.message


# ---------------------------------------------------------------- hand-built


def test_function_calls_become_tool_use_blocks_with_generated_ids() -> None:
    message = translate(
        response(
            [
                {"text": "Let me look."},
                {"functionCall": {"name": "Read", "args": {"path": "a"}}},
                {"functionCall": {"name": "Bash", "args": {}}},
                {"functionCall": {"name": "Pwd"}},
            ]
        )
    )
    blocks = message["content"]
    assert [b["type"] for b in blocks] == ["text", "tool_use", "tool_use", "tool_use"]
    assert [(b["name"], b["input"]) for b in blocks[1:]] == [("Read", {"path": "a"}), ("Bash", {}), ("Pwd", {})]
    ids = [b["id"] for b in blocks[1:]]
    assert all(TOOL_USE_ID.fullmatch(i) for i in ids) and len(set(ids)) == 3
    assert message["stop_reason"] == "tool_use"  # Gemini says STOP


def test_thoughts_text_and_signatures() -> None:
    message = translate(
        response(
            [
                {"text": "Thinking about it", "thought": True},
                {"text": " some more.", "thought": True, "thoughtSignature": "c2lnLTE="},
                {"text": "Hello", "thoughtSignature": "c2lnLTI="},
                {"functionCall": {"name": "Bash", "args": {"command": "ls"}}, "thoughtSignature": "c2ln+/8="},
            ]
        )
    )
    blocks = message["content"]
    assert blocks[:3] == [
        {"type": "thinking", "thinking": "Thinking about it some more.", "signature": "gemini-thought:c2lnLTE="},
        {"type": "text", "text": "Hello"},
        {"type": "thinking", "thinking": "", "signature": "gemini-text:c2lnLTI="},
    ]
    assert re.fullmatch(r"toolu_[0-9a-f]{32}_gsig_c2ln-_8", blocks[3]["id"])


def test_an_empty_text_part_with_a_signature_keeps_it() -> None:
    message = translate(response([{"text": "Done."}, {"text": "", "thoughtSignature": "AAAA"}]))
    assert message["content"] == [
        {"type": "text", "text": "Done."},
        {"type": "thinking", "thinking": "", "signature": "gemini-text:AAAA"},
    ]


def test_parts_anthropic_has_no_block_for_are_skipped() -> None:
    message = translate(response([{"inlineData": {"mimeType": "image/png", "data": "iVBO"}}, {"text": "a picture"}]))
    assert message["content"] == [{"type": "text", "text": "a picture"}]


def test_args_that_are_not_an_object_become_empty(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aimw.translators.gemini"):
        message = translate(response([{"functionCall": {"name": "f", "args": [1, 2]}}]))
    assert message["content"][0]["input"] == {}
    assert "not a JSON object" in caplog.text


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("STOP", "end_turn"),
        (None, "end_turn"),
        ("FINISH_REASON_UNSPECIFIED", "end_turn"),
        ("OTHER", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "refusal"),
        ("RECITATION", "refusal"),
        ("LANGUAGE", "refusal"),
        ("BLOCKLIST", "refusal"),
        ("PROHIBITED_CONTENT", "refusal"),
        ("SPII", "refusal"),
        ("IMAGE_SAFETY", "refusal"),
        ("IMAGE_PROHIBITED_CONTENT", "refusal"),
        ("IMAGE_RECITATION", "refusal"),
        ("MODEL_ARMOR", "refusal"),
    ],
)
def test_every_finish_reason(finish: str | None, stop_reason: str) -> None:
    assert translate(response([{"text": "x"}], finish))["stop_reason"] == stop_reason


def test_an_unknown_finish_reason_is_end_turn_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aimw.translators.gemini"):
        assert translate(response([{"text": "x"}], "SOMETHING_NEW"))["stop_reason"] == "end_turn"
    assert "SOMETHING_NEW" in caplog.text


def test_tool_use_wins_unless_max_tokens() -> None:
    call = [{"functionCall": {"name": "f", "args": {}}}]
    assert translate(response(call, "SAFETY"))["stop_reason"] == "tool_use"
    assert translate(response(call, "MAX_TOKENS"))["stop_reason"] == "max_tokens"


@pytest.mark.parametrize("finish", ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"])
def test_a_failed_function_call_is_a_retryable_error_never_an_empty_success(finish: str) -> None:
    body = response(None, finish)
    body["candidates"][0]["finishMessage"] = "Malformed function call: print(x"
    with pytest.raises(GatewayError) as caught:
        gemini.response_to_anthropic(json.dumps(body).encode(), FALLBACK)
    assert caught.value.status >= 500 and caught.value.error_type == "api_error"  # Anthropic clients retry 5xx
    assert finish in caught.value.message and "print(x" in caught.value.message


def test_usage_with_cache_and_thoughts() -> None:
    usage = {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 600,
        "candidatesTokenCount": 50,
        "thoughtsTokenCount": 200,
        "totalTokenCount": 1250,
    }
    body = json.dumps(response([{"text": "x"}], usageMetadata=usage)).encode()
    answer = gemini.response_to_anthropic(body, FALLBACK)
    assert (answer.usage.input_tokens, answer.usage.cache_read_input_tokens) == (400, 600)
    assert (answer.usage.output_tokens, answer.usage.reasoning_tokens) == (250, 200)
    assert translate(body)["usage"]["output_tokens"] == 250  # thinking is output to Anthropic too


def test_hostile_token_counts_are_bounded() -> None:
    usage = {
        "promptTokenCount": 2**70,
        "candidatesTokenCount": 2**70,
        "thoughtsTokenCount": 2**70,
        "cachedContentTokenCount": -5,
    }
    answer = gemini.response_to_anthropic(json.dumps(response([{"text": "x"}], usageMetadata=usage)).encode(), FALLBACK)
    assert answer.usage.input_tokens == answer.usage.output_tokens == 2**53 - 1
    assert answer.usage.cache_read_input_tokens == 0


def test_an_error_object_in_a_200_body_is_mapped() -> None:
    body = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    with pytest.raises(GatewayError) as caught:
        gemini.response_to_anthropic(json.dumps(body).encode(), FALLBACK)
    assert (caught.value.status, caught.value.error_type) == (529, "overloaded_error")
    assert "The model is overloaded." in caught.value.message


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"candidates": []}', b"{}", b'{"candidates": "x"}'])
def test_what_is_not_an_answer_is_a_502(body: bytes) -> None:
    with pytest.raises(GatewayError) as caught:
        gemini.response_to_anthropic(body, FALLBACK)
    assert (caught.value.status, caught.value.error_type) == (502, "api_error")
