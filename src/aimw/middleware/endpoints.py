"""AnthropicEndpoints: the Anthropic API face of the gateway, and the one place a request's
path is decided.

Every request target is made canonical once (percent-encoding of ``/``, ``\\``, ``.``, ``;``
and ``#``, raw ``\\``, ``;``, ``#``, ``.`` / ``..`` and empty segments refused with 400) and
matched against an allowlist of routes; the layers below see exactly the route matched
(``/anything/v1/messages`` -> ``/v1/messages``) and, of the query, only Anthropic's ``beta``
(DESIGN §6, issue 8: no other path or spelling reaches the provider under the gateway's key,
and the policy below cannot be bypassed by spelling the path differently).

- ``HEAD`` on any path is answered 200 (the Claude Code CLI's pre-flight ``HEAD /``,
  ``HEAD /api/hello``);
- ``POST …/v1/messages`` goes on to the app;
- ``POST …/v1/messages/count_tokens`` is answered locally with an estimate
  (aimw.token_estimate), or forwarded when ``forward_count_tokens`` (Anthropic itself);
- the routes in ``forward`` (``(METHOD, /path)``, an operator's choice) go on with their query;
- anything else is 404 not_found_error, WebSocket handshakes included.

A forwarded request's body is read here, whole, before any upstream connection is taken
(at most ``max_body_size`` bytes, else 413; within ``body_timeout`` seconds, else 408
timeout_error), and kept at ``Exchange.request_body``. Local answers are Starlette responses.
Source: Anthropic API reference, "Messages", "Count message tokens".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable

import msgspec
from starlette.responses import Response

from aimw.asgi import JSON_HEADERS, ClientDisconnected, answer_error, replay_body, request_body
from aimw.errors import GatewayError, error_body
from aimw.token_estimate import estimate_input_tokens
from aimw.translators.anthropic.messages import decode_request
from aimw.types import ASGIApp, Receive, Scope, Send

DEFAULT_MAX_BODY_SIZE = 8 * 1024 * 1024  # bytes
DEFAULT_BODY_TIMEOUT = 60.0  # seconds
MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
ANTHROPIC_QUERY_PARAMETERS = frozenset((b"beta",))

_REFUSED_IN_PATH = re.compile(rb"%(?:2[fFeE3]|5[cC]|3[bB])|[\\;#]")


class AnthropicEndpoints:
    """Route the Anthropic Messages API on canonical paths (see the module docstring).

    Args:
        app: the gateway below (StripFields > Translate > …).
        forward_count_tokens: forward count_tokens (Anthropic) instead of estimating it.
        forward: further ``(METHOD, /path)`` routes to forward, with their whole query.
        max_body_size: body limit (bytes) -> 413 request_too_large.
        body_timeout: seconds for the client to send its body -> 408 timeout_error.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        forward_count_tokens: bool = False,
        forward: Iterable[tuple[str, str]] = (),
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        self.app = app
        self.forward_count_tokens = forward_count_tokens
        self.routes = {(MESSAGES, "POST"): True}  # route -> only Anthropic's query parameters
        if forward_count_tokens:
            self.routes[(COUNT_TOKENS, "POST")] = True
        for method, path in forward:
            self.routes[(path, method.upper())] = False
        self.max_body_size = max_body_size
        self.body_timeout = body_timeout
        self._exact = {(path.encode(), method): (path, method) for path, method in self.routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await refuse_websocket(scope, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        try:
            if method == "HEAD":
                await Response(status_code=200)(scope, receive, send)
                return
            raw_path: bytes | None = scope.get("raw_path")
            route = self._exact.get((raw_path, method)) if raw_path else None  # the common spelling, checked once
            if route is None:
                path = canonical_path(scope)
                route = self._route(method, path)
                if route is None and method == "POST" and path.endswith(COUNT_TOKENS):
                    await self.count_tokens(scope, receive, send)
                    return
                if route is None:
                    raise GatewayError(404, f"{method} {path} is not an endpoint of this gateway")
            body = await self._body(scope, receive)
        except GatewayError as error:
            await answer_error(scope, send, error)
            return
        except ClientDisconnected:
            return
        query: bytes = scope.get("query_string", b"")
        routed = {
            **scope,
            "path": route[0],
            "raw_path": route[0].encode(),
            "root_path": "",
            "query_string": _anthropic_query(query) if self.routes[route] else query,
        }
        if body is not None:
            receive = replay_body(body, receive)
            del body  # not pinned by this frame for the whole answer
        await self.app(routed, receive, send)

    def _route(self, method: str, path: str) -> tuple[str, str] | None:
        """The allowlisted route ``path`` ends with (after a client-side prefix), if any."""
        for route_path, route_method in self.routes:
            if method == route_method and (path == route_path or path.endswith(route_path)):
                return route_path, route_method
        return None

    async def _body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, read within the limits, or None for a request without one."""
        for name, _ in scope["headers"]:
            if name == b"content-length" or name == b"transfer-encoding":
                break
        else:
            return None
        try:
            async with asyncio.timeout(self.body_timeout):  # anyio's fail_after: 9 µs, this: 4 µs
                return await request_body(scope, receive, self.max_body_size)
        except TimeoutError:
            message = f"the request body did not arrive within {self.body_timeout:g} s"
            raise GatewayError(408, message, "timeout_error") from None

    async def count_tokens(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._body(scope, receive)
        request = decode_request(body or b"")
        answer = msgspec.json.encode({"input_tokens": estimate_input_tokens(request)})
        await Response(answer, media_type="application/json")(scope, receive, send)


async def refuse_websocket(scope: Scope, send: Send) -> None:
    """Refuse a WebSocket handshake (no Anthropic endpoint is one): 404 not_found_error in
    Anthropic's shape where the server offers the ASGI "WebSocket Denial Response" extension
    (Hypercorn does), else a close before accepting, which the server answers with 403
    (ASGI spec, "WebSocket": ``websocket.http.response.start`` / ``websocket.close``)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close"})
        return
    body = error_body("not_found_error", f"WebSocket {scope['path']} is not an endpoint of this gateway")
    headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(body))]
    await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body, "more_body": False})


def canonical_path(scope: Scope) -> str:
    """The request's path as the client sent it (``raw_path``), checked.

    Raises:
        GatewayError: 400 for encoded ``/`` ``\\`` ``.`` ``;`` ``#``, raw ``\\`` ``;`` ``#``,
            ``.`` / ``..`` or empty segments, or a target that is not a path.
    """
    raw_path: bytes | None = scope.get("raw_path")
    raw = raw_path if raw_path else scope["path"].encode("utf-8")
    if not raw.startswith(b"/") or _REFUSED_IN_PATH.search(raw):
        raise GatewayError(400, "the request path has characters or encodings this gateway does not accept")
    if b"//" in raw or any(segment in (b".", b"..") for segment in raw.split(b"/")):
        raise GatewayError(400, "the request path has empty, '.' or '..' segments")
    return raw.decode("latin-1")


def _anthropic_query(query: bytes) -> bytes:
    """Only Anthropic's own query parameters (``beta``) of ``query``, in their order."""
    if not query:
        return b""
    kept = [item for item in query.split(b"&") if item.partition(b"=")[0] in ANTHROPIC_QUERY_PARAMETERS]
    return b"&".join(kept)
