"""An Anthropic tool's ``input_schema`` (JSON Schema) -> Gemini's ``parametersJsonSchema``.

Gemini takes a function's parameters as JSON Schema holding only the keywords it documents
(Google's API reference, "FunctionDeclaration" ``parametersJsonSchema``, whose subset is the
one listed under "GenerationConfig" ``responseJsonSchema``): ``$id $defs $ref $anchor type
format title description enum`` (strings and numbers) ``items prefixItems minItems maxItems
minimum maximum anyOf oneOf properties additionalProperties required propertyOrdering``.
Anything else is dropped, and what it meant is kept where it can be:

- integer ``exclusiveMinimum`` / ``exclusiveMaximum`` -> ``minimum`` / ``maximum`` one step
  inside (exact); on numbers, a sentence in ``description``;
- ``allOf`` -> its subschemas merged into the schema (properties and required united; a
  keyword two of them set differently is described);
- ``const`` -> a one-value ``enum`` (strings and numbers); ``definitions`` -> ``$defs`` (and
  their ``$ref``); an ``items`` array -> ``prefixItems``; OpenAPI's ``nullable`` -> a
  ``"null"`` type;
- ``pattern``, ``minLength``, ``maxLength``, ``default``, ``examples``, ``multipleOf``,
  ``uniqueItems``, ``min/maxProperties``, ``propertyNames`` and any other keyword -> a
  sentence appended to ``description``; ``$schema`` and ``$comment`` say nothing to a model
  and go silently, as does ``propertyNames: {"type": "string"}`` (every name is a string).

Only the declaration is cleaned, never the tool inputs in the conversation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import msgspec
from msgspec import Raw, UnsetType

from aimw.errors import GatewayError

KEYWORDS = frozenset(
    (
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
    )
)
"""The JSON Schema keywords Gemini documents for ``parametersJsonSchema``."""

JSON_TYPES = frozenset(("string", "number", "integer", "boolean", "object", "array", "null"))
MAX_SCHEMA_DEPTH = 40  # nested subschemas: Claude Code's deepest is 5
_SILENT = frozenset(("$schema", "$comment"))
_SCHEMA_LISTS = frozenset(("anyOf", "oneOf", "prefixItems"))


class _Invalid(Exception):
    """The input schema is not a JSON Schema (or nests too deeply)."""


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def function_parameters(schema: Raw | UnsetType, tool_name: str) -> dict[str, Any] | None:
    """The cleaned parameters of tool ``tool_name``; None when it takes none (Gemini wants
    ``parametersJsonSchema`` left out then, rather than an object with no properties).

    Raises:
        GatewayError: 400 when ``schema`` is not an object JSON Schema.
    """
    if isinstance(schema, UnsetType):
        return None
    try:
        node = msgspec.json.decode(schema)
        cleaned = clean(node)
    except (msgspec.DecodeError, _Invalid) as exc:
        raise GatewayError(400, f"tool {tool_name!r}: input_schema is not a usable JSON Schema ({exc})") from None
    kind = cleaned.setdefault("type", "object")
    if kind != "object":
        raise GatewayError(400, f"tool {tool_name!r}: input_schema must be of type object")
    takes_nothing = not cleaned.get("properties") and cleaned.get("additionalProperties", False) is False
    if takes_nothing and set(cleaned) <= {"type", "properties", "required", "additionalProperties"}:
        return None
    return cleaned


def clean(node: object, depth: int = 0) -> dict[str, Any]:
    """One JSON Schema (object or boolean) -> the same schema in Gemini's keywords.

    Raises:
        _Invalid: a subschema is neither an object nor a boolean, or nesting passes
            MAX_SCHEMA_DEPTH.
    """
    if depth > MAX_SCHEMA_DEPTH:
        raise _Invalid(f"nested more than {MAX_SCHEMA_DEPTH} levels deep")
    if isinstance(node, bool):
        return {} if node else {"description": "No value is valid here."}
    if not isinstance(node, dict):
        raise _Invalid(f"a subschema is a JSON {type(node).__name__}, not an object")
    merged, conflicts = _merge_all_of(node, depth)
    out: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in merged.items():
        _keyword(key, value, out, notes, depth)
    _exclusive_bounds(merged, out, notes)
    for key, value in conflicts:
        notes.append(_describe(key, value, also=True))
    _required(out, notes)
    description = [out["description"]] if out.get("description") else []
    description.extend(note for note in notes if note)
    if description:
        out["description"] = " ".join(description)
    return out


def _is_strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_enum(value: object) -> bool:
    """Gemini documents ``enum`` for strings and numbers."""
    return isinstance(value, list) and bool(value) and all(_is_number(v) or isinstance(v, str) for v in value)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_type(value: object) -> bool:
    names = value if isinstance(value, list) else [value]
    return bool(names) and all(isinstance(name, str) and name in JSON_TYPES for name in names)


_KEPT_AS_IS: MappingProxyType[str, Callable[[object], bool]] = MappingProxyType(
    {
        "type": _is_type,
        "description": lambda value: isinstance(value, str),
        "format": lambda value: isinstance(value, str),
        "title": lambda value: isinstance(value, str),
        "$id": lambda value: isinstance(value, str),
        "$anchor": lambda value: isinstance(value, str),
        "enum": _is_enum,
        "required": _is_strings,
        "propertyOrdering": _is_strings,
        "minItems": _is_count,
        "maxItems": _is_count,
        "minimum": _is_number,
        "maximum": _is_number,
    }
)


def _keyword(key: str, value: Any, out: dict[str, Any], notes: list[str], depth: int) -> None:
    """Put one keyword of a schema into ``out`` (Gemini's form) or describe it in ``notes``."""
    if key in _SILENT or key in ("exclusiveMinimum", "exclusiveMaximum"):  # the bounds: _exclusive_bounds
        return
    kept = _KEPT_AS_IS.get(key)
    if kept is not None and kept(value):
        out[key] = value
    elif key == "$ref" and isinstance(value, str):
        out["$ref"] = value.replace("#/definitions/", "#/$defs/", 1)
    elif key in ("$defs", "definitions") and isinstance(value, dict):
        out.setdefault("$defs", {}).update({name: clean(sub, depth + 1) for name, sub in value.items()})
    elif key == "const" and (_is_number(value) or isinstance(value, str)) and "enum" not in out:
        out["enum"] = [value]
    elif key == "properties" and isinstance(value, dict):
        out["properties"] = {name: clean(sub, depth + 1) for name, sub in value.items()}
    elif key in ("items", "additionalProperties") and isinstance(value, bool):
        out[key] = value
    elif key in ("items", "additionalProperties") and isinstance(value, dict):
        out[key] = clean(value, depth + 1)
    elif key == "items" and isinstance(value, list):  # draft 4-7 tuple form
        out["prefixItems"] = [clean(sub, depth + 1) for sub in value]
    elif key in _SCHEMA_LISTS and isinstance(value, list):
        out[key] = [clean(sub, depth + 1) for sub in value]
    elif key == "nullable" and value is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    elif key != "propertyNames" or value != {"type": "string"}:
        notes.append(_describe(key, value))


def _describe(key: str, value: Any, *, also: bool = False) -> str:
    """A sentence saying what a dropped keyword required."""
    match key:
        case "pattern":
            return f"Must match the regular expression {_json(value)}."
        case "minLength":
            return f"At least {_json(value)} characters."
        case "maxLength":
            return f"At most {_json(value)} characters."
        case "default":
            return f"Default: {_json(value)}."
        case "examples" | "example":
            return f"Examples: {_json(value)}."
        case "multipleOf":
            return f"Must be a multiple of {_json(value)}."
        case "uniqueItems":
            return "Items must be unique." if value is True else ""
        case "minProperties":
            return f"At least {_json(value)} properties."
        case "maxProperties":
            return f"At most {_json(value)} properties."
        case "const":
            return f"Must be {_json(value)}."
        case "enum":
            return f"Must be one of {_json(value)}."
        case "nullable":
            return "May be null." if value is True else ""
        case "deprecated":
            return "Deprecated." if value is True else ""
        case "propertyNames":
            return f"Property names must match the schema {_json(value)}."
    return f"{'Also ' if also else ''}{key}: {_json(value)}."


def _merge_all_of(node: dict[str, Any], depth: int) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """``node`` with its ``allOf`` subschemas merged in, and the (keyword, value) pairs a
    subschema set differently from what was already there."""
    all_of = node.get("allOf")
    if not isinstance(all_of, list):
        return node, []
    merged = {key: value for key, value in node.items() if key != "allOf"}
    conflicts: list[tuple[str, Any]] = []
    for sub in all_of:
        if depth > MAX_SCHEMA_DEPTH:
            raise _Invalid(f"nested more than {MAX_SCHEMA_DEPTH} levels deep")
        if not isinstance(sub, dict):
            if sub is not True:
                conflicts.append(("allOf", sub))
            continue
        sub, inner = _merge_all_of(sub, depth + 1)
        conflicts.extend(inner)
        for key, value in sub.items():
            mine = merged.get(key)
            if key == "properties" and isinstance(mine, dict) and isinstance(value, dict):
                merged[key] = {**mine, **value}
            elif key == "required" and isinstance(mine, list) and isinstance(value, list):
                merged[key] = [*mine, *(name for name in value if name not in mine)]
            elif key not in merged:
                merged[key] = value
            elif mine != value:
                conflicts.append((key, value))
    return merged, conflicts


def _inside(limit: int | float, step: int) -> int:
    """The first integer past ``limit`` in the direction of ``step`` (+1 up, -1 down)."""
    if isinstance(limit, int):
        return limit + step
    return math.floor(limit) + 1 if step > 0 else math.ceil(limit) - 1


def _exclusive_bounds(node: dict[str, Any], out: dict[str, Any], notes: list[str]) -> None:
    """``exclusiveMinimum`` / ``exclusiveMaximum``: a number (JSON Schema 2019+) or a flag on
    ``minimum`` / ``maximum`` (draft 4). Integers get the inclusive bound one step inside."""
    integer = node.get("type") == "integer"
    for key, bound, step, stricter, word in (
        ("exclusiveMinimum", "minimum", 1, max, "greater"),
        ("exclusiveMaximum", "maximum", -1, min, "less"),
    ):
        value = node.get(key)
        if value is True and _is_number(node.get(bound)):
            value = node[bound]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            if key in node and value is not False:
                notes.append(_describe(key, value))
            continue
        if integer:
            inside = _inside(value, step)
            out[bound] = stricter(inside, out[bound]) if _is_number(out.get(bound)) else inside
        else:
            notes.append(f"Must be {word} than {_json(value)}.")


def _required(out: dict[str, Any], notes: list[str]) -> None:
    """Gemini checks ``required`` against ``properties``: names not among them are described."""
    required = out.get("required")
    properties = out.get("properties")
    if required is None:
        return
    listed = [name for name in required if isinstance(properties, dict) and name in properties]
    missing = [name for name in required if name not in listed]
    if missing:
        notes.append(f"Also required: {_json(missing)}.")
    if listed:
        out["required"] = listed
    else:
        del out["required"]
