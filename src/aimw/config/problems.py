"""Configuration problems named by the path of the field they are about, in the document's
own words: ``targets[1].model.options.azure_instance: required for provider azure``.

msgspec's validation errors (``Object missing required field `provider` - at
`$.targets[0].model```) and the Structs' own checks (``ValueError("options.azure_instance:
…")`` raised at ``$.targets[1].model``) become one :class:`ConfigPathError`.
"""

from __future__ import annotations

import re

import msgspec

from aimw.config.schema import NOTES

_AT = re.compile(r"(?s)(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?")
_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<name>[^`]+)`")
_ENUM = re.compile(r"Invalid enum value (?P<value>.+)")
_OWN = re.compile(r"(?P<field>[a-z_][a-z0-9_.\[\]]*): (?P<problem>.+)", re.DOTALL)
_SEGMENT = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


class ConfigPathError(ValueError):
    """A problem at ``path`` of the document (``targets[1].model``; ``""`` for the whole
    document): ``problem`` says what is expected, never a secret's value."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


def join(path: str, name: str) -> str:
    """``path.name`` (``name`` alone at the top)."""
    return f"{path}.{name}" if path else name


def from_validation(exc: msgspec.ValidationError, root: type) -> ConfigPathError:
    """The ConfigPathError of msgspec's ``exc``, raised converting a document to ``root``."""
    match = _AT.fullmatch(str(exc))
    assert match is not None  # the pattern matches any text
    path, problem = (match["path"] or "").lstrip("."), match["problem"]
    if found := _MISSING.fullmatch(problem):
        path = join(path, found["name"])
        return ConfigPathError(path, _noted("required", _name(path)))
    if found := _UNKNOWN.fullmatch(problem):
        return ConfigPathError(join(path, found["name"]), "unknown field (not in Kong's schema here: a typo?)")
    if found := _ENUM.fullmatch(problem):
        choices = ", ".join(str(value) for value in _literal_values(root, path))
        name, value = _name(path), found["value"]
        note = NOTES.get(name + "=" + value.strip("'")) or NOTES.get(name)
        return ConfigPathError(path, f"expected one of {choices}; got {value}" + (f" ({note})" if note else ""))
    if found := _OWN.fullmatch(problem):
        return ConfigPathError(join(path, found["field"]), found["problem"])
    return ConfigPathError(path, "expected " + problem.removeprefix("Expected ").replace("`", ""))


def _noted(problem: str, name: str) -> str:
    note = NOTES.get(name)
    return f"{problem} ({note})" if note else problem


def _name(path: str) -> str:
    """The last field name of ``path`` (``algorithm`` of ``balancer.algorithm``)."""
    names = [name for name, _ in _SEGMENT.findall(path) if name]
    return names[-1] if names else ""


def _literal_values(root: type, path: str) -> tuple[object, ...]:
    """The values the Literal field at ``path`` of ``root`` accepts."""
    info: msgspec.inspect.Type = msgspec.inspect.type_info(root)
    for name, _ in _SEGMENT.findall(path):
        info = _unwrap(info)
        if isinstance(info, msgspec.inspect.StructType):
            info = next(field.type for field in info.fields if field.encode_name == name)
        elif isinstance(info, msgspec.inspect.VarTupleType | msgspec.inspect.ListType):
            info = info.item_type
    info = _unwrap(info)
    return info.values if isinstance(info, msgspec.inspect.LiteralType) else ()


def _unwrap(info: msgspec.inspect.Type) -> msgspec.inspect.Type:
    """The type inside an optional one (``X | None`` -> ``X``)."""
    if isinstance(info, msgspec.inspect.UnionType):
        return next(member for member in info.types if not isinstance(member, msgspec.inspect.NoneType))
    return info
