"""Gateway settings, read once from the environment when a recipe is imported.

Every recipe reads the generic ``AIMW_*`` variables below; provider variables (keys,
instance names) are read with :func:`required_env` / :func:`optional_env`. A missing or
malformed variable stops the process at start with a message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

_N = TypeVar("_N", int, float)
_D = TypeVar("_D", int, float, None)

DEFAULT_LOG_PATH = "aimw.log"
DEFAULT_MAX_REQUEST_BODY_SIZE = 8 * 1024 * 1024  # bytes
DEFAULT_UPSTREAM_TIMEOUT = 600.0  # seconds: long generations stream for minutes


class ConfigurationError(SystemExit):
    """A missing or malformed environment variable; exits the process with its message."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The generic settings (units in field comments).

    upstream_url: ``AIMW_UPSTREAM_URL``, replaces the provider's scheme://host[:port].
    model: ``AIMW_MODEL``, the upstream model name.
    log_path: ``AIMW_LOG_PATH``, the JSON-lines log file.
    max_request_body_size: ``AIMW_MAX_REQUEST_BODY_SIZE`` (bytes).
    max_tokens: ``AIMW_MAX_TOKENS`` (tokens), the cap on max_tokens sent upstream.
    temperature: ``AIMW_TEMPERATURE``, overrides the client's temperature.
    log_payloads: ``AIMW_LOG_PAYLOADS`` (0/1), request and response bodies in the log.
    upstream_timeout: ``AIMW_UPSTREAM_TIMEOUT`` (seconds) for connecting and between reads.
    """

    upstream_url: str | None = None
    model: str | None = None
    log_path: str = DEFAULT_LOG_PATH
    max_request_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE
    max_tokens: int | None = None
    temperature: float | None = None
    log_payloads: bool = False
    upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the ``AIMW_*`` variables. Raises ConfigurationError naming a malformed one."""
        upstream_url = optional_env("AIMW_UPSTREAM_URL", environ)
        if upstream_url is not None:
            upstream_url = upstream_url.rstrip("/")
            if not upstream_url.startswith(("http://", "https://")) or not urlsplit(upstream_url).hostname:
                raise ConfigurationError(
                    f"aimw: AIMW_UPSTREAM_URL must be http:// or https:// and a host, got {upstream_url!r}"
                )
        return cls(
            upstream_url=upstream_url,
            model=optional_env("AIMW_MODEL", environ),
            log_path=optional_env("AIMW_LOG_PATH", environ) or DEFAULT_LOG_PATH,
            max_request_body_size=_number("AIMW_MAX_REQUEST_BODY_SIZE", int, environ, DEFAULT_MAX_REQUEST_BODY_SIZE),
            max_tokens=_number("AIMW_MAX_TOKENS", int, environ, None),
            temperature=_number("AIMW_TEMPERATURE", float, environ, None),
            log_payloads=_flag("AIMW_LOG_PAYLOADS", environ),
            upstream_timeout=_number("AIMW_UPSTREAM_TIMEOUT", float, environ, DEFAULT_UPSTREAM_TIMEOUT),
        )

    def base_url(self, provider_base_url: str) -> str:
        """The provider's scheme://host[:port], or AIMW_UPSTREAM_URL when set."""
        return self.upstream_url or provider_base_url


def optional_env(name: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The variable's value, or None when unset or empty."""
    value = environ.get(name, "").strip()
    return value or None


def required_env(name: str, purpose: str, environ: Mapping[str, str] = os.environ) -> str:
    """The variable's value. Raises ConfigurationError naming it (and ``purpose``) when unset."""
    value = optional_env(name, environ)
    if value is None:
        raise ConfigurationError(f"aimw: {name} is not set; {purpose}")
    return value


def choice_env(name: str, choices: tuple[str, ...], environ: Mapping[str, str] = os.environ) -> str:
    """The variable's value, one of ``choices`` (``choices[0]`` when unset).
    Raises ConfigurationError naming it for any other value."""
    value = optional_env(name, environ)
    if value is None:
        return choices[0]
    if value not in choices:
        raise ConfigurationError(f"aimw: {name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _number(name: str, kind: type[_N], environ: Mapping[str, str], default: _D) -> _N | _D:
    value = optional_env(name, environ)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise ConfigurationError(f"aimw: {name} must be a {kind.__name__}, got {value!r}") from None
    if number != number:  # NaN: float() accepts it, no setting means anything with it
        raise ConfigurationError(f"aimw: {name} must be a {kind.__name__}, got {value!r}")
    if number < 0:
        raise ConfigurationError(f"aimw: {name} must not be negative, got {value!r}")
    return number


def _flag(name: str, environ: Mapping[str, str]) -> bool:
    value = optional_env(name, environ)
    if value is None or value == "0":
        return False
    if value == "1":
        return True
    raise ConfigurationError(f"aimw: {name} must be 0 or 1, got {value!r}")
