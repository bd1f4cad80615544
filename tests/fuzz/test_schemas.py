"""The fuzzers' checks can fail: what each provider refuses is refused by its description
(tests/fuzz/chat_schema.py, tests/fuzz/gemini_schema.py), and what aimw sends for the Claude
Code corpus passes; and the request strategy makes what it promises."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given

from aimw.translators import gemini
from aimw.translators import openai_chat as oc
from aimw.translators.anthropic import messages as a
from tests.fuzz.anthropic_requests import messages_requests, unsendable
from tests.fuzz.budget import fuzz
from tests.fuzz.chat_schema import assert_chat_request
from tests.fuzz.gemini_schema import assert_gemini_request
from tests.shared_data import corpus_bodies

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
USER = {"role": "user", "content": "hi"}
CHAT: dict[str, Any] = {"model": "m", "messages": [USER]}


def encoded(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize("path", corpus_bodies(), ids=lambda path: path.name.split("-")[0])
def test_the_corpus_translations_pass(path: Any) -> None:
    request = a.decode_request(path.read_bytes())
    assert_chat_request(oc.request_from_anthropic(request, "m"))
    assert_chat_request(oc.request_from_anthropic(request, "m", thinking_format="qwen"), qwen=True)
    assert_gemini_request(gemini.request_from_anthropic(request))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"messages": []}, "length >= 1"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "length <= 4"),
        ({"temperature": 2.5}, "<= 2"),
        ({"cache_control": {"type": "ephemeral"}}, "unknown field"),
        ({"messages": [{**USER, "cache_control": {}}]}, "unknown field"),
        ({"messages": [{"role": "developer", "content": "x"}]}, "Invalid value 'developer'"),
        ({"messages": [USER, {"role": "tool", "tool_call_id": "call_1", "content": "x"}]}, "answers no pending"),
        ({"messages": [USER, {"role": "assistant", "tool_calls": [CALL]}, USER]}, "have no tool message"),
        ({"messages": [USER, {"role": "assistant", "tool_calls": [{**CALL, "id": "c" * 41}]}]}, "length <= 40"),
        (
            {
                "messages": [
                    USER,
                    {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "[]"}}]},
                ]
            },
            "not a JSON object",
        ),
        ({"messages": [USER, {"role": "assistant", "content": None}]}, "neither content nor tool calls"),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "Invalid value 'image_url'",
        ),
        ({"tool_choice": "auto"}, "tool_choice without tools"),
        ({"stream_options": {"include_usage": True}}, "stream_options without stream"),
        ({"enable_thinking": False}, "DashScope fields"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]}, "object"),
        ({"tools": [{"type": "function", "function": {"name": "a.b"}}]}, "matching regex"),
    ],
)
def test_the_chat_description_refuses(change: dict[str, Any], why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        assert_chat_request(encoded({**CHAT, **change}))


GEMINI: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
CALLED = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"contents": []}, "length >= 1"),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "Invalid enum value 'system'"),
        ({"contents": [{"role": "user", "parts": [{"text": ""}]}]}, "empty text part"),
        (
            {"contents": [{"role": "user", "parts": [{"text": "a", "inlineData": {"mimeType": "a", "data": "b"}}]}]},
            "exactly one",
        ),
        ({"contents": [*GEMINI["contents"], CALLED]}, "have no responses"),
        ({"contents": [*GEMINI["contents"], *GEMINI["contents"]]}, "do not alternate"),
        ({"contents": [*GEMINI["contents"], CALLED, {"role": "user", "parts": [{"text": "x"}]}]}, "responses"),
        ({"systemInstruction": {"parts": [{"text": ""}]}}, "length >= 1"),
        ({"generationConfig": {"stopSequences": ["1", "2", "3", "4", "5", "6"]}}, "length <= 5"),
        ({"generationConfig": {"maxOutputTokens": 65537}}, "<= 65536"),
        ({"generationConfig": {"topK": 0}}, ">= 1"),
        ({"generationConfig": {"thinkingConfig": {"thinkingBudget": 30000}}}, "<= 24576"),
        ({"generationConfig": {"maxOutputTokens": 10, "thinkingConfig": {"thinkingBudget": 10}}}, "no room"),
        ({"toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}, "ANY without functions"),
        ({"tools": [{"functionDeclarations": [{"name": "1f"}]}]}, "matching regex"),
        (
            {
                "tools": [
                    {
                        "functionDeclarations": [
                            {"name": "f", "parametersJsonSchema": {"type": "object", "pattern": "x"}}
                        ]
                    }
                ]
            },
            "unknown field",
        ),
        (
            {
                "tools": [
                    {
                        "functionDeclarations": [
                            {"name": "f", "parametersJsonSchema": {"type": "object", "required": ["x"]}}
                        ]
                    }
                ]
            },
            "are not properties",
        ),
        ({"max_tokens": 10}, "unknown field"),
    ],
)
def test_the_gemini_description_refuses(change: dict[str, Any], why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        assert_gemini_request(encoded({**GEMINI, **change}))


@fuzz(40)
@given(messages_requests(files=False))
def test_the_strategy_makes_what_it_promises(body: dict[str, Any]) -> None:
    """Valid by Anthropic's rules the strategy follows: the first turn is the user's, tool_use
    ids are unique and each one is answered at the start of the next user turn, tool names
    are unique; files=False leaves out every unsendable form."""
    assert not unsendable(body)
    turns = [m for m in body["messages"] if m["role"] != "system"]
    assert turns[0]["role"] == "user"
    ids: list[str] = []
    for turn, following in zip(turns, [*turns[1:], None], strict=True):
        if turn["role"] != "assistant" or isinstance(turn["content"], str):
            continue
        calls = [b["id"] for b in turn["content"] if b["type"] == "tool_use"]
        ids += calls
        if calls:
            assert following is not None and following["role"] == "user"
            results = [b["tool_use_id"] for b in following["content"][: len(calls)] if b["type"] == "tool_result"]
            assert sorted(results) == sorted(calls)
    assert len(ids) == len(set(ids))
    names = [tool["name"] for tool in body.get("tools", ())]
    assert len(names) == len(set(names))
    a.decode_request(encoded(body))
