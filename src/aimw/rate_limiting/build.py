"""Where the ``rate_limiting`` section comes from, and the middleware built from it.

- The config recipe: its file's ``rate_limiting:`` section (:func:`config_rate_limited`).
- Any recipe: ``AIMW_RATE_LIMITING=path``, a YAML (or JSON) file holding a
  ``rate_limiting:`` section (and, if it likes, the ``consumers:`` list AIMW_CONSUMERS
  reads, which is left to the client-auth layer), with the environment's secrets
  substituted as in the config file (``${VAR}``, ``{vault://env/var-name}``).
- ``AIMW_REDIS_URL`` (``redis://[user:password@]host:port/db``, ``rediss://`` for TLS):
  Redis for ``strategy: redis``, instead of a ``redis:`` record.

Every problem stops the server at start with a ConfigurationError naming the field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec

from aimw.errors import register_secret
from aimw.middleware.rate_limit import RateLimitMiddleware
from aimw.rate_limiting.config import RateLimiting
from aimw.rate_limiting.counters import Counters, LocalCounters
from aimw.rate_limiting.policy import Limits, Prices
from aimw.rate_limiting.redis_counters import RedisCounters, redis_client
from aimw.settings import ConfigurationError, optional_env
from aimw.types import ASGIApp

if TYPE_CHECKING:
    from aimw.config import GatewayConfig

SECTION = "rate_limiting"
_SHARED_KEYS = frozenset(("consumers",))  # another layer's lists a rate-limiting file may hold


def rate_limited(
    app: ASGIApp,
    *,
    providers: Iterable[str],
    section: RateLimiting | None = None,
    prices: Iterable[tuple[str, float, float]] = (),
    environ: Mapping[str, str] = os.environ,
) -> ASGIApp:
    """``app`` under a RateLimitMiddleware for ``section`` (a config file's), else for
    AIMW_RATE_LIMITING's; ``app`` itself when neither is set.

    providers: the provider names the gateway serves (a window of another would never
    count). prices: (model, input, output) per million tokens, after the section's
    ``model_costs``.

    Raises:
        ConfigurationError: both sections; a provider the gateway does not serve; ``cost``
            windows without any price; ``strategy: redis`` without Redis (or with both a
            ``redis`` record and AIMW_REDIS_URL); AIMW_REDIS_URL without ``strategy: redis``;
            AIMW_RATE_LIMITING's file unreadable or invalid.
    """
    path = optional_env("AIMW_RATE_LIMITING", environ)
    if path is not None:
        if section is not None:
            raise ConfigurationError(
                "aimw: AIMW_RATE_LIMITING is set and the configuration file has a rate_limiting section: keep one"
            )
        section = load_rate_limiting(path, environ)
    url = optional_env("AIMW_REDIS_URL", environ)
    if section is None:
        if url is not None:
            raise ConfigurationError("aimw: AIMW_REDIS_URL is set, but no rate_limiting section uses it")
        return app
    served = sorted(set(providers))
    for name in sorted(section.provider_names() - set(served)):
        raise ConfigurationError(
            f"aimw: rate_limiting.llm_providers: {name!r} is not a provider of this gateway "
            f"(it serves {', '.join(served)}): its windows would never count"
        )
    rows = [(model, cost.input_cost, cost.output_cost) for model, cost in section.model_costs.items()]
    table = Prices([*rows, *prices])
    if "cost" in section.strategies() and not table:
        raise ConfigurationError(
            "aimw: rate_limiting: tokens_count_strategy cost needs prices: model_costs "
            "(or the targets' model.options input_cost / output_cost)"
        )
    return RateLimitMiddleware(app, limits=Limits.of(section, table), counters=_counters(section, url))


def config_rate_limited(app: ASGIApp, config: GatewayConfig, environ: Mapping[str, str] = os.environ) -> ASGIApp:
    """:func:`rate_limited` for the config recipe: its ``rate_limiting`` section, its
    targets' providers, and the prices of the targets that name their model."""
    prices = [
        (target.model.name, target.model.options.input_cost or 0.0, target.model.options.output_cost or 0.0)
        for target in config.targets
        if target.model.name and (target.model.options.input_cost or target.model.options.output_cost)
    ]
    providers = [target.model.provider for target in config.targets]
    return rate_limited(app, providers=providers, section=config.rate_limiting, prices=prices, environ=environ)


def load_rate_limiting(path: str, environ: Mapping[str, str] = os.environ) -> RateLimiting:
    """The ``rate_limiting`` section of the YAML (or JSON) file at ``path``, its variables
    read from ``environ``.

    Raises:
        ConfigurationError: ``aimw: <path>: rate_limiting.<field path>: <what is expected>``;
            or the file cannot be read, is not YAML, or holds no ``rate_limiting`` mapping.
    """
    from aimw.config.environment import substitute  # aimw.config's schema imports this package
    from aimw.config.load import read_yaml
    from aimw.config.problems import ConfigPathError, from_validation, join

    document = read_yaml(path, "AIMW_RATE_LIMITING's file")
    if not isinstance(document, dict) or not isinstance(document.get(SECTION), dict):
        raise ConfigurationError(f"aimw: {path}: expected a mapping with a rate_limiting section")
    for key in sorted(set(document) - {SECTION, *_SHARED_KEYS}):
        raise ConfigurationError(f"aimw: {path}: {key}: unknown field (expected rate_limiting, and consumers)")
    try:
        return msgspec.convert(substitute(document[SECTION], environ, SECTION), RateLimiting, strict=False)
    except ConfigPathError as exc:
        raise ConfigurationError(f"aimw: {path}: {exc}") from None
    except msgspec.ValidationError as exc:
        problem = from_validation(exc, RateLimiting)
        raise ConfigurationError(f"aimw: {path}: {join(SECTION, problem.path)}: {problem.problem}") from None


def _counters(section: RateLimiting, url: str | None) -> Counters:
    """The section's counters: this worker's memory, or Redis (its record or ``url``)."""
    if section.strategy == "local":
        if url is not None:
            raise ConfigurationError("aimw: AIMW_REDIS_URL is set, but rate_limiting.strategy is local")
        return LocalCounters()
    record = section.redis
    if record is None and url is None:
        raise ConfigurationError("aimw: rate_limiting: strategy redis needs rate_limiting.redis or AIMW_REDIS_URL")
    if record is not None and url is not None:
        raise ConfigurationError("aimw: rate_limiting.redis and AIMW_REDIS_URL are both set: keep one")
    if record is not None:
        where = f"{record.host}:{record.port}"
        if record.password:
            register_secret(record.password)
    else:
        assert url is not None
        parts = urlsplit(url)
        try:
            port = parts.port or 6379
        except ValueError:
            port = 0
        if parts.scheme not in ("redis", "rediss") or not parts.hostname or not port:
            raise ConfigurationError(
                "aimw: AIMW_REDIS_URL: expected redis://[user:password@]host[:port][/db] or rediss://"
            )
        where = f"{parts.hostname}:{port}"
        if parts.password:
            register_secret(parts.password)
    return RedisCounters(
        lambda: redis_client(record, url), where=where, namespace=section.namespace, fail_closed=section.fail_closed
    )
