"""KongFileLog: one JSON line per exchange, in the shape of Kong's file-log plugin with
Kong's AI Proxy fields, so tools that read Kong's logs read aimw's.

A line (sources: Kong docs, "File Log" plugin log format, and "AI Gateway" analytics
``ai.proxy`` fields; latencies in ms, sizes in bytes, started_at in ms since the epoch)::

    {"request": {"method", "uri", "url", "querystring", "headers", "size"},
     "response": {"status", "headers", "size"},
     "upstream_uri" (path and query sent upstream), "latencies": {"request", "proxy", "gateway"},
     "client_ip", "started_at",
     "ai": {"proxy": {"meta": {"plugin_id", "provider_name", "request_model",
                               "response_model", "llm_latency", "request_mode", ...},
                      "usage": {"prompt_tokens", "completion_tokens", "total_tokens",
                                "time_to_first_token", "time_per_token", "cost",
                                "prompt_tokens_details": {"cached_tokens"},
                                "completion_tokens_details": {"reasoning_tokens"},
                                "estimated"?},
                      "tried_targets": [{"provider", "model", "host", "port", "ip",
                                         "upstream_scheme", "upstream_uri", "route_type",
                                         "failure"?}],
                      "payload": {"request", "response"}}}}

``prompt_tokens`` counts every input token (input + cache read + cache creation), as
OpenAI and Kong do. Credentials in headers and in the query (``key``, ``api_key``,
``access_token`` …, names in any case) are replaced by ``REDACTED``. An authenticated
request (ClientAuthMiddleware) adds Kong's ``authenticated_entity: {"id"}`` (the key's
credential id) and ``consumer: {"id", "username"}``; the key itself is never written.

aimw's additions, present only when they say something (so other lines keep Kong's shape
exactly): ``ai.proxy.meta.error``, the exchange's failure (a departure's reason too);
``ai.proxy.usage.estimated: true`` when the token counts hold aimw's estimate where the
provider reported none (a stream that ended before its usage came); a tried target's
``failure``. The ``ai`` block is written once a provider or model is known, and for a
client that left (status 499) in any case, so its reason is logged: a client that left
during upload has no model, target or mode yet (null, tried_targets empty, usage 0).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

import orjson

from aimw.asgi import header_value
from aimw.errors import redact, redact_registered
from aimw.exchange import Attempt, ObservedExchange
from aimw.sinks.log_file import LogFile
from aimw.types import Scope

if TYPE_CHECKING:
    from aimw.config.consumers import AuthenticatedConsumer

logger = logging.getLogger("aimw.kong_file_log")

REDACTED_HEADERS = frozenset(
    ("authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "set-cookie")
)
REDACTED_QUERY_PARAMETERS = frozenset(
    ("key", "api_key", "api-key", "apikey", "x-api-key", "access_token", "token", "sig", "password")
)


class KongFileLog:
    """A :class:`~aimw.types.Sink` appending one Kong-shaped line per exchange to ``path``.

    Args:
        path: the log file (aimw.sinks.log_file.LogFile: O_APPEND, follows logrotate).
        plugin_id: Kong's ``ai.proxy.meta.plugin_id``; default a UUID derived from ``path``.
    """

    __slots__ = ("file", "plugin_id")

    def __init__(self, path: str, *, plugin_id: str | None = None) -> None:
        self.file = LogFile(path)
        self.plugin_id = plugin_id or str(uuid.uuid5(uuid.NAMESPACE_URL, "aimw:file-log:" + os.path.abspath(path)))

    @property
    def path(self) -> str:
        return self.file.path

    def emit(self, observed: ObservedExchange) -> None:
        """Write the exchange's line; one that cannot be encoded still leaves a minimal line
        saying so (an exchange is never missing from the log)."""
        try:
            line = self.line(observed)
        except (TypeError, ValueError) as exc:
            logger.error("aimw log line not encodable: %s", exc)
            line = self.minimal_line(observed, f"the log line could not be encoded: {exc}")
        self.file.write(line)

    def minimal_line(self, observed: ObservedExchange, error: str) -> bytes:
        """Method, path, status, start and ``error``: what is always encodable."""
        scope = observed.scope
        line = {
            "request": {"method": scope["method"], "uri": _client_path(scope)},
            "response": {"status": observed.status},
            "started_at": observed.started_at_ms,
            "ai": {"proxy": {"meta": {"plugin_id": self.plugin_id, "error": redact(error)}}},
        }
        return orjson.dumps(line) + b"\n"

    def line(self, observed: ObservedExchange) -> bytes:
        """The log line (JSON bytes ending in a newline) of one finished exchange."""
        scope, exchange, figures = observed.scope, observed.exchange, observed.figures
        querystring = _querystring(scope.get("query_string", b"").decode("latin-1"))
        query = urlencode(querystring, doseq=True) if querystring else ""
        uri = _client_path(scope) + ("?" + query if query else "")
        host = header_value(scope["headers"], b"host") or b"localhost"
        line: dict[str, Any] = {
            "request": {
                "method": scope["method"],
                "uri": uri,
                "url": f"{scope.get('scheme', 'http')}://{host.decode('latin-1')}{uri}",
                "querystring": {k: v[0] if len(v) == 1 else v for k, v in querystring.items()},
                "headers": _headers(scope["headers"]),
                "size": observed.request_size,
            },
            "response": {
                "status": observed.status,
                "headers": _headers(observed.response_headers),
                "size": observed.response_size,
            },
            "upstream_uri": _upstream_uri(exchange.attempts[-1]) if exchange.attempts else None,
            "latencies": {"request": figures.request_ms, "proxy": figures.proxy_ms, "gateway": figures.gateway_ms},
            **_consumer(exchange.consumer),
            "client_ip": (scope.get("client") or ("",))[0],
            "started_at": observed.started_at_ms,
        }
        if exchange.provider_name or exchange.request_model or exchange.client_closed:
            line["ai"] = {"proxy": self._ai_proxy(observed)}
        return orjson.dumps(line) + b"\n"

    def _ai_proxy(self, observed: ObservedExchange) -> dict[str, Any]:
        exchange, figures = observed.exchange, observed.figures
        usage = exchange.usage
        meta: dict[str, Any] = {
            "plugin_id": self.plugin_id,
            "provider_name": exchange.provider_name,
            "request_model": exchange.request_model,
            "response_model": exchange.response_model or exchange.request_model,
            "llm_latency": figures.proxy_ms,
            "request_mode": exchange.request_mode or _answer_mode(observed),
            **exchange.log_meta,
        }
        if exchange.error:
            meta["error"] = redact(exchange.error)
        proxy: dict[str, Any] = {
            "meta": meta,
            "usage": {
                "prompt_tokens": figures.prompt_tokens,
                "completion_tokens": figures.completion_tokens,
                "total_tokens": figures.total_tokens,
                "time_to_first_token": figures.time_to_first_token_ms,
                "time_per_token": figures.time_per_token_ms,
                "cost": figures.cost,
                "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
                "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            },
            "tried_targets": [_tried_target(attempt) for attempt in exchange.attempts],
        }
        if exchange.usage_estimated:
            proxy["usage"]["estimated"] = True
        if observed.payload_request is not None:
            proxy["payload"] = {
                "request": redact(observed.payload_request.decode("utf-8", "replace")),
                "response": redact((observed.payload_response or b"").decode("utf-8", "replace")),
            }
        return proxy


def _answer_mode(observed: ObservedExchange) -> str | None:
    """Kong's request_mode as the answer shows it, when no layer recorded the request's:
    ``stream`` for an event stream, else ``oneshot``; None when the client left during its
    upload (the mode was never known)."""
    if observed.streamed:
        return "stream"
    return None if observed.exchange.client_closed == "upload" else "oneshot"


def _consumer(consumer: AuthenticatedConsumer | None) -> dict[str, Any]:
    """Kong's ``authenticated_entity`` (the credential's id) and ``consumer`` (``id``,
    ``username``, ``custom_id`` when set) of an authenticated request; nothing otherwise."""
    if consumer is None:
        return {}
    entity = {"id": consumer.id, "username": consumer.username}
    if consumer.custom_id is not None:
        entity["custom_id"] = consumer.custom_id
    return {"authenticated_entity": {"id": consumer.credential_id}, "consumer": entity}


def _tried_target(attempt: Attempt) -> dict[str, Any]:
    """Kong's tried_targets entry, plus ``failure`` on a failed attempt (redacted: it may
    quote a provider's error message, which may echo a credential)."""
    target: dict[str, Any] = {
        "provider": attempt.provider,
        "model": attempt.model,
        "host": attempt.host,
        "port": attempt.port,
        "ip": attempt.ip,
        "upstream_scheme": attempt.upstream_scheme,
        "upstream_uri": attempt.upstream_uri,
        "route_type": attempt.route_type,
    }
    if attempt.failure is not None:
        target["failure"] = redact(attempt.failure)
    return target


def _client_path(scope: Scope) -> str:
    """The path the client asked for. ASGI's ``path`` includes ``root_path`` (Starlette's
    Mount, Hypercorn's --root-path) in current servers; older ones left it out."""
    root_path: str = scope.get("root_path", "")
    path: str = scope["path"]
    return path if path.startswith(root_path) else root_path + path


def _upstream_uri(attempt: Attempt) -> str:
    """Kong's top-level upstream_uri: the last attempt's path and (redacted) query."""
    if not attempt.upstream_query:
        return attempt.upstream_uri
    query = urlencode(_querystring(attempt.upstream_query), doseq=True)
    return attempt.upstream_uri + ("?" + query if query else "")


def _querystring(query: str) -> dict[str, list[str]]:
    """The parsed query with credential parameters (Google's ``key`` …, in any case:
    ``API_KEY``, ``Password``) replaced by REDACTED."""
    if not query:
        return {}
    parsed = parse_qs(query, keep_blank_values=True)
    for name, values in parsed.items():
        if name.lower() in REDACTED_QUERY_PARAMETERS:
            parsed[name] = ["REDACTED"] * len(values)
    return parsed


def _headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = "REDACTED" if name in REDACTED_HEADERS else redact_registered(raw_value).decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out
