"""load_consumers: the consumers file of ``AIMW_CONSUMERS`` (every recipe), read once at start.

The file is YAML (JSON is YAML too) holding one mapping whose ``consumers`` is the list the
configuration file of ``recipes.config`` takes at its top level (aimw.config.consumers),
so the same text serves both::

    consumers:
      - username: alice
        keyauth_credentials: [{key: "${ALICE_KEY}"}]

Keys may name environment variables as the configuration file's secrets do (``${VAR}``,
``{vault://env/var-name}``, ``${{ env "DECK_VAR" }}``: aimw.config.environment).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from aimw.config.consumers import Consumer, keyring
from aimw.config.environment import substitute
from aimw.config.load import read_yaml
from aimw.config.problems import ConfigPathError, from_validation
from aimw.settings import ConfigurationError


class ConsumersFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The consumers file: ``consumers``, at least one consumer holding at least one key,
    each key and username once (:func:`aimw.config.consumers.keyring`)."""

    consumers: tuple[Consumer, ...]

    def __post_init__(self) -> None:
        keyring(self.consumers)


def load_consumers(path: str, environ: Mapping[str, str] | None = None) -> tuple[Consumer, ...]:
    """The consumers in the file at ``path``, its variables read from ``environ`` (default
    os.environ).

    Raises:
        ConfigurationError: ``aimw: <path>: <field path>: <what is expected>``; or the file
            cannot be read, is not YAML, or not a mapping. A key's value is never shown
            (a YAML error gives its line and column, not the line's text).
    """
    document = read_yaml(path, "the consumers file")
    if not isinstance(document, dict):
        raise ConfigurationError(
            f"aimw: {path}: expected a mapping with consumers: [{{username, keyauth_credentials}}]"
        )
    try:
        typed = msgspec.convert(
            substitute(document, os.environ if environ is None else environ), ConsumersFile, strict=False
        )
    except ConfigPathError as exc:  # a variable the environment lacks
        raise ConfigurationError(f"aimw: {path}: {exc}") from None
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"aimw: {path}: {from_validation(exc, ConsumersFile)}") from None
    return typed.consumers
