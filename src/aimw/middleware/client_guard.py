"""ClientGuard: refuses what no Anthropic client sends and attackers do (issue 8).

- **Request smuggling** (RFC 9112 §6.1): a request with both ``Transfer-Encoding`` and
  ``Content-Length`` is refused with 400 invalid_request_error: a server that takes the other
  framing than the gateway did would read the next client's request as this one's body.
- **DNS rebinding**: the ``Host`` must be ``localhost``, ``127.0.0.1`` or ``[::1]`` (any port),
  or one of ``allowed_hosts`` (``*`` accepts any), else 403 permission_error: a web page whose
  host name was rebound to 127.0.0.1 would otherwise read the answers.
- **Browsers**: a request with an ``Origin`` not in ``allowed_origins`` is refused with 403
  (Claude Code and the SDKs send none); a ``POST`` whose ``content-type`` is not
  ``application/json`` too (a cross-site "simple" request, ``text/plain``, needs no CORS
  pre-flight, and would spend the gateway's credential).

Refusals are Anthropic errors, recorded on the exchange (and so logged).
"""

from __future__ import annotations

from collections.abc import Iterable

from aimw.asgi import answer_error
from aimw.errors import GatewayError
from aimw.types import ASGIApp, Receive, Scope, Send

LOOPBACK_HOSTS = frozenset((b"localhost", b"127.0.0.1", b"[::1]"))
_JSON = b"application/json"


class ClientGuard:
    """Refuse smuggling, foreign Host values, foreign Origins and non-JSON POSTs.

    Args:
        app: the gateway below.
        allowed_hosts: Host names accepted besides the loopback ones (without port; ``*``: any).
        allowed_origins: Origin values accepted (``scheme://host[:port]``, exactly).
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str] = (), allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        hosts = {host.lower().encode("idna") for host in allowed_hosts}
        self.any_host = b"*" in hosts
        self.allowed_hosts = LOOPBACK_HOSTS | hosts
        self.allowed_origins = frozenset(origin.encode("latin-1") for origin in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                await answer_error(scope, send, refusal)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> GatewayError | None:
        """Why the request is refused, or None."""
        host = origin = content_type = None
        framings = 0
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"content-type":
                content_type = value
            elif name in (b"content-length", b"transfer-encoding"):
                framings |= 1 if name == b"content-length" else 2
        if framings == 3:
            return GatewayError(400, "a request may not carry both Transfer-Encoding and Content-Length")
        if not self.any_host and _host_name(host) not in self.allowed_hosts:
            return GatewayError(403, "this Host is not allowed (set AIMW_ALLOWED_HOSTS to allow it)")
        if origin is not None and origin not in self.allowed_origins:
            return GatewayError(403, "requests from web pages are refused (set AIMW_ALLOWED_ORIGINS to allow one)")
        if scope["method"] == "POST" and (content_type is None or content_type.split(b";")[0].strip().lower() != _JSON):
            return GatewayError(403, "a POST must be content-type: application/json")
        return None


def _host_name(host: bytes | None) -> bytes:
    """The Host header without its port, lower-case (``[::1]:8000`` -> ``[::1]``)."""
    if not host:
        return b""
    host = host.strip().lower()
    if host.startswith(b"["):
        return host[: host.find(b"]") + 1]
    return host.rpartition(b":")[0] if b":" in host else host
