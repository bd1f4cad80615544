"""ClientAuthMiddleware: only the consumers' keys open the gateway (Kong's key-auth).

The key is read where Anthropic clients send theirs: ``x-api-key`` (Claude Code with
ANTHROPIC_API_KEY, the SDKs' ``api_key``), else ``Authorization: Bearer <key>`` (Claude
Code with ANTHROPIC_AUTH_TOKEN, the SDKs' ``auth_token``); when both come, either may match.
A request with no key, or with a key no consumer holds, is answered ``401
authentication_error`` in Anthropic's shape, with ``x-should-retry: false`` (the Anthropic
SDKs and Claude Code then do not retry a key that cannot become right) and RFC 9110's
``www-authenticate``; nothing below runs, nothing goes upstream. The refusal is logged
(``aimw.client_auth``, WARNING) with the client's address and the reason, never the key.
A request that passes carries its consumer on ``Exchange.consumer`` (aimw.config.consumers.
AuthenticatedConsumer) for the log and the layers below.

``HEAD`` passes without a key: Claude Code's pre-flight (``HEAD /``, ``HEAD /api/hello``)
carries none (../shared/corpus/claude-code, 023 and 024), and AnthropicEndpoints answers
every ``HEAD`` itself, so a ``HEAD`` never reaches a provider. ``count_tokens`` needs a key
like ``/v1/messages``: Claude Code sends its key there (corpus 018), and for
recipes.anthropic it spends the gateway's Anthropic key.

The lookup: the presented key is hashed once with SHA-256 and its digest looked up in a
dict of the consumers' key digests. No key is ever compared: what the lookup's timing
depends on is the digest of the attacker's own key (and Python's per-process randomised
hash of it), which says nothing about any stored key, since finding a key from its digest
is SHA-256's preimage problem. A byte-by-byte timing attack needs a comparison that stops
at the first differing byte of the secret; here the secret is never the operand. It costs
one hash and one dict probe whatever the number of keys, where comparing the digest with
``hmac.compare_digest`` against every stored one would cost a comparison per key.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aimw.asgi import send_error
from aimw.errors import GatewayError
from aimw.exchange import exchange_of
from aimw.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from aimw.config.consumers import AuthenticatedConsumer

logger = logging.getLogger("aimw.client_auth")

MISSING_KEY = GatewayError(
    401,
    "No API key found in request: send the key the gateway's operator gave you as x-api-key or "
    "Authorization: Bearer (Claude Code: ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN)",
)
UNKNOWN_KEY = GatewayError(401, "Invalid authentication credentials")
REFUSAL_HEADERS = ((b"x-should-retry", b"false"), (b"www-authenticate", b'Bearer realm="aimw"'))
_BEARER = b"bearer"


class ClientAuthMiddleware:
    """Admit only requests that present one of the consumers' keys (see the module docstring).

    Args:
        app: the gateway below.
        keyring: each key's SHA-256 digest (32 bytes) -> the consumer it names
            (aimw.config.consumers.keyring builds it from Kong's consumers list).

    Raises:
        ValueError: ``keyring`` is empty (a gateway nobody could call; leave the layer out
            for an open one).
    """

    def __init__(self, app: ASGIApp, *, keyring: Mapping[bytes, AuthenticatedConsumer]) -> None:
        if not keyring:
            raise ValueError("ClientAuthMiddleware needs at least one key")
        self.app = app
        self.keyring = dict(keyring)

    def __repr__(self) -> str:
        return f"ClientAuthMiddleware(keys={len(self.keyring)})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        api_key = authorization = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                api_key = api_key or value
            elif name == b"authorization":
                authorization = authorization or value
        keyring = self.keyring
        consumer = keyring.get(hashlib.sha256(api_key).digest()) if api_key else None
        if consumer is None:
            bearer = _bearer_token(authorization) if authorization else None
            if bearer:
                consumer = keyring.get(hashlib.sha256(bearer).digest())
            if consumer is None:
                await self.refuse(scope, send, api_key, authorization, bearer)
                return
        exchange_of(scope).consumer = consumer
        await self.app(scope, receive, send)

    @staticmethod
    async def refuse(
        scope: Scope, send: Send, api_key: bytes | None, authorization: bytes | None, bearer: bytes | None
    ) -> None:
        """Answer 401 and log why (which header held an unknown key, or that none held one)."""
        if api_key or bearer:
            error = UNKNOWN_KEY
            held = [name for name, value in (("x-api-key", api_key), ("Authorization: Bearer", bearer)) if value]
            reason = f"unknown key in {' and '.join(held)}"
        else:
            error = MISSING_KEY
            reason = "no key (Authorization is not Bearer)" if authorization and bearer is None else "no key"
        client = (scope.get("client") or ("unknown client",))[0]
        logger.warning("aimw: refused %s %r from %s: %s", scope["method"], scope["path"], client, reason)
        exchange_of(scope).fail(f"{error.error_type}: {reason}")
        await send_error(send, error, REFUSAL_HEADERS)


def _bearer_token(authorization: bytes) -> bytes | None:
    """The credentials of ``Authorization: Bearer <token>`` (scheme in any case, RFC 9110
    §11.1), or None for another scheme."""
    scheme, _, token = authorization.partition(b" ")
    return token.strip() if scheme.lower() == _BEARER else None
