"""AnthropicEndpoints: the Anthropic API face of a provider that is not Anthropic.

- ``HEAD`` on any path is answered 200 (the Claude Code CLI's pre-flight ``HEAD /`` and
  ``HEAD /api/hello``);
- ``POST {prefix}/v1/messages/count_tokens`` is answered locally with an estimate
  (aimw.token_estimate): Chat Completions providers have no such endpoint;
- ``POST {prefix}/v1/messages`` goes on to the app;
- anything else is 404 not_found_error, so no other path reaches the provider.

Local answers are Starlette responses (Starlette's ``Response`` sets the framing headers).
Source: Anthropic API reference, "Messages", "Count message tokens".
"""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from aimw.asgi import ClientDisconnected, answer_error, request_body
from aimw.errors import GatewayError
from aimw.token_estimate import estimate_input_tokens
from aimw.translators.anthropic.messages import decode_request
from aimw.types import ASGIApp, Receive, Scope, Send

DEFAULT_MAX_BODY_SIZE = 8 * 1024 * 1024  # bytes


class AnthropicEndpoints:
    """Route the Anthropic Messages API: answer HEAD, count_tokens and unknown paths; pass
    ``POST …/v1/messages`` to ``app``.

    Args:
        app: the gateway below (StripFields > Translate > …).
        max_body_size: count_tokens body limit (bytes) -> 413 request_too_large.
    """

    def __init__(self, app: ASGIApp, *, max_body_size: int = DEFAULT_MAX_BODY_SIZE) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path.endswith("/v1/messages"):
            await self.app(scope, receive, send)
        elif method == "HEAD":
            await Response(status_code=200)(scope, receive, send)
        elif method == "POST" and path.endswith("/v1/messages/count_tokens"):
            await self.count_tokens(scope, receive, send)
        else:
            await answer_error(scope, send, GatewayError(404, f"{method} {path} is not an endpoint of this gateway"))

    async def count_tokens(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            request = decode_request(await request_body(scope, receive, self.max_body_size))
        except GatewayError as error:
            await answer_error(scope, send, error)
            return
        except ClientDisconnected:
            return
        body = msgspec.json.encode({"input_tokens": estimate_input_tokens(request)})
        await Response(body, media_type="application/json")(scope, receive, send)
