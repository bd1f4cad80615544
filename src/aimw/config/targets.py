"""The configured targets as the gateway uses them: :class:`TargetSpec`, one per
``targets[]`` entry, made with the provider factories (aimw.providers) and credentials
(aimw.credentials) the recipes use.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from aimw.config.endpoint import Endpoint, endpoint
from aimw.config.schema import Auth, GatewayConfig, Model, Target
from aimw.credentials import HeaderCredential, QueryCredential
from aimw.providers import Provider
from aimw.providers.anthropic import ANTHROPIC
from aimw.providers.azure import azure
from aimw.providers.dashscope import dashscope
from aimw.providers.gemini import GEMINI
from aimw.providers.huggingface import HUGGINGFACE
from aimw.providers.openai import DEFAULT_MODEL, openai
from aimw.settings import optional_env
from aimw.translators.gemini import Gemini, GeminiOptions
from aimw.translators.openai_chat import OpenAIChat
from aimw.types import Credential

GCP_SERVICE_ACCOUNT = "GCP_SERVICE_ACCOUNT"  # Kong's fallback for auth.gcp_service_account_json
_BEARER = "bearer "
_SET_OPTIONS = ("temperature", "top_p", "top_k")


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One target, ready to assemble into a leg (Translate > SSERewrite > ProviderAuth >
    Upstream).

    index: its position in ``targets[]``.
    provider: name = Kong's provider_name (``gemini`` for Vertex AI too); base_url = the
        ``scheme://host[:port]`` used; wire_format with this target's path and query.
    credential: what ProviderAuth adds. None adds nothing: a translated target then sends no
        credential (a keyless local server: Kong requires no auth either), and an anthropic
        target lets the client's own key through (Kong's Claude Code guide for Anthropic).
    model: ``model.name`` (else a gemini upstream_url's model); None: the client's model.
    aliases: the fnmatch patterns of the client models it serves; ``()`` serves any.
    weight: 1-65535.
    set_fields: temperature / top_p / top_k set on every request (only those given).
    cap_fields: ``{"max_tokens": n}`` (tokens) when options.max_tokens is given.
    log_payloads / log_statistics: ``logging``'s.
    description: ``description``'s. route_type: ``llm/v1/chat``.
    log_meta: the provider's extra ai.proxy.meta (azure_instance_id …).
    """

    index: int
    provider: Provider
    credential: Credential | None
    model: str | None
    aliases: tuple[str, ...]
    weight: int
    set_fields: dict[str, object]
    cap_fields: dict[str, float]
    log_payloads: bool
    log_statistics: bool
    description: str | None
    route_type: str
    log_meta: Mapping[str, str]


def build_targets(config: GatewayConfig, *, environ: Mapping[str, str] | None = None) -> list[TargetSpec]:
    """One TargetSpec per ``config.targets`` entry, in order. ``environ`` (default
    os.environ) holds Kong's ``GCP_SERVICE_ACCOUNT`` fallback.

    Raises:
        ConfigurationError: a service account's key that is not one (naming
            ``targets[i].auth.gcp_service_account_json`` or GCP_SERVICE_ACCOUNT), or no key and
            no Application Default Credentials.
    """
    environ = os.environ if environ is None else environ
    return [_spec(index, target, environ) for index, target in enumerate(config.targets)]


def _spec(index: int, target: Target, environ: Mapping[str, str]) -> TargetSpec:
    model, options = target.model, target.model.options
    place = endpoint(model.provider, options.upstream_url, options.upstream_path, options.azure_api_version)
    provider = _at(_provider(model), place)
    cap = model.max_tokens_cap
    return TargetSpec(
        index=index,
        provider=provider,
        credential=_credential(target.auth, f"targets[{index}].auth", environ),
        model=model.name or place.model,
        aliases=model.aliases,
        weight=target.weight,
        set_fields={name: getattr(options, name) for name in _SET_OPTIONS if getattr(options, name) is not None},
        cap_fields={} if cap is None else {"max_tokens": cap},
        log_payloads=target.logging.log_payloads,
        log_statistics=target.logging.log_statistics,
        description=target.description,
        route_type=target.route_type,
        log_meta=provider.log_meta,
    )


def _provider(model: Model) -> Provider:
    """The provider's factory-made Provider, at its real URL."""
    options = model.options
    match model.provider:
        case "anthropic":
            return ANTHROPIC
        case "azure":
            assert options.azure_instance and options.azure_deployment_id  # Model's check
            return azure(options.azure_instance, options.azure_deployment_id, options.azure_api_version)
        case "dashscope":
            return dashscope()
        case "huggingface":
            return HUGGINGFACE
        case "openai":
            return openai(model.name or DEFAULT_MODEL)
    vertex_ai = options.gemini
    if vertex_ai is None or vertex_ai.api_endpoint is None:
        return GEMINI
    from aimw.providers.vertex import vertex  # google-auth, for Vertex AI targets only

    assert vertex_ai.project_id and vertex_ai.location_id  # GeminiVertexOptions' check
    return vertex(vertex_ai.project_id, vertex_ai.location_id, vertex_ai.api_endpoint)


def _at(provider: Provider, place: Endpoint) -> Provider:
    """``provider`` with the target's base URL, path and query (Endpoint())."""
    if place == Endpoint():
        return provider
    wire = provider.wire_format
    if isinstance(wire, OpenAIChat):
        query = wire.options.query if place.query is None else place.query
        wire = OpenAIChat(msgspec.structs.replace(wire.options, path=place.path or wire.options.path, query=query))
    elif isinstance(wire, Gemini) and place.path:
        wire = Gemini(GeminiOptions(path=place.path))
    return dataclasses.replace(provider, base_url=place.base_url or provider.base_url, wire_format=wire)


def _credential(auth: Auth, where: str, environ: Mapping[str, str]) -> Credential | None:
    """``auth``'s credential (Auth allows at most one way); None without one."""
    if auth.header_name is not None and auth.header_value is not None:
        value = auth.header_value
        if value[: len(_BEARER)].lower() == _BEARER and value[len(_BEARER) :].strip():
            # the same header; the token alone is registered, so it is redacted wherever it appears
            return HeaderCredential(auth.header_name, value[len(_BEARER) :], prefix=value[: len(_BEARER)])
        return HeaderCredential(auth.header_name, value)
    if auth.param_name is not None and auth.param_value is not None:
        return QueryCredential(auth.param_name, auth.param_value)
    if not auth.gcp_use_service_account:
        return None
    from aimw.providers.vertex import vertex_credential  # google-auth, for Vertex AI targets only

    if auth.gcp_service_account_json is not None:
        return vertex_credential(auth.gcp_service_account_json, f"{where}.gcp_service_account_json")
    variable = f"{GCP_SERVICE_ACCOUNT} (for {where}, without gcp_service_account_json)"
    return vertex_credential(optional_env(GCP_SERVICE_ACCOUNT, environ), variable)
