"""Chat Completions response -> Anthropic Message (openai_chat.response_to_anthropic).

Golden tests on Kong's real provider captures, then hand-built completions for what they do
not show. Every result is also validated by the Anthropic Python SDK's own Message model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

import anthropic
from aimw.errors import GatewayError
from aimw.translators import openai_chat as oc
from tests.shared_data import KONG

FALLBACK = "fallback-model"


def translate(body: bytes | dict, fallback: str = FALLBACK) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = oc.response_to_anthropic(raw, fallback)
    message = json.loads(answer.body)
    # the client's own parser accepts it
    anthropic.types.Message.model_validate(message)
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert message["id"].startswith("msg_") and len(message["id"]) > len("msg_")
    assert message["stop_sequence"] is None
    assert set(message["usage"]) >= {
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    }
    # the usage recorded for the log is the one the client reads
    recorded = answer.usage
    assert message["usage"] == usage(recorded.input_tokens, recorded.output_tokens, recorded.cache_read_input_tokens)
    assert recorded.cache_creation_input_tokens == 0
    return message


def completion(message: dict, finish_reason: str | None = "stop", usage: dict | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "upstream/model-1",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
        **extra,
    }
    if usage is not None:
        body["usage"] = usage
    return body


def usage(input_tokens: int, output_tokens: int, cache_read: int = 0) -> dict:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cache_read,
    }


# ---------------------------------------------------------------- Kong's real captures


def test_openai_good() -> None:
    out = translate((KONG / "openai/llm-v1-chat/responses/good.json").read_bytes())
    assert out["model"] == "gpt-3.5-turbo-0613"
    assert out["content"] == [{"type": "text", "text": "The sum of 1 + 1 is 2."}]
    assert out["stop_reason"] == "end_turn"
    assert out["usage"] == usage(25, 12)


def test_openai_good_with_function() -> None:
    # the final answer after a function call: text, refusal null, details with zeros
    out = translate((KONG / "openai/llm-v1-chat/responses/good_with_function.json").read_bytes())
    assert out["model"] == "gpt-4.1-2025-04-14"
    assert len(out["content"]) == 1 and out["content"][0]["type"] == "text"
    assert out["content"][0]["text"].startswith("The current temperature in Paris today is 16.1\u00b0C.")
    assert out["stop_reason"] == "end_turn"
    assert out["usage"] == usage(94, 32)


def test_huggingface_good_eos_token() -> None:
    path = KONG / "huggingface/llm-v1-chat/responses/good.json"
    assert json.loads(path.read_bytes())["choices"][0]["finish_reason"] == "eos_token"
    out = translate(path.read_bytes())
    assert out["model"] == "mistralai/Mistral-7B-Instruct-v0.2"
    assert out["content"] == [
        {
            "type": "text",
            "text": " The sum of 1 + 1 is 2. This is a basic arithmetic operation and the answer is always the same: "
            "adding one to one results in having two in total.",
        }
    ]
    assert out["stop_reason"] == "end_turn"
    assert out["usage"] == usage(26, 40)


@pytest.mark.parametrize(
    "path",
    [KONG / "openai/unit/real-responses/llm-v1-chat.json", KONG / "azure/unit/real-responses/llm-v1-chat.json"],
    ids=["openai", "azure"],
)
def test_real_responses(path: Path) -> None:
    raw = json.loads(path.read_bytes())
    assert raw["object"] == "chat.completion"
    out = translate(path.read_bytes())
    assert out["model"] == "gpt-4-0613"
    assert [block["type"] for block in out["content"]] == ["text"]
    assert out["content"][0]["text"].startswith("Dividing by zero is undefined in mathematics")
    assert out["content"][0]["text"].endswith("to get a non-zero number.")
    assert out["stop_reason"] == "end_turn"
    assert out["usage"] == usage(130, 139)


def test_ids_are_fresh() -> None:
    body = (KONG / "openai/llm-v1-chat/responses/good.json").read_bytes()
    assert translate(body)["id"] != translate(body)["id"]


# ---------------------------------------------------------------- tool calls


def test_tool_calls() -> None:
    out = translate(
        completion(
            {
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
                ],
            },
            finish_reason="tool_calls",
        )
    )
    assert out["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
    ]
    assert out["stop_reason"] == "tool_use"


def test_tool_call_with_finish_stop_is_still_tool_use() -> None:
    # several servers (Ollama, some TGI versions) say "stop" after a tool call
    out = translate(
        completion(
            {"tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]},
            finish_reason="stop",
        )
    )
    assert out["stop_reason"] == "tool_use"
    assert out["content"] == [{"type": "tool_use", "id": "c", "name": "f", "input": {"a": 1}}]


@pytest.mark.parametrize("arguments", ['{"city": "Par', "not json", "[1, 2]", '"a string"', "null"])
def test_invalid_tool_arguments_become_empty_input(arguments: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aimw.translators.openai_chat"):
        out = translate(
            completion(
                {"tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
                finish_reason="tool_calls",
            )
        )
    assert out["content"] == [{"type": "tool_use", "id": "c", "name": "f", "input": {}}]
    assert out["stop_reason"] == "tool_use"
    assert caplog.records, "a dropped argument string is logged"
    # the log says how long it was, never the arguments themselves (they may hold user data)
    assert all(arguments not in record.getMessage() for record in caplog.records if len(arguments) > 4)


@pytest.mark.parametrize("arguments", ["", None])
def test_missing_tool_arguments_are_empty_input(arguments: str | None) -> None:
    out = translate(
        completion(
            {"tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
            finish_reason="tool_calls",
        )
    )
    assert out["content"][0]["input"] == {}


def test_tool_call_without_id_gets_one() -> None:
    out = translate(
        completion({"tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}, "tool_calls")
    )
    block = out["content"][0]
    assert block["type"] == "tool_use" and block["name"] == "f"
    assert isinstance(block["id"], str) and block["id"]


# ---------------------------------------------------------------- stop reasons (DESIGN §6)


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("eos_token", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_stop_reason_mapping(finish_reason: str | None, stop_reason: str) -> None:
    out = translate(completion({"content": "x"}, finish_reason=finish_reason))
    assert out["stop_reason"] == stop_reason


@pytest.mark.parametrize("finish_reason", ["tool_calls", "function_call"])
def test_tool_calls_finish_reason(finish_reason: str) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    assert translate(completion({"tool_calls": [call]}, finish_reason))["stop_reason"] == "tool_use"
    # no tool call came through: saying tool_use would send the client looking for a block
    assert translate(completion({"content": "x"}, finish_reason))["stop_reason"] == "end_turn"


def test_length_wins_over_tool_use() -> None:
    out = translate(
        completion(
            {"tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a":'}}]},
            finish_reason="length",
        )
    )
    assert out["stop_reason"] == "max_tokens"


def test_unknown_finish_reason_is_end_turn_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aimw.translators.openai_chat"):
        out = translate(completion({"content": "x"}, finish_reason="weird_new_reason"))
    assert out["stop_reason"] == "end_turn"
    assert any("weird_new_reason" in record.getMessage() for record in caplog.records)


def test_known_finish_reason_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aimw.translators.openai_chat"):
        translate(completion({"content": "x"}, finish_reason="stop"))
    assert not caplog.records


def test_refusal_field() -> None:
    out = translate(completion({"content": None, "refusal": "I can't help with that."}, finish_reason="stop"))
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert out["stop_reason"] == "refusal"


# ---------------------------------------------------------------- usage, model, reasoning


def test_usage_with_cached_tokens() -> None:
    out = translate(
        completion(
            {"content": "x"},
            usage={
                "prompt_tokens": 1000,
                "completion_tokens": 50,
                "total_tokens": 1050,
                "prompt_tokens_details": {"cached_tokens": 600},
                "completion_tokens_details": {"reasoning_tokens": 20},
            },
        )
    )
    # Anthropic's input_tokens exclude cache reads; the three add up to the prompt
    assert out["usage"] == usage(400, 50, cache_read=600)


@pytest.mark.parametrize(
    "usage_body",
    [
        None,
        {"prompt_tokens": None, "completion_tokens": None},
        {"prompt_tokens": 7, "completion_tokens": 3, "prompt_tokens_details": None, "completion_tokens_details": None},
        {"prompt_tokens": 7, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": None}},
    ],
)
def test_usage_absent_or_null(usage_body: dict | None) -> None:
    body = completion({"content": "x"})
    if usage_body is not None:
        body["usage"] = usage_body
    out = translate(body)
    expected = (7, 3) if usage_body and usage_body.get("prompt_tokens") else (0, 0)
    assert out["usage"] == usage(*expected)


def test_model_falls_back_when_absent() -> None:
    body = completion({"content": "x"})
    del body["model"]
    assert translate(body, fallback="the-requested-model")["model"] == "the-requested-model"
    body["model"] = ""
    assert translate(body, fallback="the-requested-model")["model"] == "the-requested-model"


def test_answer_names_the_providers_model_only() -> None:
    body = completion({"content": "x"})
    assert oc.response_to_anthropic(json.dumps(body).encode(), FALLBACK).model == "upstream/model-1"
    del body["model"]
    # the fallback is not the provider's model
    assert oc.response_to_anthropic(json.dumps(body).encode(), FALLBACK).model is None


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_becomes_a_thinking_block_first(field: str) -> None:
    out = translate(completion({field: "Let me think: 2.", "content": "2"}))
    assert out["content"] == [
        {"type": "thinking", "thinking": "Let me think: 2.", "signature": ""},
        {"type": "text", "text": "2"},
    ]


@pytest.mark.parametrize("body", [{}, {"id": "x", "model": "m", "choices": []}])
def test_a_completion_without_choices_is_no_answer(body) -> None:
    """Issue 8, finding 14: ``{}`` or no choices was turned into an empty message."""
    with pytest.raises(GatewayError) as raised:
        oc.response_to_anthropic(json.dumps(body).encode(), "m")
    assert (raised.value.status, raised.value.error_type) == (502, "api_error")
    assert "without choices" in raised.value.message


def test_a_null_message() -> None:
    out = translate({"model": "m", "choices": [{"index": 0, "message": None, "finish_reason": "length"}]})
    assert out["content"] == [] and out["stop_reason"] == "max_tokens"


def test_only_the_first_choice_is_translated() -> None:
    body = completion({"content": "first"})
    body["choices"].append(
        {"index": 1, "message": {"role": "assistant", "content": "SECOND"}, "finish_reason": "length"}
    )
    out = translate(body)
    assert out["content"] == [{"type": "text", "text": "first"}]
    assert out["stop_reason"] == "end_turn"


def test_unicode_and_escapes_survive() -> None:
    text = 'caf\u00e9 \u20ac \U0001f600 "quoted" \\ back\nline'
    assert translate(completion({"content": text}))["content"] == [{"type": "text", "text": text}]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"null",
        b'{"choices": "nope"}',
        b'{"choices": [{"message": {"content": 5}}]}',
        b"<html>",
    ],
)
def test_invalid_body_is_a_502(body: bytes) -> None:
    with pytest.raises(GatewayError) as info:
        oc.response_to_anthropic(body, FALLBACK)
    assert info.value.status == 502
    assert info.value.error_type == "api_error"


def test_a_200_answer_holding_only_an_error_is_a_502() -> None:
    body = json.dumps({"error": {"message": "Model too busy", "type": "server_error"}}).encode()
    with pytest.raises(GatewayError) as info:
        oc.response_to_anthropic(body, FALLBACK)
    assert info.value.status == 502
    assert "Model too busy" in info.value.message


def test_reasoning_tokens_travel_beside_the_message() -> None:
    body = json.dumps(
        {
            "choices": [{"message": {"content": "2"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 9, "completion_tokens_details": {"reasoning_tokens": 6}},
        }
    ).encode()
    answer = oc.response_to_anthropic(body, FALLBACK)
    assert answer.usage.reasoning_tokens == 6
    assert answer.usage.output_tokens == 9
    assert json.loads(answer.body)["usage"]["output_tokens"] == 9
    assert "reasoning_tokens" not in json.loads(answer.body)["usage"]  # not an Anthropic field


# ---------------------------------------------------------------- what some servers send differently


@pytest.mark.parametrize("arguments", [{"city": "Paris", "days": [1, 2], "deep": {"x": None}}, {}])
def test_object_tool_arguments_are_the_input(arguments: dict) -> None:
    """TGI and some llama.cpp builds send ``arguments`` as a JSON object, not a string."""
    out = translate(
        completion(
            {"tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
            finish_reason="tool_calls",
        )
    )
    assert out["content"] == [{"type": "tool_use", "id": "c", "name": "f", "input": arguments}]
    assert out["stop_reason"] == "tool_use"


def test_empty_finish_reason_is_end_turn_and_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """SGLang 0.4.x and older Ollama send ``finish_reason: ""``."""
    with caplog.at_level(logging.WARNING, logger="aimw.translators.openai_chat"):
        out = translate(completion({"content": "x"}, finish_reason=""))
        call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        with_call = translate(completion({"tool_calls": [call]}, finish_reason=""))
    assert out["stop_reason"] == "end_turn"
    assert with_call["stop_reason"] == "tool_use"
    assert not caplog.records
    assert oc.stop_reason_for("", False) == "end_turn"
