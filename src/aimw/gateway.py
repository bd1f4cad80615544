"""The standard stack for a provider that speaks another wire format (DESIGN.md §1).

Recipes call :func:`translated_gateway`; apps that want a different stack compose the
middlewares themselves the same way.
"""

from __future__ import annotations

import httpx

from aimw.middleware.file_log import FileLogMiddleware
from aimw.middleware.provider_auth import ProviderAuthMiddleware
from aimw.middleware.sse_rewrite import SSERewriteMiddleware
from aimw.middleware.strip_fields import StripFieldsMiddleware
from aimw.middleware.translate import TranslateMiddleware
from aimw.providers import Provider
from aimw.settings import Settings
from aimw.types import ASGIApp
from aimw.upstream import UpstreamApp


def translated_gateway(
    provider: Provider,
    settings: Settings,
    *,
    credential: str | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ASGIApp:
    """FileLog > StripFields > Translate > SSERewrite > ProviderAuth > Upstream for ``provider``.

    The client's ``model`` is dropped (Kong's pre-function) and replaced by AIMW_MODEL or
    the provider's default; AIMW_MAX_TOKENS caps max_tokens; AIMW_TEMPERATURE overrides
    temperature. ``credential`` is the provider's secret (None sends none).
    """
    upstream = UpstreamApp(
        settings.base_url(provider.base_url),
        provider_name=provider.name,
        timeout=settings.upstream_timeout,
        transport=transport,
    )
    app: ASGIApp = ProviderAuthMiddleware(
        upstream, header=provider.auth_header, credential=credential, prefix=provider.auth_prefix
    )
    app = SSERewriteMiddleware(app, wire_format=provider.wire_format)
    app = TranslateMiddleware(
        app, provider=provider, model=settings.model, max_body_size=settings.max_request_body_size
    )
    app = StripFieldsMiddleware(
        app,
        drop=("model",),
        set={} if settings.temperature is None else {"temperature": settings.temperature},
        cap={} if settings.max_tokens is None else {"max_tokens": settings.max_tokens},
        max_body_size=settings.max_request_body_size,
    )
    return FileLogMiddleware(app, path=settings.log_path, log_payloads=settings.log_payloads)
