"""Anthropic Messages request -> Gemini generateContent body (gemini.request_from_anthropic).

Every body Claude Code really sent (the corpus) is translated and must pass a strict check
of what Gemini accepts (``assert_valid_gemini_request``: Google's API reference,
"generateContent", "Content", "Part", "FunctionDeclaration", "FunctionCallingConfig",
"GenerationConfig", "ThinkingConfig"; the Gemini API docs, "Function calling"), and keep
every text, call and result; hand-built requests cover what the corpus does not show.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aimw.errors import GatewayError
from aimw.translators import gemini
from aimw.translators.anthropic import messages as a
from tests.asgi_helpers import anthropic_stream
from tests.shared_data import KONG, corpus_bodies

# ---------------------------------------------------------------- the strict check

REQUEST_KEYS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig"}
DATA_FIELDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
PART_METADATA = {"thought", "thoughtSignature"}
# Google's API reference, "GenerationConfig" responseJsonSchema: the JSON Schema subset
# Gemini documents (parametersJsonSchema takes the same).
SCHEMA_KEYWORDS = {
    "$id",
    "$defs",
    "$ref",
    "$anchor",
    "type",
    "format",
    "title",
    "description",
    "enum",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "anyOf",
    "oneOf",
    "properties",
    "additionalProperties",
    "required",
    "propertyOrdering",
}
JSON_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}
# "FunctionDeclaration.name": a letter or underscore first; letters, digits, _ . : -; 64 at most.
FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
GENERATION_TYPES: dict[str, Any] = {
    "maxOutputTokens": int,
    "temperature": (int, float),
    "topP": (int, float),
    "topK": int,
    "stopSequences": list,
    "thinkingConfig": dict,
}
ANTHROPIC_ONLY_KEYS = {
    "cache_control",
    "context_management",
    "output_config",
    "thinking",
    "budget_tokens",
    "metadata",
    "system",
    "stop_sequences",
    "input_schema",
    "tool_use_id",
    "is_error",
    "media_type",
    "defer_loading",
    "max_tokens",
    "model",
    "messages",
    "stream",
    "tool_choice",
    "type",
}


def assert_valid_schema(node: Any, where: str) -> None:
    """A JSON Schema holding only Gemini's documented keywords, all the way down."""
    if isinstance(node, bool):
        return
    assert isinstance(node, dict), where
    unknown = set(node) - SCHEMA_KEYWORDS
    assert not unknown, f"{where}: keywords Gemini does not document: {unknown}"
    kind = node.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        assert kinds and set(kinds) <= JSON_TYPES, (where, kind)
    if "enum" in node:
        assert node["enum"] and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in node["enum"])
    for key in ("description", "title", "format", "$ref", "$id", "$anchor"):
        assert key not in node or isinstance(node[key], str), (where, key)
    for key in ("minItems", "maxItems"):
        assert key not in node or (isinstance(node[key], int) and node[key] >= 0), (where, key)
    for key in ("minimum", "maximum"):
        assert key not in node or isinstance(node[key], (int, float)), (where, key)
    properties = node.get("properties", {})
    assert isinstance(properties, dict), where
    for name, sub in properties.items():
        assert_valid_schema(sub, f"{where}.properties.{name}")
    if "required" in node:
        assert node["required"] and set(node["required"]) <= set(properties), (where, node["required"])
    for key in ("items", "additionalProperties"):
        if key in node:
            assert_valid_schema(node[key], f"{where}.{key}")
    for key in ("anyOf", "oneOf", "prefixItems"):
        for i, sub in enumerate(node.get(key, ())):
            assert_valid_schema(sub, f"{where}.{key}[{i}]")
    for name, sub in node.get("$defs", {}).items():
        assert_valid_schema(sub, f"{where}.$defs.{name}")


def assert_valid_part(part: dict, role: str) -> None:
    assert isinstance(part, dict) and part, part
    data = set(part) & DATA_FIELDS
    assert len(data) == 1, f"a part holds exactly one data field: {part}"
    assert set(part) - DATA_FIELDS <= PART_METADATA, part
    if "thoughtSignature" in part:
        assert role == "model", "signatures go back on model parts only"
        assert isinstance(part["thoughtSignature"], str) and part["thoughtSignature"]
    if "thought" in part:
        assert part["thought"] is True and role == "model" and "text" in part and "thoughtSignature" in part, part
    if "text" in part:
        assert isinstance(part["text"], str)
        assert part["text"] or "thoughtSignature" in part, "no empty text part"
    if "inlineData" in part:
        assert set(part["inlineData"]) == {"mimeType", "data"}, part
        assert all(isinstance(v, str) and v for v in part["inlineData"].values())
    if "fileData" in part:
        assert "fileUri" in part["fileData"] and set(part["fileData"]) <= {"fileUri", "mimeType"}, part
    if "functionCall" in part:
        assert role == "model"
        assert set(part["functionCall"]) == {"name", "args"}
        assert isinstance(part["functionCall"]["args"], dict)
    if "functionResponse" in part:
        assert role == "user"
        assert set(part["functionResponse"]) == {"name", "response"}
        assert isinstance(part["functionResponse"]["response"], dict) and part["functionResponse"]["response"]


def assert_calls_answered(contents: list[dict]) -> None:
    """Every model turn's functionCall parts are answered by the next turn, a user turn, with
    functionResponse parts of the same names, count and order; none stands elsewhere."""
    calls: list[str] = []
    for i, content in enumerate(contents):
        responses = [p["functionResponse"]["name"] for p in content["parts"] if "functionResponse" in p]
        if calls:
            assert content["role"] == "user", f"content {i} must answer {calls}"
        assert responses == calls, f"content {i}: responses {responses} for calls {calls}"
        calls = [p["functionCall"]["name"] for p in content["parts"] if "functionCall" in p]
    assert not calls, f"the last model turn's calls {calls} have no responses"


def walk_keys(node: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, key) of every object key, not entering schemas, call args and responses
    (the client's own data)."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((path, key))
            if key not in ("parametersJsonSchema", "args", "response"):
                found.extend(walk_keys(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found.extend(walk_keys(item, f"{path}[{i}]"))
    return found


def assert_valid_gemini_request(out: dict) -> None:
    """What Gemini's generateContent accepts, checked strictly."""
    assert set(out) <= REQUEST_KEYS, set(out) - REQUEST_KEYS
    contents = out["contents"]
    assert contents, "at least one content"
    for i, content in enumerate(contents):
        assert set(content) == {"role", "parts"}, content.keys()
        assert content["role"] in ("user", "model")
        assert content["parts"], f"content {i} has no parts"
        if i:
            assert content["role"] != contents[i - 1]["role"], f"roles alternate (content {i})"
        for part in content["parts"]:
            assert_valid_part(part, content["role"])
    assert_calls_answered(contents)
    if "systemInstruction" in out:
        system = out["systemInstruction"]
        assert set(system) == {"parts"} and system["parts"]
        assert all(set(part) == {"text"} and part["text"] for part in system["parts"])
    names: list[str] = []
    if "tools" in out:
        assert len(out["tools"]) == 1 and set(out["tools"][0]) == {"functionDeclarations"}
        for declaration in out["tools"][0]["functionDeclarations"]:
            assert set(declaration) <= {"name", "description", "parametersJsonSchema"}, declaration.keys()
            assert FUNCTION_NAME.fullmatch(declaration["name"]), declaration["name"]
            names.append(declaration["name"])
            if "parametersJsonSchema" in declaration:
                schema = declaration["parametersJsonSchema"]
                assert schema["type"] == "object"
                assert_valid_schema(schema, declaration["name"])
        assert len(names) == len(set(names)), "function names are unique"
    if "toolConfig" in out:
        config = out["toolConfig"]["functionCallingConfig"]
        assert config["mode"] in ("AUTO", "ANY", "NONE") and set(config) <= {"mode", "allowedFunctionNames"}
        assert set(config.get("allowedFunctionNames", ())) <= set(names) and names
    if "generationConfig" in out:
        config = out["generationConfig"]
        assert config and set(config) <= set(GENERATION_TYPES), config
        for key, value in config.items():
            assert isinstance(value, GENERATION_TYPES[key]) and not isinstance(value, bool), (key, value)
        assert config.get("maxOutputTokens", 1) > 0
        stops = config.get("stopSequences", ())
        assert len(stops) <= 5 and all(isinstance(s, str) and s for s in stops), "at most 5 stop sequences"
        thinking = config.get("thinkingConfig", {})
        assert set(thinking) <= {"thinkingBudget", "includeThoughts"}
        assert isinstance(thinking.get("thinkingBudget", 0), int) and isinstance(
            thinking.get("includeThoughts", True), bool
        )
        if "thinkingBudget" in thinking:  # Gemini API docs, "Thinking": 2.5 Flash takes 0 to 24576
            assert 0 <= thinking["thinkingBudget"] <= 24576, thinking
            assert thinking["thinkingBudget"] < config.get("maxOutputTokens", 24577), "no room left for the answer"
    leaked = [(path, key) for path, key in walk_keys(out) if key in ANTHROPIC_ONLY_KEYS]
    assert not leaked, leaked


def translate(body: dict | bytes) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    out = json.loads(gemini.request_from_anthropic(a.decode_request(raw)))
    assert_valid_gemini_request(out)
    return out


def texts(content: str | list) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    return [block["text"] for block in content if block["type"] == "text" and block["text"]]


# ---------------------------------------------------------------- the Claude Code corpus

CORPUS = corpus_bodies()


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) >= 20
    assert any("tool_result" in path.read_text() for path in CORPUS)
    assert any('"role": "system"' in path.read_text() for path in CORPUS)


@pytest.fixture(params=CORPUS, ids=[path.name.split("-")[0] for path in CORPUS])
def corpus_case(request: pytest.FixtureRequest) -> tuple[dict, dict]:
    path: Path = request.param
    body = path.read_bytes()
    return json.loads(body), translate(body)  # translate() runs the strict check


def test_corpus_system_texts_become_the_system_instruction_in_order(corpus_case: tuple[dict, dict]) -> None:
    raw, out = corpus_case
    system = raw.get("system")
    expected = texts(system) if system is not None else []
    for message in raw["messages"]:
        if message["role"] == "system":
            expected.extend(texts(message["content"]))
    got = [part["text"] for part in out.get("systemInstruction", {}).get("parts", ())]
    assert got == expected
    assert any(message["role"] == "system" for message in raw["messages"]) <= bool(got)


def test_corpus_turn_texts_are_kept_in_order(corpus_case: tuple[dict, dict]) -> None:
    raw, out = corpus_case
    for role, gemini_role in (("user", "user"), ("assistant", "model")):
        expected = [text for m in raw["messages"] if m["role"] == role for text in texts(m["content"])]
        got = [
            part["text"]
            for content in out["contents"]
            if content["role"] == gemini_role
            for part in content["parts"]
            if "text" in part
        ]
        assert got == expected


def test_corpus_calls_and_results_are_kept(corpus_case: tuple[dict, dict]) -> None:
    raw, out = corpus_case
    uses = [
        b
        for m in raw["messages"]
        if m["role"] == "assistant" and isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == "tool_use"
    ]
    results = {
        b["tool_use_id"]: b
        for m in raw["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == "tool_result"
    }
    calls = [p["functionCall"] for c in out["contents"] for p in c["parts"] if "functionCall" in p]
    responses = [p["functionResponse"] for c in out["contents"] for p in c["parts"] if "functionResponse" in p]
    assert [(call["name"], call["args"]) for call in calls] == [(use["name"], use["input"]) for use in uses]
    for use, response in zip(uses, responses, strict=True):
        result = results[use["id"]]
        key = "error" if result.get("is_error") else "content"
        content = result["content"] if isinstance(result["content"], str) else "\n\n".join(texts(result["content"]))
        assert response == {"name": use["name"], "response": {key: content}}


def test_corpus_tools_are_declared_and_deferred_ones_left_out(corpus_case: tuple[dict, dict]) -> None:
    raw, out = corpus_case
    kept = [tool for tool in raw.get("tools", []) if not tool.get("defer_loading")]
    declarations = out["tools"][0]["functionDeclarations"] if "tools" in out else []
    assert [d["name"] for d in declarations] == [tool["name"] for tool in kept]
    for tool, declaration in zip(kept, declarations, strict=True):
        assert declaration.get("description") == tool.get("description")
        properties = tool["input_schema"].get("properties")
        if properties:
            assert set(declaration["parametersJsonSchema"]["properties"]) == set(properties), tool["name"]
        else:  # Gemini wants no parameters rather than an object without properties
            assert "parametersJsonSchema" not in declaration, tool["name"]
    assert "toolConfig" not in out  # Claude Code sends no tool_choice


def test_corpus_generation_config(corpus_case: tuple[dict, dict]) -> None:
    raw, out = corpus_case
    config = out.get("generationConfig", {})
    assert config.get("maxOutputTokens") == (min(raw["max_tokens"], 65536) if "max_tokens" in raw else None)
    assert "thinkingConfig" not in config  # adaptive thinking: the model's default


def test_corpus_asks_more_output_than_gemini_takes() -> None:
    """Claude Code asks 128000 tokens of claude-*-5-5 models: Gemini 2.5 takes at most 65536
    (it refuses more with 400, "the supported range is from 1 (inclusive) to 65537")."""
    asked = {json.loads(path.read_bytes()).get("max_tokens") for path in CORPUS}
    assert 128000 in asked
    raw = next(json.loads(path.read_bytes()) for path in CORPUS if path.name.startswith("002-"))
    assert raw["max_tokens"] == 128000
    assert translate(raw)["generationConfig"]["maxOutputTokens"] == 65536


def test_corpus_shows_what_the_checks_need() -> None:
    bodies = [json.loads(path.read_bytes()) for path in CORPUS]
    assert any(tool.get("defer_loading") for body in bodies for tool in body.get("tools", []))
    assert any(
        block.get("is_error")
        for body in bodies
        for m in body["messages"]
        if isinstance(m["content"], list)
        for block in m["content"]
    )


# ---------------------------------------------------------------- the check itself


@pytest.mark.parametrize(
    "broken",
    [
        {"contents": [{"role": "user", "parts": []}]},
        {"contents": [{"role": "user", "parts": [{"text": ""}]}]},
        {"contents": [{"role": "user", "parts": [{"text": "a"}]}, {"role": "user", "parts": [{"text": "b"}]}]},
        {"contents": [{"role": "assistant", "parts": [{"text": "a"}]}]},
        {
            "contents": [
                {"role": "user", "parts": [{"text": "a"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "g", "response": {"content": ""}}}]},
            ]
        },
        {"contents": [{"role": "user", "parts": [{"text": "a"}]}], "systemInstruction": {"parts": []}},
        {
            "contents": [{"role": "user", "parts": [{"text": "a"}]}],
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "f",
                            "parametersJsonSchema": {
                                "type": "object",
                                "properties": {"x": {"type": "string", "pattern": "a"}},
                            },
                        }
                    ]
                }
            ],
        },
        {"contents": [{"role": "user", "parts": [{"text": "a"}]}], "generationConfig": {"maxOutputTokens": "10"}},
        {
            "contents": [{"role": "user", "parts": [{"text": "a"}]}],
            "generationConfig": {"stopSequences": list("abcdef")},
        },
        {
            "contents": [{"role": "user", "parts": [{"text": "a"}]}],
            "generationConfig": {"thinkingConfig": {"thinkingBudget": 31999}},
        },
        {
            "contents": [{"role": "user", "parts": [{"text": "a"}]}],
            "generationConfig": {"maxOutputTokens": 8192, "thinkingConfig": {"thinkingBudget": 8192}},
        },
    ],
    ids=[
        "no-parts",
        "empty-text",
        "same-role-twice",
        "unknown-role",
        "wrong-response",
        "empty-system",
        "pattern",
        "untyped-config",
        "six-stop-sequences",
        "budget-above-24576",
        "budget-not-below-max-output",
    ],
)
def test_the_strict_check_refuses_what_gemini_refuses(broken: dict) -> None:
    with pytest.raises(AssertionError):
        assert_valid_gemini_request(broken)


# ---------------------------------------------------------------- hand-built requests


def body(messages: list[dict], **fields: Any) -> dict:
    return {"model": "claude-x", "max_tokens": 1024, "messages": messages, **fields}


def test_consecutive_turns_of_a_role_are_merged_and_system_turns_lifted() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "one"},
                {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
                {"role": "user", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": ""}]},
                {"role": "assistant", "content": "three"},
                {"role": "assistant", "content": [{"type": "text", "text": "four"}]},
                {"role": "user", "content": "five"},
            ],
            system=[{"type": "text", "text": "top", "cache_control": {"type": "ephemeral"}}],
        )
    )
    assert out["systemInstruction"] == {"parts": [{"text": "top"}, {"text": "be brief"}]}
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
        {"role": "model", "parts": [{"text": "three"}, {"text": "four"}]},
        {"role": "user", "parts": [{"text": "five"}]},
    ]


def test_images_and_documents() -> None:
    out = translate(
        body(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/AA=="}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.PNG?x=1"}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat"}},
                        {
                            "type": "document",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                        },
                        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "plain words"},
                        },
                    ],
                }
            ]
        )
    )
    assert out["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/AA=="}},
        {"fileData": {"fileUri": "https://example.com/cat.PNG?x=1", "mimeType": "image/png"}},
        {"fileData": {"fileUri": "https://example.com/cat"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"fileData": {"fileUri": "https://example.com/a.pdf", "mimeType": "application/pdf"}},
        {"text": "plain words"},
    ]


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
        {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
        {"type": "document", "source": {"type": "content"}},
    ],
)
def test_content_gemini_cannot_carry_is_a_400(block: dict) -> None:
    with pytest.raises(GatewayError) as caught:
        gemini.request_from_anthropic(
            a.decode_request(json.dumps(body([{"role": "user", "content": [block]}])).encode())
        )
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "system", "content": "only a system turn"}],
        [{"role": "user", "content": [{"type": "text", "text": ""}]}],
    ],
)
def test_a_request_with_nothing_for_gemini_is_a_400(messages: list[dict]) -> None:
    with pytest.raises(GatewayError) as caught:
        gemini.request_from_anthropic(a.decode_request(json.dumps(body(messages)).encode()))
    assert caught.value.status == 400


def use(call_id: str, name: str, **arguments: Any) -> dict:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def result(call_id: str, content: Any = "ok", **fields: Any) -> dict:
    return {"type": "tool_result", "tool_use_id": call_id, "content": content, **fields}


def test_parallel_calls_are_answered_in_call_order_whatever_the_result_order() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [use("toolu_1", "Read", path="a"), use("toolu_2", "Bash", command="ls")],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "both done"},
                        result("toolu_2", [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]),
                        result("toolu_1", "denied", is_error=True, cache_control={"type": "ephemeral"}),
                    ],
                },
            ]
        )
    )
    assert out["contents"][1]["parts"] == [
        {"functionCall": {"name": "Read", "args": {"path": "a"}}},
        {"functionCall": {"name": "Bash", "args": {"command": "ls"}}},
    ]
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "Read", "response": {"error": "denied"}}},
        {"functionResponse": {"name": "Bash", "response": {"content": "x\n\ny"}}},
        {"text": "both done"},
    ]


def test_a_missing_result_is_answered_and_an_orphan_result_becomes_text() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [use("toolu_1", "Read", path="a")]},
                {"role": "user", "content": [result("toolu_9", "late"), {"type": "text", "text": "next"}]},
                {"role": "assistant", "content": [use("toolu_2", "Bash", command="ls")]},
                {"role": "assistant", "content": "then I stopped"},
                {"role": "assistant", "content": [use("toolu_3", "Bash", command="pwd")]},
            ]
        )
    )
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "Read", "response": {"error": "No result was provided for this tool call."}}},
        {"text": "Result of tool call toolu_9: late"},
        {"text": "next"},
    ]
    assert [c["role"] for c in out["contents"]] == ["user", "model", "user", "model", "user", "model", "user"]
    assert out["contents"][-1]["parts"] == [
        {"functionResponse": {"name": "Bash", "response": {"error": "No result was provided for this tool call."}}}
    ]


def test_tool_result_images_travel_after_the_responses() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}
    out = translate(
        body(
            [
                {"role": "user", "content": "look"},
                {"role": "assistant", "content": [use("toolu_1", "Screenshot")]},
                {"role": "user", "content": [result("toolu_1", [{"type": "text", "text": "here"}, image])]},
            ]
        )
    )
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "Screenshot", "response": {"content": "here"}}},
        {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
    ]


def test_a_tool_input_that_is_not_an_object_is_a_400() -> None:
    request = body(
        [{"role": "user", "content": "go"}, {"role": "assistant", "content": [{**use("toolu_1", "f"), "input": [1]}]}]
    )
    with pytest.raises(GatewayError) as caught:
        gemini.request_from_anthropic(a.decode_request(json.dumps(request).encode()))
    assert caught.value.status == 400


def test_server_and_deferred_tools_are_not_declared_until_loaded() -> None:
    tools = [
        {
            "name": "Bash",
            "description": "run",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
        },
        {"type": "web_search_20250305", "name": "web_search"},
        {
            "name": "Late",
            "defer_loading": True,
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
        {"name": "NoArgs", "input_schema": {"type": "object", "properties": {}}},
    ]
    out = translate(body([{"role": "user", "content": "hi"}], tools=tools))
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "Bash",
                    "description": "run",
                    "parametersJsonSchema": {"type": "object", "properties": {"command": {"type": "string"}}},
                },
                {"name": "NoArgs"},
            ]
        }
    ]
    loaded = translate(
        body(
            [
                {"role": "user", "content": "find"},
                {"role": "assistant", "content": [use("toolu_1", "ToolSearch", query="late")]},
                {"role": "user", "content": [result("toolu_1", [{"type": "tool_reference", "tool_name": "Late"}])]},
            ],
            tools=tools,
        )
    )
    assert [d["name"] for d in loaded["tools"][0]["functionDeclarations"]] == ["Bash", "Late", "NoArgs"]
    assert loaded["contents"][2]["parts"][0]["functionResponse"]["response"] == {
        "content": "Tool Late is now available."
    }


TOOLS = [{"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ({"type": "auto"}, {"mode": "AUTO"}),
        ({"type": "any"}, {"mode": "ANY"}),
        (
            {"type": "tool", "name": "Bash", "disable_parallel_tool_use": True},
            {"mode": "ANY", "allowedFunctionNames": ["Bash"]},
        ),
        ({"type": "none"}, {"mode": "NONE"}),
    ],
)
def test_tool_choice(choice: dict, config: dict) -> None:
    out = translate(body([{"role": "user", "content": "hi"}], tools=TOOLS, tool_choice=choice))
    assert out["toolConfig"] == {"functionCallingConfig": config}


@pytest.mark.parametrize(
    ("choice", "tools"),
    [({"type": "tool", "name": "Missing"}, TOOLS), ({"type": "any"}, []), ({"type": "tool"}, TOOLS)],
)
def test_tool_choice_gemini_would_refuse_is_a_400(choice: dict, tools: list) -> None:
    request = body([{"role": "user", "content": "hi"}], tools=tools, tool_choice=choice)
    with pytest.raises(GatewayError) as caught:
        gemini.request_from_anthropic(a.decode_request(json.dumps(request).encode()))
    assert caught.value.status == 400


def test_tool_choice_auto_without_tools_sends_no_config() -> None:
    assert "toolConfig" not in translate(body([{"role": "user", "content": "hi"}], tool_choice={"type": "auto"}))


def test_generation_config_and_thinking() -> None:
    out = translate(
        body(
            [{"role": "user", "content": "hi"}],
            max_tokens=2048,
            temperature=0.7,
            top_p=0.9,
            top_k=40,
            stop_sequences=["END", "STOP"],
            thinking={"type": "enabled", "budget_tokens": 1024},
            metadata={"user_id": "someone"},
        )
    )
    assert out["generationConfig"] == {
        "maxOutputTokens": 2048,
        "temperature": 0.7,
        "topP": 0.9,
        "topK": 40,
        "stopSequences": ["END", "STOP"],
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024},
    }


@pytest.mark.parametrize(
    "max_tokens, budget, sent",
    [
        (2048, 1024, 1024),
        (32000, 16000, 16000),
        (32000, 31999, 24576),  # Gemini 2.5 Flash's largest budget
        (8192, 31999, 8191),  # max_tokens capped by the gateway (AIMW_MAX_TOKENS, Kong's 8192): room for the answer
        (8192, 8192, 8191),
        (1024, 1024, 1023),
        (1, 1024, 0),
        (128000, 100000, 24576),  # maxOutputTokens capped at 65536 too
    ],
)
def test_thinking_budget_stays_within_what_gemini_takes(max_tokens: int, budget: int, sent: int) -> None:
    out = translate(
        body(
            [{"role": "user", "content": "hi"}],
            max_tokens=max_tokens,
            thinking={"type": "enabled", "budget_tokens": budget},
        )
    )
    assert out["generationConfig"] == {
        "maxOutputTokens": min(max_tokens, 65536),
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": sent},
    }


def test_top_k_zero_is_not_sent() -> None:
    """Gemini's topK is a positive integer (found by tests/fuzz); Anthropic's top_k may be 0."""
    assert translate(body([{"role": "user", "content": "hi"}], top_k=0))["generationConfig"] == {
        "maxOutputTokens": 1024
    }
    assert translate(body([{"role": "user", "content": "hi"}], top_k=1))["generationConfig"]["topK"] == 1


def test_thinking_budget_without_max_tokens_is_capped_at_24576() -> None:
    request = a.MessagesRequest(
        messages=[a.Message(role="user", content="hi")], thinking=a.Thinking(type="enabled", budget_tokens=40000)
    )
    out = json.loads(gemini.request_from_anthropic(request))
    assert out["generationConfig"] == {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 24576}}


def test_more_than_five_stop_sequences_sends_the_first_five_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    """Google's API reference, "GenerationConfig": at most 5 stopSequences."""
    stops = ["one", "two", "three", "four", "five", "six", "seven"]
    with caplog.at_level("WARNING", logger="aimw.translators.gemini"):
        out = translate(body([{"role": "user", "content": "hi"}], stop_sequences=stops))
    assert out["generationConfig"]["stopSequences"] == stops[:5]
    (record,) = caplog.records
    assert record.levelname == "WARNING" and record.getMessage() == "Gemini takes at most 5 stop_sequences: 2 dropped"


def test_five_stop_sequences_go_as_they_are(caplog: pytest.LogCaptureFixture) -> None:
    stops = ["one", "two", "three", "four", "five"]
    with caplog.at_level("WARNING", logger="aimw.translators.gemini"):
        out = translate(body([{"role": "user", "content": "hi"}], stop_sequences=stops))
    assert out["generationConfig"]["stopSequences"] == stops
    assert caplog.records == []


@pytest.mark.parametrize("thinking", [{"type": "adaptive", "display": "omitted"}, {"type": "disabled"}])
def test_other_thinking_leaves_the_model_default(thinking: dict) -> None:
    out = translate(body([{"role": "user", "content": "hi"}], thinking=thinking))
    assert out["generationConfig"] == {"maxOutputTokens": 1024}


def test_kongs_expected_request_shape() -> None:
    """Kong's unit fixture: the same conversation gives the same contents, system and config."""
    expected = json.loads((KONG / "gemini" / "unit" / "expected-requests" / "llm-v1-chat.json").read_text())
    out = translate(
        body(
            [
                {"role": "user", "content": "What is 1 + 2?"},
                {"role": "assistant", "content": expected["contents"][1]["parts"][0]["text"]},
                {"role": "user", "content": "Multiply that by 2"},
                {"role": "assistant", "content": expected["contents"][3]["parts"][0]["text"]},
                {"role": "user", "content": "Why can't you divide by zero?"},
            ],
            system="You are a mathematician.",
            max_tokens=8192,
            temperature=0.8,
            top_k=1,
            top_p=0.6,
        )
    )
    assert out == expected


NATIVE_REQUESTS = KONG / "gemini" / "native" / "request"


def json_names(node: Any) -> Any:
    """``node`` with every key as its lowerCamelCase JSON name: Google's proto3 JSON parsers
    take a field's proto name (``inline_data``) or its JSON name (``inlineData``), and we send
    the JSON names (protobuf docs, "JSON Mapping")."""
    if isinstance(node, dict):
        return {
            re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key): json_names(value) for key, value in node.items()
        }
    if isinstance(node, list):
        return [json_names(item) for item in node]
    return node


def test_kongs_native_basic_chat_is_what_the_same_question_gives() -> None:
    """Kong's native Gemini request (what a Gemini client sends) for one user question."""
    native = json_names(json.loads((NATIVE_REQUESTS / "basic-chat.json").read_text()))
    assert_valid_gemini_request(native)
    assert translate(body([{"role": "user", "content": "What is 1 + 1?"}], max_tokens=256)) == native


def test_kongs_native_multimodal_request_is_what_the_same_image_question_gives() -> None:
    """Kong's native request with an inline base64 image: the same parts, in the same order."""
    native = json_names(json.loads((NATIVE_REQUESTS / "basic-multimodal.json").read_text()))
    assert_valid_gemini_request(native)
    image = native["contents"][0]["parts"][1]["inlineData"]
    content = [
        {"type": "text", "text": "Tell me about this animal?"},
        {"type": "image", "source": {"type": "base64", "media_type": image["mimeType"], "data": image["data"]}},
    ]
    assert translate(body([{"role": "user", "content": content}], max_tokens=256)) == native


# ---------------------------------------------------------------- thought signatures going back


def test_signatures_go_back_on_the_parts_they_came_with() -> None:
    """The encodings of gemini.signatures: the tool_use id, a thought's thinking block, the
    empty thinking block after a text; Claude's own signatures are never sent."""
    call_id = "toolu_" + "ab" * 16 + "_gsig_c2lnLWNhbGw-_w"  # base64url of b"sig-call" + b"\xfb\xff"
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "plan", "signature": "gemini-thought:c2lnLXRob3VnaHQ="},
                        {"type": "thinking", "thinking": "claude's", "signature": "EqQBCkYIBxgCKkDclaude"},
                        {"type": "redacted_thinking", "data": "opaque"},
                        {"type": "text", "text": "Running it."},
                        {"type": "thinking", "thinking": "", "signature": "gemini-text:c2lnLXRleHQ="},
                        use(call_id, "Bash", command="ls"),
                        use("toolu_01Abc", "Bash", command="pwd"),
                    ],
                },
                {"role": "user", "content": [result(call_id), result("toolu_01Abc")]},
            ]
        )
    )
    assert out["contents"][1]["parts"] == [
        {"text": "plan", "thought": True, "thoughtSignature": "c2lnLXRob3VnaHQ="},
        {"text": "Running it.", "thoughtSignature": "c2lnLXRleHQ="},
        {"functionCall": {"name": "Bash", "args": {"command": "ls"}}, "thoughtSignature": "c2lnLWNhbGw+/w=="},
        {"functionCall": {"name": "Bash", "args": {"command": "pwd"}}},
    ]


def test_a_text_signature_with_no_text_before_it_keeps_its_own_part() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [{"type": "thinking", "thinking": "", "signature": "gemini-text:AAAA"}],
                },
                {"role": "user", "content": "again"},
            ]
        )
    )
    assert out["contents"][1] == {"role": "model", "parts": [{"text": "", "thoughtSignature": "AAAA"}]}


def test_an_assistant_turn_of_foreign_thinking_only_is_left_out() -> None:
    out = translate(
        body(
            [
                {"role": "user", "content": "one"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "claude-sig"}]},
                {"role": "user", "content": "two"},
            ]
        )
    )
    assert out["contents"] == [{"role": "user", "parts": [{"text": "one"}, {"text": "two"}]}]


def test_thought_signatures_survive_the_anthropic_round_trip() -> None:
    """Gemini's stream -> the Anthropic stream a client assembles -> the client's next request:
    every signature is back on its part, byte for byte, and none was added."""
    parts = [
        {"text": "Weighing options.", "thought": True, "thoughtSignature": "VGhvdWdodA=="},
        {"text": "I'll check."},
        {"functionCall": {"name": "Bash", "args": {"command": "ls"}}, "thoughtSignature": "Q2FsbC0x/+8="},
        {"functionCall": {"name": "Bash", "args": {"command": "pwd"}}},
        {"text": "", "thoughtSignature": "VGV4dA"},
    ]
    wire = b"".join(
        b"data: " + json.dumps({"candidates": [{"content": {"role": "model", "parts": [part]}}]}).encode() + b"\n\n"
        for part in parts
    )
    translator = gemini.GeminiStreamTranslator("gemini-2.5-flash")
    assistant = anthropic_stream(translator.feed(wire) + translator.finish()).blocks
    calls = [block["id"] for block in assistant if block["type"] == "tool_use"]
    out = translate(
        body(
            [
                {"role": "user", "content": "list the files"},
                {"role": "assistant", "content": assistant},
                {"role": "user", "content": [result(calls[0], "a b"), result(calls[1], "/home")]},
            ]
        )
    )
    assert out["contents"][1]["parts"] == [
        {"text": "Weighing options.", "thought": True, "thoughtSignature": "VGhvdWdodA=="},
        {"text": "I'll check."},
        {"functionCall": {"name": "Bash", "args": {"command": "ls"}}, "thoughtSignature": "Q2FsbC0x/+8="},
        {"functionCall": {"name": "Bash", "args": {"command": "pwd"}}},
        {"text": "", "thoughtSignature": "VGV4dA"},  # after a call: a part of its own, as it came
    ]
    assert [p["functionResponse"]["response"] for p in out["contents"][2]["parts"]] == [
        {"content": "a b"},
        {"content": "/home"},
    ]
