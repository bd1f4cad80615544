"""aimw: composable pure-ASGI middlewares that make an AI gateway."""

from aimw.credentials import HeaderCredential, QueryCredential, bearer
from aimw.errors import GatewayError
from aimw.exchange import Attempt, Exchange, Figures, ObservedExchange, Usage, exchange_of
from aimw.gateway import config_gateway, passthrough_gateway, translated_gateway
from aimw.middleware.client_auth import ClientAuthMiddleware
from aimw.middleware.endpoints import AnthropicEndpoints
from aimw.middleware.observe import ObserveMiddleware
from aimw.middleware.provider_auth import ProviderAuthMiddleware
from aimw.middleware.sse_rewrite import SSERewriteMiddleware
from aimw.middleware.strip_fields import StripFieldsMiddleware
from aimw.middleware.translate import TranslateMiddleware
from aimw.providers import Provider
from aimw.settings import ConfigurationError, Settings, choice_env, optional_env, required_env
from aimw.sinks import KongFileLog
from aimw.types import Credential, Sink, StreamTranslator, WireFormat
from aimw.upstream import (
    UpstreamApp,
    UpstreamBrokeOff,
    UpstreamFailure,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
)

__all__ = [
    "AnthropicEndpoints",
    "Attempt",
    "ClientAuthMiddleware",
    "ConfigurationError",
    "Credential",
    "Exchange",
    "Figures",
    "GatewayError",
    "HeaderCredential",
    "KongFileLog",
    "ObserveMiddleware",
    "ObservedExchange",
    "Provider",
    "ProviderAuthMiddleware",
    "QueryCredential",
    "SSERewriteMiddleware",
    "Settings",
    "Sink",
    "StreamTranslator",
    "StripFieldsMiddleware",
    "TranslateMiddleware",
    "UpstreamApp",
    "UpstreamBrokeOff",
    "UpstreamFailure",
    "UpstreamStatusError",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "Usage",
    "WireFormat",
    "bearer",
    "choice_env",
    "config_gateway",
    "exchange_of",
    "optional_env",
    "passthrough_gateway",
    "required_env",
    "translated_gateway",
]
