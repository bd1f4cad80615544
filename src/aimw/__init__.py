"""aimw: composable pure-ASGI middlewares that make an AI gateway."""

from aimw.errors import GatewayError
from aimw.exchange import Exchange, Usage, exchange_of
from aimw.gateway import passthrough_gateway, translated_gateway
from aimw.middleware.file_log import FileLogMiddleware
from aimw.middleware.provider_auth import ProviderAuthMiddleware
from aimw.middleware.sse_rewrite import SSERewriteMiddleware
from aimw.middleware.strip_fields import StripFieldsMiddleware
from aimw.middleware.translate import TranslateMiddleware
from aimw.providers import Provider
from aimw.settings import ConfigurationError, Settings, choice_env, optional_env, required_env
from aimw.upstream import UpstreamApp, UpstreamStreamError

__all__ = [
    "ConfigurationError",
    "Exchange",
    "FileLogMiddleware",
    "GatewayError",
    "Provider",
    "ProviderAuthMiddleware",
    "SSERewriteMiddleware",
    "Settings",
    "StripFieldsMiddleware",
    "TranslateMiddleware",
    "UpstreamApp",
    "UpstreamStreamError",
    "Usage",
    "choice_env",
    "exchange_of",
    "optional_env",
    "passthrough_gateway",
    "required_env",
    "translated_gateway",
]
