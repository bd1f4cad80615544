"""Secrets and other values from the environment, in the document's string values.

Three ways to name a variable, anywhere in a string (``Bearer ${HF_TOKEN}``):

- ``${VAR}``;
- Kong's env vault, ``{vault://env/var-name}``: the variable ``VAR_NAME`` (Kong's env vault
  upper-cases the name and turns dashes into underscores);
- deck's ``${{ env "DECK_VAR" }}`` (the variable named, ``DECK_`` prefix included).

Substitution runs on the parsed document, so a value holding YAML's special characters
(``: # { "``) stays one string; substituted text is not scanned again. A value is stripped
of surrounding whitespace (a key read from a file keeps no line break), as Settings does.
A variable unset or empty is an error naming it and the field; the value is never shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aimw.config.problems import ConfigPathError, join

_REFERENCE = re.compile(
    r"\$\{\{\s*env\s+\"(?P<deck>[A-Za-z_][A-Za-z0-9_]*)\"\s*\}\}"
    r"|\{vault://env/(?P<vault>[A-Za-z0-9_-]+)\}"
    r"|\$\{(?P<plain>[A-Za-z_][A-Za-z0-9_]*)\}"
    r"|(?P<other>\{vault://[^}]*\})"
)


def substitute(value: object, environ: Mapping[str, str], path: str = "") -> object:
    """``value`` (a parsed document, or part of it at ``path``) with every reference in its
    strings replaced by the variable's value; mappings and lists are copied, other values
    kept.

    Raises:
        ConfigPathError: at the string's path, naming a variable that is unset or empty, or
            a vault reference other than ``{vault://env/name}``.
    """
    if isinstance(value, str):
        return _REFERENCE.sub(lambda match: _lookup(match, environ, path), value)
    if isinstance(value, dict):
        return {key: substitute(item, environ, join(path, str(key))) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, environ, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


def _lookup(match: re.Match[str], environ: Mapping[str, str], path: str) -> str:
    if match["other"] is not None:
        raise ConfigPathError(path, "expected a vault reference {vault://env/name} (aimw reads only Kong's env vault)")
    if match["vault"] is not None:
        name = match["vault"].upper().replace("-", "_")
        source = f"the environment variable {name} (from {{vault://env/{match['vault']}}})"
    else:
        name = match["deck"] or match["plain"]
        source = f"the environment variable {name}"
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigPathError(path, f"{source} is not set (or is empty)")
    return value
