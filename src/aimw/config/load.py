"""load_config: the gateway's configuration file (``AIMW_CONFIG``), read once at start.

The file is YAML, or JSON when its name ends in ``.json``: a plain ai-proxy-advanced
``config`` document, or a deck file (aimw.config.deck). YAML is parsed by PyYAML's safe
loader (what msgspec.yaml uses) without YAML 1.1's timestamp type, so that
``azure_api_version: 2024-02-01`` stays text; variables are then substituted
(aimw.config.environment), and ``msgspec.convert`` types the document as a GatewayConfig
(aimw.config.schema), reading a string given for a number or a boolean (as every
substituted variable is) as that number or boolean.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import msgspec
import yaml

from aimw.config.deck import DECK_MARK, read_deck
from aimw.config.environment import substitute
from aimw.config.problems import ConfigPathError, from_validation
from aimw.config.schema import GatewayConfig
from aimw.settings import ConfigurationError


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader without the timestamp type (no field of Kong's is a date)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_config(path: str, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """The GatewayConfig in the file at ``path``, its variables read from ``environ``
    (default: os.environ).

    Raises:
        ConfigurationError: ``aimw: <path>: <field path>: <what is expected>``, the field path
            being the deck file's for a deck file (``plugins[1].config.model.provider``); or
            the file cannot be read, or is not YAML / JSON, or not a mapping. A secret's value
            is never shown.
    """
    source = _parse(path)
    locate: Callable[[str], str] = str  # a plain document's paths are its own
    strip_model = False
    try:
        if DECK_MARK in source:
            deck = read_deck(source)
            source, locate, strip_model = deck.document, deck.locate, deck.strip_model
    except ConfigPathError as exc:
        raise ConfigurationError(f"aimw: {path}: {exc}") from None
    try:
        config = _typed(source, os.environ if environ is None else environ)
    except ConfigPathError as exc:
        raise ConfigurationError(f"aimw: {path}: {ConfigPathError(locate(exc.path), exc.problem)}") from None
    return msgspec.structs.replace(config, strip_model=True) if strip_model else config


def _typed(document: Mapping[str, object], environ: Mapping[str, str]) -> GatewayConfig:
    """Substitute ``document``'s variables and type it.

    Raises:
        ConfigPathError: at the document's path of the problem.
    """
    if "strip_model" in document:
        raise ConfigPathError("strip_model", "unknown field (a deck file's pre-function plugin sets it)")
    try:
        return msgspec.convert(substitute(document, environ), GatewayConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise from_validation(exc, GatewayConfig) from None


def _parse(path: str) -> dict[str, object]:
    """The file's document, a mapping.

    Raises:
        ConfigurationError: the file cannot be read, is not YAML (JSON), or not a mapping.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ConfigurationError(f"aimw: cannot read the configuration file {path}: {exc.strerror}") from None
    try:
        document = msgspec.json.decode(data) if path.endswith(".json") else yaml.load(data, Loader=_Loader)
    except msgspec.DecodeError as exc:
        raise ConfigurationError(f"aimw: {path}: not valid JSON ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"aimw: {path}: not valid YAML{_position(exc)}") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"aimw: {path}: expected a mapping (Kong's ai-proxy-advanced config, or a deck file)")
    return document


def read_yaml(path: str, description: str) -> object:
    """The YAML document in the file at ``path`` (the consumers and rate-limiting files).

    Raises:
        ConfigurationError: ``aimw: cannot read <description> <path>: …``, or ``aimw: <path>:
            not valid YAML (line L, column C)`` (never the line's text: it may hold a key).
    """
    try:
        with open(path, "rb") as file:
            return yaml.load(file, Loader=_Loader)
    except OSError as exc:
        raise ConfigurationError(f"aimw: cannot read {description} {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigurationError(f"aimw: {path}: not valid YAML{where}") from None


def _position(exc: yaml.YAMLError) -> str:
    """`` (what, line L, column C)`` of a YAML error, without the file's text (PyYAML's own
    message quotes the line, which may hold a key)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f" ({exc.problem}, line {mark.line + 1}, column {mark.column + 1})"
    return ""
