"""Requests the real Claude Code CLI sent (../shared/corpus/claude-code), and what the fuzzers
do to them: every JSON path of a body, a value of the wrong JSON type at a path, a path
removed, a placeholder string swapped for raw bytes (invalid UTF-8, a duplicate key), and
hypothesis strategies for arbitrary JSON values.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

from hypothesis import strategies as st

from tests.shared_data import CORPUS

# a two-turn tool round trip (text, tool_use, tool_result with cache_control; system blocks;
# thinking, context_management, output_config, metadata; three tools): every kind of field
MESSAGES_BODY = json.loads((CORPUS / "026-bare-tool-flow-turn2-tool_result.json").read_text())
COUNT_TOKENS_BODY = json.loads((CORPUS / "020-count_tokens-1-tool.json").read_text())
PLACEHOLDER = "@@aimw-fuzz@@"

Path = tuple[str | int, ...]

# one value of each JSON kind, chosen to be awkward: a NUL character, the largest double,
# a negative integer where counts go, empty containers
VALUE_OF_KIND: dict[str, object] = {
    "null": None,
    "boolean": True,
    "integer": -1,
    "number": 1.7976931348623157e308,
    "string": "\u0000",
    "array": [],
    "object": {},
}


def kind(value: object) -> str:
    """The JSON kind of ``value`` (a key of VALUE_OF_KIND)."""
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int():
            return "integer"
        case float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
    return "object"


def json_paths(value: object, prefix: Path = ()) -> Iterator[Path]:
    """Every path inside ``value``, parents before children (the root, ``()``, excluded)."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield (*prefix, key)
        yield from json_paths(child, (*prefix, key))


def at(value: object, path: Path) -> object:
    for key in path:
        value = value[key]  # type: ignore[index]
    return value


def replaced(document: object, path: Path, new: object) -> object:
    """A deep copy of ``document`` with the value at ``path`` replaced by ``new``."""
    document = copy.deepcopy(document)
    at(document, path[:-1])[path[-1]] = new  # type: ignore[index]
    return document


def removed(document: object, path: Path) -> object:
    """A deep copy of ``document`` without the value at ``path``."""
    document = copy.deepcopy(document)
    del at(document, path[:-1])[path[-1]]  # type: ignore[union-attr]
    return document


def wrong_kinds(value: object) -> list[str]:
    """The JSON kinds ``value`` is not (for an integer, a number too: 1.5 where a count goes)."""
    return [name for name in VALUE_OF_KIND if name != kind(value)]


def with_raw(document: object, path: Path, raw: bytes) -> bytes:
    """``document`` encoded with the value at ``path`` written as the bytes ``raw`` (which
    need not be JSON, nor UTF-8)."""
    encoded = json.dumps(replaced(document, path, PLACEHOLDER)).encode()
    return encoded.replace(json.dumps(PLACEHOLDER).encode(), raw, 1)


def with_duplicate_key(document: object, path: Path, key: str, value: object, *, first: bool) -> bytes:
    """``document`` encoded with a second member ``key`` (holding ``value``) in the object at
    ``path``, before (``first``) or after the existing members."""
    target = at(document, path)
    assert isinstance(target, dict)
    members = {PLACEHOLDER: value, **target} if first else {**target, PLACEHOLDER: value}
    encoded = json.dumps(replaced(document, path, members) if path else members).encode()
    return encoded.replace(json.dumps(PLACEHOLDER).encode(), json.dumps(key).encode(), 1)


# arbitrary JSON: any text (control characters, astral planes), integers past 64 bits,
# any finite double, nested a few levels
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
