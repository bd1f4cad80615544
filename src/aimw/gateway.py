"""The standard stacks (DESIGN.md §1): :func:`translated_gateway` for a provider that
speaks another wire format, :func:`passthrough_gateway` for Anthropic itself,
:func:`config_gateway` for many targets from a Kong-schema configuration.

Recipes call them; apps that want a different stack compose the middlewares themselves
the same way.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TypedDict

import httpx
import msgspec

from aimw.balancer import Balancer
from aimw.middleware.client_auth import ClientAuthMiddleware
from aimw.middleware.client_guard import ClientGuard
from aimw.middleware.endpoints import AnthropicEndpoints
from aimw.middleware.failover import FailoverMiddleware, Leg
from aimw.middleware.memory_release import MemoryReleaseMiddleware
from aimw.middleware.metrics_endpoint import metrics_from_env
from aimw.middleware.observe import ObserveMiddleware
from aimw.middleware.provider_auth import ProviderAuthMiddleware
from aimw.middleware.sse_rewrite import SSERewriteMiddleware
from aimw.middleware.strip_fields import StripFieldsMiddleware
from aimw.middleware.translate import TranslateMiddleware
from aimw.providers import Provider
from aimw.rate_limiting import config_rate_limited, rate_limited
from aimw.settings import ConfigurationError, Settings
from aimw.sinks import KongFileLog
from aimw.telemetry import traced
from aimw.translators.openai_chat import OpenAIChat
from aimw.types import ASGIApp, Credential, WireFormat
from aimw.upstream import UpstreamApp

if TYPE_CHECKING:
    from aimw.config import GatewayConfig, TargetSpec
    from aimw.config.consumers import AuthenticatedConsumer

logger = logging.getLogger("aimw.gateway")
OPEN_GATEWAY = "aimw: no consumers configured: the gateway is open to anyone who reaches it"


class _FieldRules(TypedDict):
    set: dict[str, object]
    cap: dict[str, float]


def translated_gateway(
    provider: Provider,
    settings: Settings,
    *,
    secret: str | None = None,
    credential: Credential | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    default_max_tokens: int | None = None,
    default_temperature: float | None = None,
    forward_headers: Iterable[str] = (),
) -> ASGIApp:
    """Observe > [ClientAuth] > ClientGuard > AnthropicEndpoints > StripFields > Translate >
    SSERewrite > ProviderAuth > Upstream for ``provider``; ClientAuth with AIMW_CONSUMERS.

    The client's ``model`` is dropped (Kong's pre-function) and replaced by AIMW_MODEL or
    the provider's default; AIMW_MAX_TOKENS (else ``default_max_tokens``, tokens) caps
    max_tokens; AIMW_TEMPERATURE (else ``default_temperature``) overrides temperature.
    ``secret`` is the provider's key, sent as its kind of credential; ``credential`` a
    Credential object instead (a token source: aimw.google_token); with neither, none is sent.
    ``forward_headers``: the recipe's own client header names (any case) sent on besides
    the allowlist, as AIMW_FORWARD_HEADERS adds the operator's.
    """
    credential = credential or provider.credential_for(secret)
    app: ASGIApp = _leg(provider, settings, credential, transport=transport, forward_headers=forward_headers)
    app = StripFieldsMiddleware(
        app,
        drop=("model",),
        **_field_rules(settings, default_max_tokens, default_temperature),
        max_body_size=settings.max_request_body_size,
        parsed=True,
    )
    app = _endpoints(app, settings)
    app = rate_limited(app, providers=(provider.name,))
    return _observed(_client_auth(app, _keyring(settings)), settings)


def passthrough_gateway(provider: Provider, settings: Settings, *, secret: str | None) -> ASGIApp:
    """Observe > [ClientAuth] > ClientGuard > AnthropicEndpoints > StripFields > Translate
    (Anthropic's own format) > SSERewrite > [ProviderAuth] > Upstream, nothing translated.

    ``POST /v1/messages`` and ``POST /v1/messages/count_tokens`` are forwarded (under any
    client-side prefix, which is dropped), with Anthropic's query (``beta``) and headers
    (``anthropic-version``, ``anthropic-beta``); AIMW_FORWARD_PATHS adds routes; pre-flight
    ``HEAD`` is answered here. Bodies that no setting changes go on byte for byte; AIMW_MODEL
    sets ``model`` on messages and count_tokens, AIMW_MAX_TOKENS and AIMW_TEMPERATURE act on
    messages. With ``secret`` None the client's own ``x-api-key`` / ``authorization`` pass;
    otherwise they are replaced by it.

    Raises:
        ConfigurationError: consumers are configured (AIMW_CONSUMERS) and ``secret`` is None:
            the consumers' keys are the gateway's, and would reach the provider.
    """
    keyring = _keyring(settings)
    if keyring is not None and secret is None:
        raise ConfigurationError(
            f"aimw: with consumers (AIMW_CONSUMERS) the gateway must send its own {provider.name} key "
            "(recipes.anthropic: ANTHROPIC_API_KEY): a consumer's key is the gateway's, never the provider's"
        )
    app: ASGIApp = _leg(provider, settings, provider.credential_for(secret))
    model: dict[str, object] = {} if settings.model is None else {"model": settings.model}
    app = StripFieldsMiddleware(
        app, set=model, path_suffixes=("/v1/messages/count_tokens",), max_body_size=settings.max_request_body_size
    )
    rules = _field_rules(settings, None, None)
    rules["set"].update(model)
    app = StripFieldsMiddleware(app, **rules, max_body_size=settings.max_request_body_size)
    app = _endpoints(app, settings, forward_count_tokens=True, forward=settings.forward_paths)
    app = rate_limited(app, providers=(provider.name,))
    return _observed(_client_auth(app, keyring), settings)


def config_gateway(
    config: GatewayConfig,
    settings: Settings,
    *,
    targets: list[TargetSpec] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ASGIApp:
    """Observe > [ClientAuth] > ClientGuard > AnthropicEndpoints > StripFields > Failover > one leg per
    target (StripFields of the target's options > Translate > SSERewrite > ProviderAuth >
    Upstream): Kong's ai-proxy-advanced ``config`` (aimw.config) served.

    The request is parsed once; each try re-translates it for its target. Per target: the
    model (``model.name``; without it the client's), ``options.max_tokens`` as a cap,
    temperature / top_p / top_k set, its credential, its URL. The balancer's timeouts are ms:
    ``read_timeout`` is the wait between two reads of the provider. ``max_request_body_size``
    0 (Kong's "unlimited") keeps AIMW_MAX_REQUEST_BODY_SIZE. ``response_streaming``: ``always``
    makes every request a stream, ``deny`` refuses streams with 400. The log goes to
    ``log.path`` (else AIMW_LOG_PATH); payloads are logged when AIMW_LOG_PAYLOADS or any
    target's ``logging.log_payloads`` says so. ``targets``: the configuration's TargetSpecs,
    when already built (aimw.config.build_targets). The configuration's ``consumers`` (else
    AIMW_CONSUMERS's file) are who may call.

    Raises:
        ConfigurationError: with consumers, an anthropic target without ``auth`` (the client's
            key, a consumer's, would reach Anthropic); consumers given twice.
    """
    from aimw.config import build_targets

    specs = targets if targets is not None else build_targets(config)
    keyring = _keyring(settings, config)
    for spec in specs:
        if keyring is not None and spec.credential is None and spec.provider.wire_format.passthrough:
            raise ConfigurationError(
                f"aimw: targets[{spec.index}].auth: required with consumers (else a consumer's key, the "
                f"gateway's, would reach {spec.provider.name} as the client's own)"
            )
    balancer_config = config.balancer
    legs = [
        Leg(
            _target_leg(spec, settings, config, transport=transport),
            f"targets[{spec.index}] ({spec.provider.name}/{spec.model or 'client model'})",
            spec.aliases,
            config.targets[spec.index].model.options.input_cost or 0.0,
            config.targets[spec.index].model.options.output_cost or 0.0,
        )
        for spec in specs
    ]
    balancer = Balancer(
        [spec.weight for spec in specs],
        balancer_config.algorithm,
        hash_on_header=balancer_config.hash_on_header,
        latency_strategy=balancer_config.latency_strategy,
        tokens_count_strategy=balancer_config.tokens_count_strategy,
        max_fails=balancer_config.max_fails,
        fail_timeout_ms=balancer_config.fail_timeout,
    )
    app: ASGIApp = FailoverMiddleware(
        legs, balancer, retries=balancer_config.retries, failover_criteria=balancer_config.failover_criteria
    )
    body_limit = config.max_request_body_size or settings.max_request_body_size
    app = StripFieldsMiddleware(
        app,
        drop=("model",) if config.strip_model else (),
        set={"stream": True} if config.response_streaming == "always" else {},
        deny_stream=config.response_streaming == "deny",
        max_body_size=body_limit,
        parsed=True,
    )
    settings = dataclasses.replace(
        settings,
        max_request_body_size=body_limit,
        log_path=config.log.path if config.log is not None else settings.log_path,
        log_payloads=settings.log_payloads or any(spec.log_payloads for spec in specs),
    )
    app = config_rate_limited(_endpoints(app, settings), config)
    return _observed(_client_auth(app, keyring), settings)


def _target_leg(
    spec: TargetSpec, settings: Settings, config: GatewayConfig, *, transport: httpx.AsyncBaseTransport | None
) -> ASGIApp:
    """One target's leg with its own field rules (passthrough: on the raw body, the model
    set there; translated: on the parsed request, the model given to Translate)."""
    provider = spec.provider
    app: ASGIApp = UpstreamApp(
        provider.base_url,
        provider_name=provider.name,
        timeout=config.balancer.read_timeout / 1000,
        transport=transport,
        max_connections=settings.upstream_max_connections,
        pool_timeout=settings.pool_timeout,
        route_type=spec.route_type,
        model_header=config.model_name_header,
    )
    if spec.credential is not None or not provider.wire_format.passthrough:
        app = ProviderAuthMiddleware(app, credential=spec.credential)
    wire_format = _wire_format(provider, settings)
    app = SSERewriteMiddleware(app, wire_format=wire_format)
    app = TranslateMiddleware(
        app,
        wire_format=wire_format,
        default_model=spec.model or provider.default_model,
        model=spec.model,
        log_meta=dict(spec.log_meta),
        extra_forwarded_headers=[name.encode("latin-1") for name in settings.forward_headers],
    )
    passthrough = provider.wire_format.passthrough
    model: dict[str, object] = {"model": spec.model} if passthrough and spec.model else {}
    return StripFieldsMiddleware(
        app,
        set={**spec.set_fields, **model},
        cap=spec.cap_fields,
        max_body_size=settings.max_request_body_size,
        parsed=not passthrough,
    )


def _leg(
    provider: Provider,
    settings: Settings,
    credential: Credential | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    forward_headers: Iterable[str] = (),
) -> ASGIApp:
    """Translate > SSERewrite > ProviderAuth > Upstream: one target's leg. A pass-through
    leg without a credential lets the client's own credentials pass. The client headers
    named in AIMW_FORWARD_HEADERS and ``forward_headers`` join the allowlist."""
    app: ASGIApp = UpstreamApp(
        settings.base_url(provider.base_url),
        provider_name=provider.name,
        timeout=settings.upstream_timeout,
        transport=transport,
        max_connections=settings.upstream_max_connections,
        pool_timeout=settings.pool_timeout,
    )
    if credential is not None or not provider.wire_format.passthrough:
        app = ProviderAuthMiddleware(app, credential=credential)
    wire_format = _wire_format(provider, settings)
    app = SSERewriteMiddleware(app, wire_format=wire_format)
    return TranslateMiddleware(
        app,
        wire_format=wire_format,
        default_model=provider.default_model,
        model=settings.model,
        log_meta=dict(provider.log_meta),
        extra_forwarded_headers=[
            name.lower().encode("latin-1") for name in (*settings.forward_headers, *forward_headers)
        ],
    )


def _wire_format(provider: Provider, settings: Settings) -> WireFormat:
    """The provider's wire format, a Chat Completions one told to merge system turns when
    AIMW_SYSTEM_TURNS is ``merge`` (Gemini's systemInstruction takes them all already)."""
    wire_format = provider.wire_format
    if settings.system_turns == "merge" and isinstance(wire_format, OpenAIChat):
        return OpenAIChat(msgspec.structs.replace(wire_format.options, system_turns="merge"))
    return wire_format


def _endpoints(
    app: ASGIApp, settings: Settings, *, forward_count_tokens: bool = False, forward: tuple[tuple[str, str], ...] = ()
) -> ASGIApp:
    """ClientGuard > AnthropicEndpoints: who may call, on which canonical routes, with which body."""
    app = AnthropicEndpoints(
        app,
        forward_count_tokens=forward_count_tokens,
        forward=forward,
        max_body_size=settings.max_request_body_size,
        body_timeout=settings.client_body_timeout,
    )
    return ClientGuard(app, allowed_hosts=settings.allowed_hosts, allowed_origins=settings.allowed_origins)


def _keyring(settings: Settings, config: GatewayConfig | None = None) -> Mapping[bytes, AuthenticatedConsumer] | None:
    """The consumers' keys: the configuration file's ``consumers``, else AIMW_CONSUMERS's
    file; None with neither (an open gateway).

    Raises:
        ConfigurationError: both give consumers; the AIMW_CONSUMERS file's problems.
    """
    consumers = config.consumers if config is not None else None
    if settings.consumers_path is not None:
        if consumers is not None:
            raise ConfigurationError(
                "aimw: consumers are given twice, by AIMW_CONSUMERS and by the configuration file: keep one"
            )
        from aimw.config.consumers_file import load_consumers

        consumers = load_consumers(settings.consumers_path)
    if consumers is None:
        return None
    from aimw.config.consumers import keyring

    return keyring(consumers)


def _client_auth(app: ASGIApp, keyring: Mapping[bytes, AuthenticatedConsumer] | None) -> ASGIApp:
    """ClientAuth over ``app`` (directly under Observe, above ClientGuard: a client without a
    key learns nothing, not even which Host, Origin or path the gateway takes); without
    consumers no layer at all, and one warning that the gateway is open."""
    if keyring is None:
        logger.warning(OPEN_GATEWAY)
        return app
    return ClientAuthMiddleware(app, keyring=keyring)


def _observed(app: ASGIApp, settings: Settings) -> ASGIApp:
    """[MetricsEndpoint, with AIMW_METRICS or AIMW_METRICS_BIND: aimw.middleware.metrics_endpoint] >
    MemoryRelease > Observe (with the Kong file log, and the Prometheus sink with metrics) >
    [Tracing, when OpenTelemetry is configured: aimw.telemetry] over ``app``."""
    metrics = metrics_from_env()
    app = traced(app, log_payloads=settings.log_payloads)
    log = KongFileLog(settings.log_path)
    observed = ObserveMiddleware(
        app, sinks=(log,) if metrics is None else (log, metrics.sink), log_payloads=settings.log_payloads
    )
    app = MemoryReleaseMiddleware.build(observed)
    return app if metrics is None else metrics.around(app)


def _field_rules(settings: Settings, default_max_tokens: int | None, default_temperature: float | None) -> _FieldRules:
    """StripFieldsMiddleware's ``set`` and ``cap`` from the AIMW_* settings and a recipe's defaults."""
    temperature = settings.temperature if settings.temperature is not None else default_temperature
    max_tokens = settings.max_tokens if settings.max_tokens is not None else default_max_tokens
    return {
        "set": {} if temperature is None else {"temperature": temperature},
        "cap": {} if max_tokens is None else {"max_tokens": max_tokens},
    }
