"""Tool input_schema -> Gemini parametersJsonSchema (gemini.function_parameters): only the
keywords Gemini documents, the meaning of the others kept; Claude Code's own schemas
(the corpus) checked keyword by keyword."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from aimw.errors import GatewayError
from aimw.translators import gemini
from tests.shared_data import corpus_bodies


def clean(schema: dict[str, Any], name: str = "tool") -> dict[str, Any] | None:
    return gemini.function_parameters(msgspec.Raw(json.dumps(schema).encode()), name)


def prop(schema: dict[str, Any]) -> dict[str, Any]:
    """The cleaned form of ``schema`` as the one property of a tool."""
    cleaned = clean({"type": "object", "properties": {"p": schema}})
    assert cleaned is not None
    return cleaned["properties"]["p"]


def test_kept_keywords_pass_unchanged() -> None:
    schema = {
        "type": "object",
        "title": "T",
        "description": "d",
        "properties": {
            "s": {"type": "string", "format": "date-time", "enum": ["a", "b"]},
            "n": {"type": ["number", "null"], "minimum": -1.5, "maximum": 9007199254740991},
            "l": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 4},
            "u": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "o": {"oneOf": [{"$ref": "#/$defs/x"}]},
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
            "any": {"description": "any JSON value"},
        },
        "required": ["s"],
        "propertyOrdering": ["s", "n"],
        "additionalProperties": False,
        "$defs": {"x": {"type": "boolean"}},
    }
    assert clean(schema) == schema


def test_integer_exclusive_bounds_become_inclusive_ones() -> None:
    assert prop({"type": "integer", "exclusiveMinimum": 0, "maximum": 9007199254740991}) == {
        "type": "integer",
        "minimum": 1,
        "maximum": 9007199254740991,
    }
    assert prop({"type": "integer", "exclusiveMaximum": 10.5, "minimum": 2}) == {
        "type": "integer",
        "minimum": 2,
        "maximum": 10,
    }
    # draft 4's boolean form, and the stricter of two bounds
    assert prop({"type": "integer", "minimum": 3, "exclusiveMinimum": True}) == {"type": "integer", "minimum": 4}
    assert prop({"type": "integer", "minimum": 5, "exclusiveMinimum": 0}) == {"type": "integer", "minimum": 5}


def test_number_exclusive_bounds_are_described() -> None:
    assert prop({"type": "number", "description": "Ratio.", "exclusiveMinimum": 0, "exclusiveMaximum": 1}) == {
        "type": "number",
        "description": "Ratio. Must be greater than 0. Must be less than 1.",
    }


@pytest.mark.parametrize(
    ("keyword", "value", "sentence"),
    [
        ("pattern", "^wf_[a-z0-9-]{6,}$", 'Must match the regular expression "^wf_[a-z0-9-]{6,}$".'),
        ("minLength", 2, "At least 2 characters."),
        ("maxLength", 524288, "At most 524288 characters."),
        ("default", False, "Default: false."),
        ("examples", ["a"], 'Examples: ["a"].'),
        ("multipleOf", 5, "Must be a multiple of 5."),
        ("uniqueItems", True, "Items must be unique."),
        ("minProperties", 1, "At least 1 properties."),
        ("maxProperties", 3, "At most 3 properties."),
        ("deprecated", True, "Deprecated."),
        ("propertyNames", {"pattern": "^x"}, 'Property names must match the schema {"pattern":"^x"}.'),
        ("not", {"type": "null"}, 'not: {"type":"null"}.'),
        ("x-vendor", 1, "x-vendor: 1."),
    ],
)
def test_dropped_keywords_are_described(keyword: str, value: Any, sentence: str) -> None:
    assert prop({"type": "string", "description": "Name.", keyword: value}) == {
        "type": "string",
        "description": f"Name. {sentence}",
    }


def test_a_dropped_keyword_without_description_becomes_one() -> None:
    assert prop({"type": "string", "pattern": "^a$"}) == {
        "type": "string",
        "description": 'Must match the regular expression "^a$".',
    }


def test_silent_drops() -> None:
    assert clean(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$comment": "for humans",
            "type": "object",
            "properties": {
                "m": {"type": "object", "propertyNames": {"type": "string"}, "additionalProperties": {"type": "string"}}
            },
        }
    ) == {"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {"type": "string"}}}}


def test_all_of_is_merged_and_its_clashes_described() -> None:
    """Claude Code's SendMessage.to: two patterns in an allOf."""
    assert prop({"type": "string", "allOf": [{"pattern": "^[^\\n\\r]*$"}, {"pattern": "^[\\s\\S]{0,300}$"}]}) == {
        "type": "string",
        "description": 'Must match the regular expression "^[^\\\\n\\\\r]*$". '
        'Must match the regular expression "^[\\\\s\\\\S]{0,300}$".',
    }
    assert clean(
        {
            "type": "object",
            "allOf": [
                {"properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "integer"}}, "required": ["b", "a"]},
            ],
        }
    ) == {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a", "b"]}


def test_const_definitions_tuples_and_nullable() -> None:
    assert prop({"const": "fixed"}) == {"enum": ["fixed"]}
    assert prop({"const": {"a": 1}}) == {"description": 'Must be {"a":1}.'}
    assert prop({"type": "string", "enum": ["a", None]}) == {
        "type": "string",
        "description": 'Must be one of ["a",null].',
    }
    assert prop({"type": "string", "nullable": True}) == {"type": ["string", "null"]}
    assert prop({"type": "array", "items": [{"type": "string"}, {"type": "integer"}]}) == {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "integer"}],
    }
    assert clean(
        {
            "type": "object",
            "properties": {"x": {"$ref": "#/definitions/X"}},
            "definitions": {"X": {"type": "string", "minLength": 1}},
        }
    ) == {
        "type": "object",
        "properties": {"x": {"$ref": "#/$defs/X"}},
        "$defs": {"X": {"type": "string", "description": "At least 1 characters."}},
    }


def test_required_names_that_are_not_properties_are_described() -> None:
    assert clean({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "ghost"]}) == {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "description": 'Also required: ["ghost"].',
    }


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {}},
        {"type": "object"},
        {"type": "object", "properties": {}, "additionalProperties": False},
    ],
)
def test_a_tool_without_parameters_sends_none(schema: dict) -> None:
    assert clean(schema) is None
    assert gemini.function_parameters(msgspec.UNSET, "tool") is None


def test_a_root_without_type_is_an_object() -> None:
    assert clean({"properties": {"a": {"type": "string"}}}) == {
        "properties": {"a": {"type": "string"}},
        "type": "object",
    }


@pytest.mark.parametrize(
    "schema",
    [{"type": "string"}, {"type": "object", "properties": {"a": "string"}}, {"type": "object", "properties": {"a": 1}}],
)
def test_what_is_not_an_object_schema_is_a_400(schema: dict) -> None:
    with pytest.raises(GatewayError) as caught:
        clean(schema, "Broken")
    assert caught.value.status == 400 and "'Broken'" in caught.value.message


def test_nesting_past_the_limit_is_a_400() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(100):
        schema = {"type": "object", "properties": {"a": schema}}
    with pytest.raises(GatewayError) as caught:
        clean(schema)
    assert caught.value.status == 400


# ---------------------------------------------------------------- Claude Code's schemas

CORPUS_TOOLS = {
    tool["name"]: tool
    for path in corpus_bodies()
    for tool in json.loads(path.read_bytes()).get("tools") or []
    if not tool.get("defer_loading")
}


def walk(node: Any, path: str = "$"):
    """(path, schema) of ``node`` and every subschema under it."""
    yield path, node
    if not isinstance(node, dict):
        return
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from walk(node[key], f"{path}/{key}")
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, sub in enumerate(node.get(key, ())):
            yield from walk(sub, f"{path}/{key}[{i}]")


@pytest.mark.parametrize("name", sorted(CORPUS_TOOLS))
def test_claude_code_schemas_keep_their_structure_and_descriptions(name: str) -> None:
    schema = CORPUS_TOOLS[name]["input_schema"]
    cleaned = clean(schema, name)
    if not schema.get("properties"):
        assert cleaned is None
        return
    assert cleaned is not None
    cleaned_nodes = dict(walk(cleaned))
    for path, node in walk(schema):
        if "/allOf[" in path:
            continue  # merged into its parent
        out = cleaned_nodes[path]
        assert set(out.get("properties", {})) == set(node.get("properties", {})), path
        if "description" in node:
            assert out["description"].startswith(node["description"]), path
        if "type" in node:
            assert out["type"] == node["type"], path
        for key in ("enum", "required", "minimum", "maximum", "minItems", "maxItems", "format"):
            if key in node:
                assert out[key] == node[key], (path, key)


def test_claude_code_constraints_are_kept_in_meaning() -> None:
    read = clean(CORPUS_TOOLS["Read"]["input_schema"])
    assert read is not None and read["properties"]["limit"]["minimum"] == 1  # exclusiveMinimum 0 on an integer
    workflow = clean(CORPUS_TOOLS["Workflow"]["input_schema"])
    assert workflow is not None
    assert "^wf_[a-z0-9-]{6,}$" in workflow["properties"]["resumeFromRunId"]["description"]
    assert "At most 524288 characters." in workflow["properties"]["script"]["description"]
    assert "type" not in workflow["properties"]["args"]  # any JSON value, as Claude Code declares it
    questions = clean(CORPUS_TOOLS["AskUserQuestion"]["input_schema"])
    assert questions is not None
    assert questions["properties"]["answers"]["additionalProperties"] == {"type": "string"}
    assert (
        "Default: false." in questions["properties"]["questions"]["items"]["properties"]["multiSelect"]["description"]
    )
    send = clean(CORPUS_TOOLS["SendMessage"]["input_schema"])
    assert send is not None and send["properties"]["to"]["description"].count("Must match the regular expression") == 2
    fetch = clean(CORPUS_TOOLS["WebFetch"]["input_schema"])
    assert fetch is not None and fetch["properties"]["url"]["format"] == "uri"
