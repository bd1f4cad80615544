"""Anthropic Messages request -> Chat Completions request (openai_chat.request_from_anthropic).

Every body Claude Code really sent (the corpus) is translated and checked field by field
against its own JSON; hand-built requests cover what the corpus does not show.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aimw.errors import GatewayError
from aimw.token_estimate import estimate_input_tokens
from aimw.translators import openai_chat as oc
from aimw.translators.anthropic import messages as a
from aimw.translators.wire import AnthropicCall
from tests.shared_data import corpus_bodies

UPSTREAM_MODEL = "org/upstream-model"

# What a Chat Completions request may hold (OpenAI API reference, "Create chat completion").
CHAT_REQUEST_KEYS = {
    "model",
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
}
CHAT_MESSAGE_KEYS = {"role", "content", "tool_calls", "tool_call_id", "name"}
CHAT_ROLES = {"system", "user", "assistant", "tool"}
CONTENT_PART_TYPES = {"text", "image_url", "file"}

# Keys that exist only in the Anthropic Messages API (or its Claude Code extensions).
ANTHROPIC_ONLY_KEYS = {
    "cache_control",
    "context_management",
    "output_config",
    "thinking",
    "redacted_thinking",
    "signature",
    "display",
    "budget_tokens",
    "effort",
    "defer_loading",
    "metadata",
    "top_k",
    "system",
    "stop_sequences",
    "input_schema",
    "tool_use_id",
    "is_error",
    "source",
    "media_type",
    "anthropic_version",
    "anthropic_beta",
    "betas",
    "container",
    "mcp_servers",
    "service_tier",
    "disable_parallel_tool_use",
}


def translate(body: dict | bytes, model: str = UPSTREAM_MODEL, **kwargs: Any) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = a.request_decoder.decode(raw)
    return json.loads(oc.request_from_anthropic(request, model, **kwargs))


def block_texts(content: str | list) -> list[str]:
    """The texts of an Anthropic message content (string or text blocks)."""
    if isinstance(content, str):
        return [content]
    return [block["text"] for block in content if block["type"] == "text"]


def message_text(message: dict) -> str:
    """All text of a Chat Completions message (string content or text parts)."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n\n".join(part["text"] for part in content if part["type"] == "text")


def walk_keys(node: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, key) for every object key in ``node``, not entering tool parameter schemas
    (which are the client's JSON Schemas and checked for equality separately)."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((path, key))
            if key == "parameters" and path.endswith(".function"):
                continue
            found.extend(walk_keys(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found.extend(walk_keys(item, f"{path}[{i}]"))
    return found


def assert_valid_chat_request(out: dict) -> None:
    """Shape checks every translated request must pass, whatever its input."""
    assert set(out) <= CHAT_REQUEST_KEYS, set(out) - CHAT_REQUEST_KEYS
    assert isinstance(out["model"], str) and out["model"]
    assert out["messages"], "a Chat Completions request needs at least one message"
    for message in out["messages"]:
        assert set(message) <= CHAT_MESSAGE_KEYS, message.keys()
        assert message["role"] in CHAT_ROLES
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                assert part["type"] in CONTENT_PART_TYPES, part
                assert part["type"] in part, part
        else:
            assert content is None or isinstance(content, str)
        if message["role"] == "tool":
            assert isinstance(message["tool_call_id"], str) and message["tool_call_id"]
            assert isinstance(content, str)
        else:
            assert "tool_call_id" not in message
        if "tool_calls" in message:
            assert message["role"] == "assistant"
            for call in message["tool_calls"]:
                assert set(call) == {"id", "type", "function"}
                assert call["type"] == "function"
                assert set(call["function"]) == {"name", "arguments"}
                assert isinstance(call["function"]["arguments"], str)
                json.loads(call["function"]["arguments"])
        else:
            assert content is not None, message
    for tool in out.get("tools", ()):
        assert tool["type"] == "function"
        assert set(tool) == {"type", "function"}
        assert set(tool["function"]) <= {"name", "description", "parameters"}
        assert isinstance(tool["function"]["parameters"], dict)
    assert_tool_pairing(out["messages"])
    leaked = [(path, key) for path, key in walk_keys(out) if key in ANTHROPIC_ONLY_KEYS]
    assert not leaked, leaked


def assert_tool_pairing(messages: list[dict]) -> None:
    """Each assistant tool_calls entry is answered by role "tool" messages right after it,
    with matching tool_call_id, in call order; no role "tool" message stands elsewhere."""
    i = 0
    while i < len(messages):
        message = messages[i]
        i += 1
        if message["role"] == "tool":
            raise AssertionError(f"role 'tool' message at {i - 1} follows no tool call")
        for call in message.get("tool_calls", ()):
            assert i < len(messages), f"tool call {call['id']} has no tool message"
            answer = messages[i]
            assert answer["role"] == "tool", (call["id"], answer)
            assert answer["tool_call_id"] == call["id"]
            i += 1


# ---------------------------------------------------------------- the Claude Code corpus

CORPUS = corpus_bodies()


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) >= 20
    assert any("tool_result" in path.read_text() for path in CORPUS)


@pytest.fixture(params=CORPUS, ids=[path.name.split("-")[0] for path in CORPUS])
def corpus_case(request: pytest.FixtureRequest) -> tuple[dict, dict]:
    path: Path = request.param
    body = path.read_bytes()
    return json.loads(body), translate(body)


def test_corpus_translates_to_a_valid_chat_request(corpus_case: tuple[dict, dict]) -> None:
    _, out = corpus_case
    assert_valid_chat_request(out)
    assert out["model"] == UPSTREAM_MODEL


def test_corpus_system_text_is_complete_and_in_order(corpus_case: tuple[dict, dict]) -> None:
    raw, out = corpus_case
    expected: list[str] = []
    system = raw.get("system")
    if isinstance(system, str):
        expected.append(system)
    elif isinstance(system, list):
        expected.extend(block["text"] for block in system)
    for message in raw["messages"]:
        if message["role"] == "system":
            expected.extend(block_texts(message["content"]))
    system_out = "\x00".join(message_text(m) for m in out["messages"] if m["role"] == "system")
    position = 0
    for text in expected:
        found = system_out.find(text, position)
        assert found >= 0, f"system text missing or out of order: {text[:80]!r}"
        position = found + len(text)
    if system:
        assert out["messages"][0]["role"] == "system"
    # every role "system" turn is a system message, not folded into a user turn
    raw_system_turns = sum(1 for m in raw["messages"] if m["role"] == "system")
    out_system_turns = sum(1 for m in out["messages"] if m["role"] == "system")
    assert out_system_turns == raw_system_turns + (1 if system else 0)


def test_corpus_user_and_assistant_text_is_kept_in_order(corpus_case: tuple[dict, dict]) -> None:
    raw, out = corpus_case
    for role in ("user", "assistant"):
        expected = [t for m in raw["messages"] if m["role"] == role for t in block_texts(m["content"])]
        joined = "\x00".join(message_text(m) for m in out["messages"] if m["role"] == role)
        position = 0
        for text in expected:
            found = joined.find(text, position)
            assert found >= 0, f"{role} text missing or out of order: {text[:80]!r}"
            position = found + len(text)


def test_corpus_tools_are_intact_and_deferred_tools_dropped(corpus_case: tuple[dict, dict]) -> None:
    raw, out = corpus_case
    raw_tools = raw.get("tools", [])
    kept = [tool for tool in raw_tools if not tool.get("defer_loading")]
    if not kept:
        assert "tools" not in out
        return
    out_tools = out["tools"]
    assert [t["function"]["name"] for t in out_tools] == [t["name"] for t in kept]
    assert "DeferredToolPlaceholder" not in [t["function"]["name"] for t in out_tools]
    for tool, chat_tool in zip(kept, out_tools, strict=True):
        function = chat_tool["function"]
        assert function["parameters"] == tool["input_schema"], tool["name"]
        assert function.get("description") == tool.get("description")
    assert "tool_choice" not in out and "parallel_tool_calls" not in out  # Claude Code sent none


def test_corpus_deferred_placeholder_is_present_in_some_inputs() -> None:
    # so that the test above really exercises the defer_loading path
    assert any(
        tool.get("defer_loading") and tool["name"] == "DeferredToolPlaceholder"
        for path in CORPUS
        for tool in (json.loads(path.read_bytes()).get("tools") or [])
    )


def test_corpus_tool_calls_and_results_pair_up(corpus_case: tuple[dict, dict]) -> None:
    raw, out = corpus_case
    uses = {
        block["id"]: block
        for m in raw["messages"]
        if isinstance(m["content"], list)
        for block in m["content"]
        if block["type"] == "tool_use"
    }
    results = {
        block["tool_use_id"]: block
        for m in raw["messages"]
        if isinstance(m["content"], list)
        for block in m["content"]
        if block["type"] == "tool_result"
    }
    calls = [call for m in out["messages"] for call in m.get("tool_calls", ())]
    assert [call["id"] for call in calls] == list(uses)
    for call in calls:
        use = uses[call["id"]]
        assert call["function"]["name"] == use["name"]
        assert json.loads(call["function"]["arguments"]) == use["input"]
    tool_messages = {m["tool_call_id"]: m for m in out["messages"] if m["role"] == "tool"}
    assert set(tool_messages) == set(results)  # every corpus tool_result answers its call
    for use_id, result in results.items():
        content = tool_messages[use_id]["content"]
        text = result["content"] if isinstance(result["content"], str) else "\n\n".join(block_texts(result["content"]))
        if result.get("is_error"):
            assert content != text and content.startswith("Error"), content[:80]
            assert text in content
        else:
            assert content == text


def test_corpus_stream_max_tokens_and_user(corpus_case: tuple[dict, dict]) -> None:
    raw, out = corpus_case
    if raw.get("stream"):
        assert out["stream"] is True
        assert out["stream_options"] == {"include_usage": True}
    else:
        assert not out.get("stream")
        assert "stream_options" not in out
    if "max_tokens" in raw:
        assert out["max_tokens"] == raw["max_tokens"]
    else:
        assert "max_tokens" not in out
    assert "max_completion_tokens" not in out
    user_id = (raw.get("metadata") or {}).get("user_id")
    if user_id is not None:  # Claude Code's is a ~150-character JSON string: sent as its SHA-256
        assert len(user_id) > 64
        assert out["user"] == hashlib.sha256(user_id.encode()).hexdigest()
    else:
        assert "user" not in out


def test_a_short_user_id_is_sent_as_it_is() -> None:
    out = json.loads(
        oc.request_from_anthropic(
            a.request_decoder.decode(
                json.dumps(
                    {
                        "max_tokens": 5,
                        "messages": [{"role": "user", "content": "hi"}],
                        "metadata": {"user_id": "user-42"},
                    }
                ).encode()
            ),
            "m",
        )
    )
    assert out["user"] == "user-42"


def test_corpus_covers_the_interesting_shapes() -> None:
    """The corpus assertions above are only as good as what the corpus holds."""
    bodies = [json.loads(path.read_bytes()) for path in CORPUS]
    assert any(b.get("stream") is False for b in bodies)
    assert any(b.get("stream") is True for b in bodies)
    assert any(m["role"] == "system" for b in bodies for m in b["messages"])
    assert any(
        block.get("is_error")
        for b in bodies
        for m in b["messages"]
        if isinstance(m["content"], list)
        for block in m["content"]
    )
    assert any("cache_control" in json.dumps(b) and "context_management" in b for b in bodies)


# ---------------------------------------------------------------- hand-built requests


def body(messages: list, **fields: Any) -> dict:
    return {"model": "claude-x", "max_tokens": 100, "messages": messages, **fields}


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
    },
}
TIME_TOOL = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}


def test_string_system_and_string_messages() -> None:
    out = translate(body([{"role": "user", "content": "hi"}], system="be brief"))
    assert out["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert_valid_chat_request(out)


def test_no_system_means_no_system_message() -> None:
    out = translate(body([{"role": "user", "content": "hi"}]))
    assert [m["role"] for m in out["messages"]] == ["user"]
    out = translate(body([{"role": "user", "content": "hi"}], system=[]))
    assert [m["role"] for m in out["messages"]] == ["user"]


def test_images_base64_and_url() -> None:
    out = translate(
        body(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "compare"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.png"}},
                    ],
                }
            ]
        )
    )
    assert_valid_chat_request(out)
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "compare"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}},
            ],
        }
    ]


def test_image_file_source_has_no_chat_form() -> None:
    request = a.request_decoder.decode(
        json.dumps(
            body([{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "file_1"}}]}])
        ).encode()
    )
    with pytest.raises(GatewayError) as info:
        oc.request_from_anthropic(request, UPSTREAM_MODEL)
    assert info.value.status == 400
    assert info.value.error_type == "invalid_request_error"


def test_text_document_becomes_text() -> None:
    out = translate(
        body(
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "DOC BODY"},
                        },
                        {"type": "text", "text": "summarise"},
                    ],
                }
            ]
        )
    )
    assert_valid_chat_request(out)
    text = message_text(out["messages"][0])
    assert text.index("DOC BODY") < text.index("summarise")


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(choice: dict, expected: Any) -> None:
    out = translate(body([{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL], tool_choice=choice))
    assert_valid_chat_request(out)
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out


def test_disable_parallel_tool_use() -> None:
    out = translate(
        body(
            [{"role": "user", "content": "hi"}],
            tools=[WEATHER_TOOL],
            tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        )
    )
    assert_valid_chat_request(out)
    assert out["tool_choice"] == "auto"
    assert out["parallel_tool_calls"] is False


def test_tool_choice_tool_without_name_is_a_400() -> None:
    request = a.request_decoder.decode(
        json.dumps(
            body([{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL], tool_choice={"type": "tool"})
        ).encode()
    )
    with pytest.raises(GatewayError) as info:
        oc.request_from_anthropic(request, UPSTREAM_MODEL)
    assert info.value.status == 400
    assert info.value.error_type == "invalid_request_error"


def test_tool_choice_without_tools_is_not_sent() -> None:
    # only a deferred tool: nothing to choose from, so no tools and no tool_choice
    deferred = {**TIME_TOOL, "defer_loading": True}
    out = translate(body([{"role": "user", "content": "hi"}], tools=[deferred], tool_choice={"type": "any"}))
    assert_valid_chat_request(out)
    assert "tools" not in out and "tool_choice" not in out


def test_server_tools_are_dropped_and_custom_tools_kept() -> None:
    tools = [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        {**WEATHER_TOOL, "type": "custom", "cache_control": {"type": "ephemeral"}},
        TIME_TOOL,
    ]
    out = translate(body([{"role": "user", "content": "hi"}], tools=tools))
    assert_valid_chat_request(out)
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER_TOOL["input_schema"],
            },
        },
        {"type": "function", "function": {"name": "get_time", "parameters": TIME_TOOL["input_schema"]}},
    ]


def test_tool_schema_bytes_survive_exactly() -> None:
    # key order and unusual keywords of the client's schema reach the provider untouched
    schema = '{"type":"object","$schema":"http://json-schema.org/draft-07/schema#","properties":{"z":{"type":"integer","minimum":0},"a":{"type":"string"}},"additionalProperties":false}'
    raw = (
        b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],'
        b'"tools":[{"name":"t","input_schema":' + schema.encode() + b"}]}"
    )
    request = a.request_decoder.decode(raw)
    encoded = oc.request_from_anthropic(request, UPSTREAM_MODEL)
    assert b'"parameters":' + schema.encode() in encoded


def test_sampling_fields_and_stop_sequences() -> None:
    out = translate(
        body(
            [{"role": "user", "content": "hi"}],
            temperature=0.25,
            top_p=0.9,
            top_k=40,
            stop_sequences=["END", "\n\nHuman:"],
        )
    )
    assert_valid_chat_request(out)
    assert out["temperature"] == 0.25
    assert out["top_p"] == 0.9
    assert out["stop"] == ["END", "\n\nHuman:"]
    assert "top_k" not in out


def test_more_than_four_stop_sequences_sends_the_first_four_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    """OpenAI takes at most 4 stop sequences (found by tests/fuzz: a 5th is refused with 400)."""
    stops = ["A", "B", "C", "D", "E", "F"]
    with caplog.at_level("WARNING", logger="aimw.translators.openai_chat"):
        out = translate(body([{"role": "user", "content": "hi"}], stop_sequences=stops))
    assert out["stop"] == ["A", "B", "C", "D"]
    (record,) = caplog.records
    assert record.getMessage() == "Chat Completions takes at most 4 stop sequences: 2 dropped"
    caplog.clear()
    with caplog.at_level("WARNING", logger="aimw.translators.openai_chat"):
        assert translate(body([{"role": "user", "content": "hi"}], stop_sequences=stops[:4]))["stop"] == stops[:4]
    assert not caplog.records


def test_a_tool_use_id_past_40_characters_is_sent_as_a_stable_digest() -> None:
    """OpenAI refuses tool call ids past 40 characters ("string too long. Expected a string
    with maximum length 40"); vLLM's are 46 (found by tests/fuzz). The call and its answer
    get the same 40-character id; shorter ids pass as they are."""
    long_id = "chatcmpl-tool-" + "0123456789abcdef" * 2  # vLLM's shape, 46 characters
    short_id = "toolu_01A09q90qw90lq917835lq9" + "x" * 11  # 40 characters
    calls = [
        {"type": "tool_use", "id": long_id, "name": "get_time", "input": {}},
        {"type": "tool_use", "id": short_id, "name": "get_time", "input": {}},
    ]
    results = [{"type": "tool_result", "tool_use_id": i, "content": i[-4:]} for i in (short_id, long_id)]
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": calls},
                {"role": "user", "content": results},
            ],
            tools=[TIME_TOOL],
        )
    )
    assert_valid_chat_request(out)
    digest = "toolu_" + hashlib.sha256(long_id.encode()).hexdigest()[:34]
    assert len(digest) == 40
    assert [call["id"] for call in out["messages"][1]["tool_calls"]] == [digest, short_id]
    assert [(m["tool_call_id"], m["content"]) for m in out["messages"][2:]] == [(digest, "cdef"), (short_id, "xxxx")]
    again = translate(body([{"role": "user", "content": "go"}, {"role": "assistant", "content": calls[:1]}]))
    assert again["messages"][1]["tool_calls"][0]["id"] == digest  # the same every time
    orphan = translate(
        body([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": long_id, "content": "x"}]}])
    )
    assert orphan["messages"] == [{"role": "user", "content": f"Result of tool call {long_id}: x"}]


def test_absent_sampling_fields_are_not_sent() -> None:
    out = translate(body([{"role": "user", "content": "hi"}], stop_sequences=[]))
    for key in ("temperature", "top_p", "stop", "tools", "tool_choice", "user", "stream_options"):
        assert key not in out


def test_metadata_without_user_id_sends_no_user() -> None:
    out = translate(body([{"role": "user", "content": "hi"}], metadata={}))
    assert "user" not in out
    out = translate(body([{"role": "user", "content": "hi"}], metadata={"user_id": "u-1"}))
    assert out["user"] == "u-1"


def test_max_completion_tokens_field() -> None:
    out = translate(
        body([{"role": "user", "content": "hi"}], max_tokens=1234), max_tokens_field="max_completion_tokens"
    )
    assert_valid_chat_request(out)
    assert out["max_completion_tokens"] == 1234
    assert "max_tokens" not in out


def test_stream_asks_for_usage() -> None:
    out = translate(body([{"role": "user", "content": "hi"}], stream=True))
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}


def test_thinking_blocks_are_dropped_from_assistant_turns() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "SECRET-REASONING", "signature": "SIG-XYZ"},
                        {"type": "redacted_thinking", "data": "REDACTED-BLOB"},
                        {"type": "text", "text": "Checking."},
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    ],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "16C"}]},
            ],
            tools=[WEATHER_TOOL],
            thinking={"type": "enabled", "budget_tokens": 2000},
        )
    )
    assert_valid_chat_request(out)
    encoded = json.dumps(out)
    for secret in ("SECRET-REASONING", "SIG-XYZ", "REDACTED-BLOB"):
        assert secret not in encoded
    assistant = out["messages"][1]
    assert assistant["content"] == "Checking."
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["get_weather"]
    assert out["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "16C"}


def test_assistant_with_only_tool_use_and_multiple_texts() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "get_time", "input": {}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "noon"}]},
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "It is"}, {"type": "text", "text": "noon."}],
                },
            ],
            tools=[TIME_TOOL],
        )
    )
    assert_valid_chat_request(out)
    assert out["messages"][1]["tool_calls"][0]["function"] == {"name": "get_time", "arguments": "{}"}
    assert out["messages"][1].get("content") in (None, "")
    last = out["messages"][-1]
    assert last["role"] == "assistant"
    assert last["content"].index("It is") < last["content"].index("noon.")


def test_parallel_tool_results_follow_call_order() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "both"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "call_a",
                            "name": "get_weather",
                            "input": {"city": "Oslo", "unit": "c"},
                        },
                        {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        # answered in the other order, and with text after the results
                        {
                            "type": "tool_result",
                            "tool_use_id": "call_b",
                            "content": [{"type": "text", "text": "09:00"}],
                        },
                        {"type": "tool_result", "tool_use_id": "call_a", "content": "-3C"},
                        {"type": "text", "text": "thanks"},
                    ],
                },
            ],
            tools=[WEATHER_TOOL, TIME_TOOL],
        )
    )
    assert_valid_chat_request(out)
    messages = out["messages"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["call_a", "call_b"]
    assert json.loads(messages[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo", "unit": "c"}
    assert messages[2] == {"role": "tool", "tool_call_id": "call_a", "content": "-3C"}
    assert messages[3] == {"role": "tool", "tool_call_id": "call_b", "content": "09:00"}
    assert messages[4] == {"role": "user", "content": "thanks"}


def test_tool_result_error_is_visible() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_time", "input": {}}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "clock broken", "is_error": True}
                    ],
                },
            ],
            tools=[TIME_TOOL],
        )
    )
    tool = out["messages"][2]
    assert tool["role"] == "tool"
    assert "clock broken" in tool["content"]
    assert "error" in tool["content"].lower().replace("clock broken", "")
    # an empty error result still says it failed
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_time", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": True}]},
            ],
            tools=[TIME_TOOL],
        )
    )
    assert "error" in out["messages"][2]["content"].lower()


def test_tool_result_with_image_blocks() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "screenshot please"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "shot", "name": "get_time", "input": {}}]},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "shot",
                            "content": [
                                {"type": "text", "text": "here it is"},
                                {
                                    "type": "image",
                                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
                                },
                            ],
                        }
                    ],
                },
            ],
            tools=[TIME_TOOL],
        )
    )
    assert_valid_chat_request(out)
    messages = out["messages"]
    assert messages[2] == {"role": "tool", "tool_call_id": "shot", "content": "here it is"}
    # the image cannot ride in a tool message; it follows in a user message
    assert messages[3]["role"] == "user"
    assert {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}} in messages[3]["content"]
    assert len(messages) == 4


def test_unanswered_tool_use_gets_a_tool_message() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "a1", "name": "get_time", "input": {}},
                        {"type": "tool_use", "id": "a2", "name": "get_time", "input": {}},
                    ],
                },
                # only the second call is answered, and the user also says something
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "a2", "content": "ok"},
                        {"type": "text", "text": "never mind the first"},
                    ],
                },
                {"role": "assistant", "content": [{"type": "tool_use", "id": "b1", "name": "get_time", "input": {}}]},
                {"role": "user", "content": "stop calling tools"},
            ],
            tools=[TIME_TOOL],
        )
    )
    assert_valid_chat_request(out)  # pairing holds even with the gaps
    tools = [m for m in out["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tools] == ["a1", "a2", "b1"]
    assert tools[1]["content"] == "ok"
    assert tools[0]["content"] and tools[0]["content"] != "ok"
    assert out["messages"][-1] == {"role": "user", "content": "stop calling tools"}
    assert any(m["role"] == "user" and m["content"] == "never mind the first" for m in out["messages"])


def test_tool_use_as_the_last_turn_is_answered() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "z", "name": "get_time", "input": {}}]},
            ],
            tools=[TIME_TOOL],
        )
    )
    assert_valid_chat_request(out)
    assert out["messages"][-1]["role"] == "tool" and out["messages"][-1]["tool_call_id"] == "z"


def test_orphan_tool_result_becomes_user_text() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "hi"},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_ghost", "content": "GHOST OUTPUT"},
                        {"type": "text", "text": "what was that?"},
                    ],
                },
            ]
        )
    )
    assert_valid_chat_request(out)  # in particular: no role "tool" message without its call
    last = out["messages"][-1]
    assert last["role"] == "user"
    text = message_text(last)
    assert "GHOST OUTPUT" in text and "toolu_ghost" in text and "what was that?" in text


def test_tool_use_input_round_trips_to_arguments() -> None:
    tool_input = {"s": 'quote " and \\ and \u00e9 \U0001f600', "n": [1, 2.5, None, True], "o": {"k": {}}}
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "x", "name": "get_weather", "input": tool_input}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": "done"}]},
            ],
            tools=[WEATHER_TOOL],
        )
    )
    assert json.loads(out["messages"][1]["tool_calls"][0]["function"]["arguments"]) == tool_input


def test_system_role_messages_stay_system() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "a"},
                {"role": "system", "content": "ENV INFO"},
                {
                    "role": "system",
                    "content": [{"type": "text", "text": "MORE", "cache_control": {"type": "ephemeral"}}],
                },
            ],
            system=[{"type": "text", "text": "TOP", "cache_control": {"type": "ephemeral"}}],
        )
    )
    assert_valid_chat_request(out)
    assert [(m["role"], m["content"]) for m in out["messages"]] == [
        ("system", "TOP"),
        ("user", "a"),
        ("system", "ENV INFO"),
        ("system", "MORE"),
    ]


def test_unknown_content_block_type_fails_to_decode() -> None:
    raw = json.dumps(body([{"role": "user", "content": [{"type": "hologram", "data": "x"}]}])).encode()
    with pytest.raises(msgspec.ValidationError):
        a.request_decoder.decode(raw)


def test_unknown_top_level_fields_are_ignored() -> None:
    out = translate(body([{"role": "user", "content": "hi"}], some_future_field={"x": 1}, service_tier="auto"))
    assert_valid_chat_request(out)
    assert "some_future_field" not in out and "service_tier" not in out


def test_the_validator_catches_broken_pairing() -> None:
    """The pairing check used on the corpus must be able to fail."""
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    with pytest.raises(AssertionError):
        assert_tool_pairing([{"role": "assistant", "tool_calls": [call]}, {"role": "user", "content": "x"}])
    with pytest.raises(AssertionError):
        assert_tool_pairing([{"role": "tool", "tool_call_id": "c1", "content": "x"}])
    with pytest.raises(AssertionError):
        assert_tool_pairing(
            [
                {"role": "assistant", "tool_calls": [call, {**call, "id": "c2"}]},
                {"role": "tool", "tool_call_id": "c2", "content": "x"},
                {"role": "tool", "tool_call_id": "c1", "content": "x"},
            ]
        )
    with pytest.raises(AssertionError):
        assert_valid_chat_request({"model": "m", "messages": [{"role": "user", "content": "x", "cache_control": {}}]})


# ---------------------------------------------------------------- a system turn between a tool call and its result


def test_a_system_turn_between_tool_use_and_tool_result_waits_for_the_tool_messages() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "a1", "name": "get_time", "input": {}},
                        {"type": "tool_use", "id": "a2", "name": "get_time", "input": {}},
                    ],
                },
                {"role": "system", "content": "ENV CHANGED"},
                {"role": "system", "content": [{"type": "text", "text": "MORE"}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "a1", "content": "09:00"},
                        {"type": "tool_result", "tool_use_id": "a2", "content": "10:00"},
                        {"type": "text", "text": "thanks"},
                    ],
                },
            ],
            tools=[TIME_TOOL],
        )
    )
    assert_valid_chat_request(out)
    assert [(m["role"], m.get("tool_call_id"), m["content"]) for m in out["messages"][2:]] == [
        ("tool", "a1", "09:00"),  # the real results, not "No result was provided"
        ("tool", "a2", "10:00"),
        ("system", None, "ENV CHANGED"),
        ("system", None, "MORE"),
        ("user", None, "thanks"),
    ]


def test_a_held_system_turn_comes_out_when_no_user_turn_follows() -> None:
    tool_use = {"type": "tool_use", "id": "a1", "name": "get_time", "input": {}}
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [tool_use]},
                {"role": "system", "content": "AT THE END"},
            ],
            tools=[TIME_TOOL],
        )
    )
    assert_valid_chat_request(out)
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "tool", "system"]
    assert out["messages"][-1]["content"] == "AT THE END"
    then_assistant = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [tool_use]},
                {"role": "system", "content": "BETWEEN"},
                {"role": "assistant", "content": "done"},
            ],
            tools=[TIME_TOOL],
        )
    )
    assert_valid_chat_request(then_assistant)
    assert [(m["role"], m["content"]) for m in then_assistant["messages"][2:]] == [
        ("tool", "No result was provided for this tool call."),
        ("system", "BETWEEN"),
        ("assistant", "done"),
    ]


# ---------------------------------------------------------------- system_turns="merge"


def system_texts_in_order(raw: dict) -> list[str]:
    """The top-level system's texts, then each system turn's, as Claude Code sent them."""
    system = raw.get("system")
    texts = block_texts(system) if system else []
    for message in raw["messages"]:
        if message["role"] == "system":
            texts.extend(block_texts(message["content"]))
    return [text for text in texts if text]


def test_corpus_merge_leaves_one_leading_system_message(corpus_case: tuple[dict, dict]) -> None:
    """Every system text, in order, in the first message; the rest is what inline sends
    without its system messages."""
    raw, _ = corpus_case
    inline, merged = translate(raw), translate(raw, system_turns="merge")
    assert_valid_chat_request(merged)
    texts = system_texts_in_order(raw)
    leading = [{"role": "system", "content": "\n\n".join(texts)}] if texts else []
    assert merged["messages"][: len(leading)] == leading
    rest = merged["messages"][len(leading) :]
    assert all(message["role"] != "system" for message in rest)
    assert rest == [message for message in inline["messages"] if message["role"] != "system"]
    assert {key: value for key, value in merged.items() if key != "messages"} == {
        key: value for key, value in inline.items() if key != "messages"
    }


def test_merge_of_a_real_tool_turn_with_a_system_turn() -> None:
    """Claude Code's second turn of a Bash call: user, system, assistant (tool_use), user
    (tool_result). Merged, the system turn's text follows the three system blocks."""
    raw = json.loads(next(path for path in CORPUS if path.name.startswith("009-")).read_bytes())
    assert [message["role"] for message in raw["messages"]] == ["user", "system", "assistant", "user"]
    turn = raw["messages"][1]["content"]
    assert isinstance(turn, str) and turn.startswith("# Environment")
    inline = translate(raw)
    assert [m["role"] for m in inline["messages"]] == ["system", "user", "system", "assistant", "tool"]
    merged = translate(raw, system_turns="merge")
    assert [m["role"] for m in merged["messages"]] == ["system", "user", "assistant", "tool"]
    system = merged["messages"][0]["content"]
    assert system == inline["messages"][0]["content"] + "\n\n" + inline["messages"][2]["content"]
    assert system.endswith("\n\n" + turn)


def test_merge_keeps_tool_answers_right_after_their_calls_and_the_system_order() -> None:
    tool_use = {"type": "tool_use", "id": "a1", "name": "get_time", "input": {}}
    out = translate(
        body(
            [
                {"role": "system", "content": "FIRST TURN"},
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [tool_use]},
                {"role": "system", "content": [{"type": "text", "text": "ENV"}, {"type": "text", "text": "MORE"}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a1", "content": "09:00"}]},
                {"role": "system", "content": "AT THE END"},
            ],
            system=[{"type": "text", "text": "TOP"}, {"type": "text", "text": "TOP 2"}],
            tools=[TIME_TOOL],
        ),
        system_turns="merge",
    )
    assert_valid_chat_request(out)
    assert [(m["role"], m.get("tool_call_id"), m.get("content")) for m in out["messages"]] == [
        ("system", None, "TOP\n\nTOP 2\n\nFIRST TURN\n\nENV\n\nMORE\n\nAT THE END"),
        ("user", None, "go"),
        ("assistant", None, None),
        ("tool", "a1", "09:00"),
    ]


def test_merge_without_a_top_level_system() -> None:
    turns = [{"role": "user", "content": "hi"}, {"role": "system", "content": ""}, {"role": "system", "content": "S"}]
    assert translate(body(turns), system_turns="merge")["messages"] == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "hi"},
    ]
    assert translate(body(turns[:2]), system_turns="merge")["messages"] == [{"role": "user", "content": "hi"}]


def test_the_wire_format_option_merges() -> None:
    raw = json.dumps(body([{"role": "user", "content": "hi"}, {"role": "system", "content": "S"}])).encode()
    call = AnthropicCall(raw, a.decode_request(raw), UPSTREAM_MODEL, False, "/v1/messages", b"")
    merged = oc.OpenAIChat(oc.ChatOptions(system_turns="merge")).build_request(call)
    assert json.loads(merged.body)["messages"] == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "hi"},
    ]
    inline = oc.OpenAIChat().build_request(call)
    assert [m["role"] for m in json.loads(inline.body)["messages"]] == ["user", "system"]


# ---------------------------------------------------------------- tool search, search results, server tools

DEFERRED_FETCH = {
    "name": "WebFetch",
    "description": "Fetch a URL",
    "input_schema": {"type": "object", "properties": {"url": {"type": "string"}}},
    "defer_loading": True,
}
DEFERRED_OTHER = {**DEFERRED_FETCH, "name": "NotebookEdit", "description": "Edit a notebook"}
TOOL_SEARCH = {"name": "ToolSearch", "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}


def tool_search_history(result_content: list) -> list:
    return [
        {"role": "user", "content": "fetch example.com"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "ts1", "name": "ToolSearch", "input": {"query": "select:WebFetch"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "ts1", "content": result_content}]},
    ]


def test_tool_reference_loads_the_deferred_tool() -> None:
    """Claude Code's ToolSearch answers with tool_reference blocks; the tool they name is
    then callable, so it must reach the Chat Completions tools."""
    messages = tool_search_history([{"type": "tool_reference", "tool_name": "WebFetch"}])
    out = translate(body(messages, tools=[TOOL_SEARCH, DEFERRED_OTHER, DEFERRED_FETCH]))
    assert_valid_chat_request(out)
    assert [t["function"]["name"] for t in out["tools"]] == ["ToolSearch", "WebFetch"]
    fetch = out["tools"][1]["function"]
    assert fetch == {"name": "WebFetch", "description": "Fetch a URL", "parameters": DEFERRED_FETCH["input_schema"]}
    tool_message = out["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "ts1"
    assert "WebFetch" in tool_message["content"] and "available" in tool_message["content"]
    # without the tool_reference the deferred tools stay hidden
    plain = translate(
        body(tool_search_history([{"type": "text", "text": "none"}]), tools=[TOOL_SEARCH, DEFERRED_FETCH])
    )
    assert [t["function"]["name"] for t in plain["tools"]] == ["ToolSearch"]


def test_tool_reference_is_only_tool_result_content() -> None:
    raw = json.dumps(
        body([{"role": "user", "content": [{"type": "tool_reference", "tool_name": "WebFetch"}]}])
    ).encode()
    with pytest.raises(msgspec.ValidationError):
        a.request_decoder.decode(raw)


SEARCH_RESULT = {
    "type": "search_result",
    "source": "https://docs.example.com/api",
    "title": "API reference",
    "content": [{"type": "text", "text": "First fact."}, {"type": "text", "text": "Second fact."}],
    "citations": {"enabled": True},
}


def test_search_result_becomes_text_in_a_turn_and_in_a_tool_result() -> None:
    messages = [
        {"role": "user", "content": [SEARCH_RESULT, {"type": "text", "text": "summarise"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "s1", "name": "get_time", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "s1", "content": [SEARCH_RESULT]}]},
    ]
    out = translate(body(messages, tools=[TIME_TOOL]))
    assert_valid_chat_request(out)
    for text in (out["messages"][0]["content"], out["messages"][-1]["content"]):
        assert isinstance(text, str)
        for piece in ("API reference", "https://docs.example.com/api", "First fact.", "Second fact."):
            assert piece in text
    assert out["messages"][0]["content"].endswith("summarise")


def test_server_tool_blocks_become_text_never_tool_calls() -> None:
    """A resumed history can hold web_search / web_fetch that ran on Anthropic's servers."""
    messages = [
        {"role": "user", "content": "news?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Searching."},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "aimw news"}},
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": "srvtoolu_1",
                    "content": [
                        {
                            "type": "web_search_result",
                            "url": "https://news.example",
                            "title": "News",
                            "encrypted_content": "EC",
                        }
                    ],
                },
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_2",
                    "name": "web_fetch",
                    "input": {"url": "https://news.example"},
                },
                {
                    "type": "web_fetch_tool_result",
                    "tool_use_id": "srvtoolu_2",
                    "content": {"type": "web_fetch_tool_error", "error_code": "url_not_accessible"},
                },
                {"type": "text", "text": "Nothing found."},
            ],
        },
        {"role": "user", "content": "ok"},
    ]
    out = translate(body(messages))
    assert_valid_chat_request(out)
    assistant = out["messages"][1]
    assert assistant["role"] == "assistant" and "tool_calls" not in assistant
    text = assistant["content"]
    assert text.startswith("Searching.") and text.endswith("Nothing found.")
    for piece in ("web_search", "srvtoolu_1", "aimw news", "https://news.example", "web_fetch", "url_not_accessible"):
        assert piece in text, piece
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]


def test_new_blocks_are_counted_by_the_token_estimate() -> None:
    def estimate(content: list) -> int:
        return estimate_input_tokens(
            a.request_decoder.decode(json.dumps(body([{"role": "user", "content": content}])).encode())
        )

    empty = estimate([])
    long_text = "word " * 400
    blocks = [
        {**SEARCH_RESULT, "content": [{"type": "text", "text": long_text}]},
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "tool_reference", "tool_name": "X" * 400}]},
        {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {"query": long_text}},
        {
            "type": "web_search_tool_result",
            "tool_use_id": "s",
            "content": [{"type": "web_search_result", "title": long_text}],
        },
        {
            "type": "web_fetch_tool_result",
            "tool_use_id": "s",
            "content": {"type": "web_fetch_result", "url": long_text},
        },
    ]
    for block in blocks:
        assert estimate([block]) > empty + 100, block["type"]


@pytest.mark.parametrize(
    "block",
    [
        b'{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "\x80"}}',
        b'{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "\xff"}}',
    ],
)
def test_a_tool_input_that_is_not_utf8_is_a_400_not_a_crash(block: bytes) -> None:
    """msgspec keeps tool inputs as raw JSON, unchecked: invalid UTF-8 there (RFC 8259 §8.1)
    is the client's error, named, never a 500 (found by tests/fuzz_http)."""
    body = (
        b'{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"},'
        b' {"role": "assistant", "content": [' + block + b"]}]}"
    )
    with pytest.raises(GatewayError) as refused:
        translate(body)
    assert refused.value.status == 400
    assert "not valid UTF-8" in refused.value.message
