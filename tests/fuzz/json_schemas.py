"""hypothesis strategies for JSON text and values, tool names and JSON Schemas (an Anthropic
tool's ``input_schema``), shared by the request strategies (anthropic_requests.py).

Every strategy is built once, at import: hypothesis validates each new strategy object, which
costs more than drawing from it (building them per draw made generation four times slower).
The schemas use the keywords Claude Code's tools have (../shared/CLAUDE-CODE.md: ``$schema``
2020-12, ``additionalProperties: false``, ``exclusiveMinimum``, bounds of ±2^53-1,
``pattern``, ``allOf``, ``format: uri``, a property with no type, ``propertyNames``) and more
(``$defs`` / ``$ref``, ``anyOf``, ``oneOf``, ``const``, ``enum``, type lists, booleans).
"""

from __future__ import annotations

import operator
from typing import Any

from hypothesis import strategies as st

# Any Unicode scalar value (no lone surrogates: JSON text is UTF-8), control characters included.
TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=24)
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=24)
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALNUM = LETTERS + "0123456789"
TOOL_NAME = st.builds(operator.add, st.sampled_from(LETTERS + "_"), st.text(ALNUM + "_-", max_size=63))
"""Anthropic's tool name pattern ``^[a-zA-Z0-9_-]{1,64}$``, first character a letter or ``_``
(Gemini's function names must start so: a name starting with a digit or ``-`` is refused
by Gemini, a limit of the Gemini translation)."""
JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    ANY_TEXT,
)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(ANY_TEXT, children, max_size=3),
    max_leaves=6,
)


def optional(**fields: st.SearchStrategy[Any]) -> dict[str, st.SearchStrategy[Any]]:
    """The ``optional`` mapping of ``st.fixed_dictionaries``, written as keywords."""
    return fields


# ---------------------------------------------------------------- JSON Schemas (input_schema)

_LEAF_SCHEMA = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])},
        optional=optional(
            description=TEXT,
            title=TEXT,
            format=st.sampled_from(["uri", "date-time", "email", "uuid"]),
            pattern=st.sampled_from(["^[a-z]+$", "\\d{3}"]),
            minimum=st.integers(-10, 10),
            maximum=st.just(9007199254740991),
            exclusiveMinimum=st.integers(-10, 10),
            exclusiveMaximum=st.floats(-10, 10),
            minLength=st.integers(0, 5),
            default=JSON_SCALAR,
            examples=st.lists(JSON_SCALAR, max_size=2),
        ),
    ),
    st.fixed_dictionaries({"enum": st.lists(st.one_of(ANY_TEXT, st.integers(-5, 5)), min_size=1, max_size=4)}),
    st.fixed_dictionaries({"const": st.one_of(ANY_TEXT, st.integers(-5, 5))}),
    st.fixed_dictionaries({}, optional=optional(description=TEXT)),  # a property with no type
    st.booleans(),
)
_PROPERTY_NAMES = st.sampled_from([{"type": "string"}, {"pattern": "^[a-z]+$"}])


def _composite_schema(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    @st.composite
    def object_schema(draw: st.DrawFn) -> dict[str, Any]:
        properties = draw(st.dictionaries(TOOL_NAME, children, max_size=3))
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        required = [name for name in properties if draw(st.booleans())]
        if required:
            schema["required"] = required
        if draw(st.booleans()):
            schema["additionalProperties"] = draw(st.one_of(st.booleans(), children))
        if draw(st.booleans()):
            schema["propertyNames"] = draw(_PROPERTY_NAMES)
        return schema

    return st.one_of(
        object_schema(),
        st.fixed_dictionaries(
            {"type": st.just("array"), "items": children},
            optional=optional(minItems=st.integers(0, 3), maxItems=st.integers(3, 9), uniqueItems=st.booleans()),
        ),
        st.fixed_dictionaries({"anyOf": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"oneOf": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"allOf": st.lists(children, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"type": st.just(["string", "null"])}, optional=optional(description=TEXT)),
    )


SUBSCHEMA = st.recursive(_LEAF_SCHEMA, _composite_schema, max_leaves=4)


def input_schema(draw: st.DrawFn) -> dict[str, Any]:
    """An object JSON Schema, as Claude Code's tools have them."""
    properties = draw(st.dictionaries(TOOL_NAME, SUBSCHEMA, max_size=3))
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [name for name in properties if draw(st.booleans())]
    if required:
        schema["required"] = required
    if draw(st.booleans()):
        schema["additionalProperties"] = False
    if draw(st.booleans()):
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    if draw(st.booleans()):
        schema["$defs"] = {"Item": draw(SUBSCHEMA)}
        schema["properties"]["item"] = {"$ref": "#/$defs/Item"}
    return schema
