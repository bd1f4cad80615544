"""The pooled upstream transport: one per upstream app, opened at lifespan startup (or on
the first request when the server runs no lifespan), closed at shutdown.

By default httpx-aiohttp's ``AiohttpTransport`` (aiohttp's connection pool behind httpx's
transport API), which ``bench/`` measured at 5x the stream throughput of httpx's own pool.
Requests go straight to the transport, with none of AsyncClient's cookie, redirect or auth
layers, and no cookie jar (a gateway must not keep one user's cookies for the next). aiohttp reads no proxy
variables, so :func:`environment_proxy` reads them as httpx's client would.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from aimw.types import Receive, Send

DEFAULT_MAX_CONNECTIONS = 512
KEEPALIVE_EXPIRY = 5.0  # seconds an idle pooled connection is kept (httpx's default)


@dataclass(frozen=True, slots=True)
class PoolConnections:
    """The upstream pool's open connections at one moment: ``idle`` (kept alive for the next
    request) and ``in_use`` (carrying a request now, or connecting for one)."""

    idle: int
    in_use: int


class UpstreamTransport:
    """The transport's lifecycle: :meth:`get` opens it once, :meth:`close` ends it,
    :meth:`lifespan` runs both from ASGI lifespan messages.

    Args:
        base_url: scheme://host[:port] it reaches (chooses the proxy).
        max_connections: size of the keep-alive pool.
        transport: a transport to use instead (``httpx.AsyncHTTPTransport()``, the demo's
            in-process emulator); closed at shutdown all the same.
    """

    __slots__ = ("base_url", "current", "given", "max_connections")

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self.max_connections = max_connections
        self.given = transport
        self.current: httpx.AsyncBaseTransport | None = None

    def get(self) -> httpx.AsyncBaseTransport:
        """The open transport (opened now if it was not)."""
        if self.current is None:
            self.current = self.given or AiohttpTransport(proxy=environment_proxy(self.base_url), client=self._session)
        return self.current

    def _session(self) -> aiohttp.ClientSession:
        """aiohttp's session with NO cookie jar: aiohttp's default jar would keep a provider's
        ``set-cookie`` and send it on every other client's requests (issue 8)."""
        connector = aiohttp.TCPConnector(
            limit=self.max_connections, keepalive_timeout=KEEPALIVE_EXPIRY, ssl=httpx.create_ssl_context()
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    def connections(self) -> PoolConnections | None:
        """The pool's open connections now, read-only (for leak checks: bench/soak). aiohttp's
        connector has no public count, so its own bookkeeping is read: the idle connections it
        keeps per host and the ones it handed out. 0 and 0 before the pool opened; None for a
        transport given to the constructor (aimw cannot see into its pool)."""
        transport = self.current
        if transport is None:
            return None if self.given is not None else PoolConnections(0, 0)
        if not isinstance(transport, AiohttpTransport):
            return None
        session = transport.client
        connector = session.connector if isinstance(session, aiohttp.ClientSession) else None
        if connector is None:  # the session is made on the first request
            return PoolConnections(0, 0)
        idle = sum(len(kept) for kept in connector._conns.values())
        return PoolConnections(idle=idle, in_use=len(connector._acquired))

    async def close(self) -> None:
        if self.current is not None:
            await self.current.aclose()
            self.current = None

    async def lifespan(self, receive: Receive, send: Send) -> None:
        """Answer ASGI lifespan startup / shutdown, opening and closing the transport."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.get()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def environment_proxy(url: str) -> httpx.Proxy | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY`` / ``HTTP_PROXY`` /
    ``ALL_PROXY``, minus ``NO_PROXY`` hosts), as httpx's own client would use; None if none,
    and always None for this machine's loopback (a proxy elsewhere cannot reach it)."""
    parts = urlsplit(url)
    host = parts.hostname
    if host is None or is_loopback(host) or urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    return httpx.Proxy(proxy) if proxy else None


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP literal (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
