"""Gateway settings, read once from the environment when a recipe is imported.

Every recipe reads the generic ``AIMW_*`` variables below; provider variables (keys,
instance names) are read with :func:`required_env` / :func:`optional_env`. A missing or
malformed variable stops the process at start with a message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from aimw.translators.openai_chat.request import SystemTurns

_N = TypeVar("_N", int, float)
_D = TypeVar("_D", int, float, None)

DEFAULT_LOG_PATH = "aimw.log"
DEFAULT_MAX_REQUEST_BODY_SIZE = 8 * 1024 * 1024  # bytes
DEFAULT_UPSTREAM_TIMEOUT = 600.0  # seconds: long generations stream for minutes
DEFAULT_CLIENT_BODY_TIMEOUT = 60.0  # seconds for a client to send its whole body
DEFAULT_POOL_TIMEOUT = 5.0  # seconds to wait for a free upstream connection
DEFAULT_UPSTREAM_MAX_CONNECTIONS = 512


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
    client_body_timeout: ``AIMW_CLIENT_BODY_TIMEOUT`` (seconds) for a client to send its body.
    pool_timeout: ``AIMW_POOL_TIMEOUT`` (seconds) to wait for a free upstream connection.
    upstream_max_connections: ``AIMW_UPSTREAM_MAX_CONNECTIONS``, the upstream pool's size.
    allowed_hosts: ``AIMW_ALLOWED_HOSTS`` (comma-separated), Host names accepted besides
        localhost, 127.0.0.1 and [::1], without a port (any port is accepted); ``*`` accepts any.
    allowed_origins: ``AIMW_ALLOWED_ORIGINS`` (comma-separated), browser Origins accepted.
    forward_paths: ``AIMW_FORWARD_PATHS`` (comma-separated ``METHOD /path``), routes the
        pass-through forwards besides the Messages API's.
    forward_headers: ``AIMW_FORWARD_HEADERS`` (comma-separated names), client headers sent to
        the provider besides the recipe's allowlist.
    system_turns: ``AIMW_SYSTEM_TURNS`` (``inline`` or ``merge``), where a Chat Completions
        provider gets Claude Code's ``role: "system"`` turns: as system messages where they
        stand, or merged in order into the leading one (for models whose chat template allows
        only a leading system message). Gemini takes every system text in systemInstruction
        either way.
    consumers_path: ``AIMW_CONSUMERS``, a YAML file of consumers and their keys
        (aimw.config.consumers_file); None: the gateway is open to anyone who reaches it.
    """

    upstream_url: str | None = None
    model: str | None = None
    log_path: str = DEFAULT_LOG_PATH
    max_request_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE
    max_tokens: int | None = None
    temperature: float | None = None
    log_payloads: bool = False
    upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT
    client_body_timeout: float = DEFAULT_CLIENT_BODY_TIMEOUT
    pool_timeout: float = DEFAULT_POOL_TIMEOUT
    upstream_max_connections: int = DEFAULT_UPSTREAM_MAX_CONNECTIONS
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    forward_paths: tuple[tuple[str, str], ...] = ()
    forward_headers: tuple[str, ...] = ()
    system_turns: SystemTurns = "inline"
    consumers_path: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the ``AIMW_*`` variables. Raises ConfigurationError naming a malformed one."""
        upstream_url = _upstream_url(environ)
        return cls(
            upstream_url=upstream_url,
            model=optional_env("AIMW_MODEL", environ),
            log_path=optional_env("AIMW_LOG_PATH", environ) or DEFAULT_LOG_PATH,
            max_request_body_size=_number("AIMW_MAX_REQUEST_BODY_SIZE", int, environ, DEFAULT_MAX_REQUEST_BODY_SIZE),
            max_tokens=_number("AIMW_MAX_TOKENS", int, environ, None),
            temperature=_number("AIMW_TEMPERATURE", float, environ, None),
            log_payloads=_flag("AIMW_LOG_PAYLOADS", environ),
            upstream_timeout=_number("AIMW_UPSTREAM_TIMEOUT", float, environ, DEFAULT_UPSTREAM_TIMEOUT),
            client_body_timeout=_number("AIMW_CLIENT_BODY_TIMEOUT", float, environ, DEFAULT_CLIENT_BODY_TIMEOUT),
            pool_timeout=_number("AIMW_POOL_TIMEOUT", float, environ, DEFAULT_POOL_TIMEOUT),
            upstream_max_connections=max(
                _number("AIMW_UPSTREAM_MAX_CONNECTIONS", int, environ, DEFAULT_UPSTREAM_MAX_CONNECTIONS), 1
            ),
            allowed_hosts=_hosts("AIMW_ALLOWED_HOSTS", environ),
            allowed_origins=_list("AIMW_ALLOWED_ORIGINS", environ),
            forward_paths=_routes("AIMW_FORWARD_PATHS", environ),
            forward_headers=tuple(name.lower() for name in _list("AIMW_FORWARD_HEADERS", environ)),
            system_turns=_system_turns(environ),
            consumers_path=optional_env("AIMW_CONSUMERS", environ),
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


def _upstream_url(environ: Mapping[str, str]) -> str | None:
    """AIMW_UPSTREAM_URL: http(s), a host, no userinfo (it would reach every log line; put a
    credential in the provider's variable instead)."""
    url = optional_env("AIMW_UPSTREAM_URL", environ)
    if url is None:
        return None
    url = url.rstrip("/")
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ConfigurationError("aimw: AIMW_UPSTREAM_URL must not hold a user name or password before its host")
    if not url.startswith(("http://", "https://")) or not parts.hostname:
        raise ConfigurationError(f"aimw: AIMW_UPSTREAM_URL must be http:// or https:// and a host, got {url!r}")
    return url


def _list(name: str, environ: Mapping[str, str]) -> tuple[str, ...]:
    value = optional_env(name, environ) or ""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _hosts(name: str, environ: Mapping[str, str]) -> tuple[str, ...]:
    """Host names without a port: a Host header's port is not compared, so an entry with one
    would never match (an IPv6 address goes in brackets, ``[::1]``)."""
    hosts = _list(name, environ)
    for host in hosts:
        name_part = host[host.find("]") + 1 :] if host.startswith("[") else host
        if ":" in name_part:
            raise ConfigurationError(
                f"aimw: {name} takes host names without a port (any port is accepted; an IPv6 address "
                f"goes in brackets), got {host!r}"
            )
    return hosts


def _routes(name: str, environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    routes = []
    for item in _list(name, environ):
        method, _, path = item.partition(" ")
        path = path.strip()
        if not method.isalpha() or not path.startswith("/") or " " in path:
            raise ConfigurationError(f"aimw: {name} takes 'METHOD /path' items, got {item!r}")
        routes.append((method.upper(), path))
    return tuple(routes)


def _system_turns(environ: Mapping[str, str]) -> SystemTurns:
    return "merge" if choice_env("AIMW_SYSTEM_TURNS", ("inline", "merge"), environ) == "merge" else "inline"


def _flag(name: str, environ: Mapping[str, str]) -> bool:
    value = optional_env(name, environ)
    if value is None or value == "0":
        return False
    if value == "1":
        return True
    raise ConfigurationError(f"aimw: {name} must be 0 or 1, got {value!r}")
