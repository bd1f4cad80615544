"""FileLogMiddleware: one JSON line per exchange, in the shape of Kong's file-log plugin
with Kong's AI Proxy fields.

It never changes a byte. It reads the client-facing Anthropic response (JSON, or the
SSE events message_start / content_block_delta / message_delta / error) for the model,
token usage and time to first token, unless the middleware that wrote the stream already
recorded them (``Exchange.stream_observed``).

A line (sources: Kong docs, "File Log" plugin log format, and "AI Gateway" analytics
``ai.proxy`` fields; latencies in ms, sizes in bytes, started_at in ms since the epoch)::

    {"request": {"method", "uri", "url", "querystring", "headers", "size"},
     "response": {"status", "headers", "size"},
     "upstream_uri", "latencies": {"request", "proxy", "gateway"},
     "client_ip", "started_at",
     "ai": {"proxy": {"meta": {"plugin_id", "provider_name", "request_model",
                               "response_model", "llm_latency", "request_mode", ...},
                      "usage": {"prompt_tokens", "completion_tokens", "total_tokens",
                                "time_to_first_token", "time_per_token", "cost",
                                "prompt_tokens_details": {"cached_tokens"},
                                "completion_tokens_details": {"reasoning_tokens"}},
                      "tried_targets": [...], "payload": {"request", "response"}}}}

``prompt_tokens`` counts every input token (input + cache read + cache creation), as
OpenAI and Kong do. Credentials in headers and in the query (``key``, ``api_key``,
``access_token`` …) are replaced by ``REDACTED``. Each line is
written with one ``write(2)`` on an ``O_APPEND`` descriptor, so several worker processes
can share the file without tearing or interleaving lines.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from urllib.parse import parse_qs, urlencode

import msgspec
import orjson

from aimw.asgi import header_value
from aimw.exchange import Exchange, exchange_of
from aimw.sse import SSEDecoder
from aimw.types import Message, Receive, Scope, Send

logger = logging.getLogger("aimw.file_log")

REDACTED_HEADERS = frozenset(
    (
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
    )
)
REDACTED_QUERY_PARAMETERS = frozenset(("key", "api_key", "api-key", "access_token", "token", "sig"))
MAX_LOGGED_PAYLOAD = 1024 * 1024  # bytes of each payload kept in the log
MAX_PARSED_RESPONSE = 16 * 1024 * 1024  # bytes of a JSON answer read for usage


class _UsageView(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _MessageView(msgspec.Struct):
    model: str | None = None
    usage: _UsageView | None = None


class _ErrorView(msgspec.Struct):
    type: str | None = None
    message: str | None = None


class _EventView(msgspec.Struct):
    """An Anthropic stream event or a whole Message / error body (the fields read here)."""

    type: str | None = None
    message: _MessageView | None = None
    model: str | None = None
    usage: _UsageView | None = None
    error: _ErrorView | None = None


_event_decoder = msgspec.json.Decoder(_EventView)


class FileLogMiddleware:
    """Append one Kong-shaped JSON line per HTTP exchange to ``path``.

    Args:
        app: the gateway below.
        path: the log file (created if missing; parent directories too).
        log_payloads: include request and response bodies (each cut at 1 MiB) as
            ``ai.proxy.payload``.
        plugin_id: Kong's ``ai.proxy.meta.plugin_id``; default a UUID derived from ``path``.
        input_cost / output_cost: price per million input / output tokens, for ``usage.cost``.
    """

    def __init__(
        self,
        app,
        *,
        path: str,
        log_payloads: bool = False,
        plugin_id: str | None = None,
        input_cost: float = 0.0,
        output_cost: float = 0.0,
    ) -> None:
        self.app = app
        self.path = path
        self.log_payloads = log_payloads
        self.plugin_id = plugin_id or str(uuid.uuid5(uuid.NAMESPACE_URL, "aimw:file-log:" + os.path.abspath(path)))
        self.input_cost = input_cost
        self.output_cost = output_cost
        self._fd: int | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = _ExchangeRecord(exchange_of(scope), self.log_payloads)
        try:
            await self.app(scope, record.wrap_receive(receive), record.wrap_send(send))
        except BaseException as exc:
            record.exchange.error = record.exchange.error or f"{type(exc).__name__} in the gateway"
            raise
        finally:
            self.write(self.line(scope, record))

    def line(self, scope: Scope, record: _ExchangeRecord) -> bytes:
        """The log line (JSON bytes ending in a newline) for one finished exchange."""
        exchange = record.exchange
        now_ns = exchange.responded_ns or time.monotonic_ns()
        request_ms = _ms(now_ns - exchange.received_ns)
        proxy_ms = _ms(exchange.upstream_last_byte_ns - exchange.upstream_sent_ns) if exchange.upstream_sent_ns and exchange.upstream_last_byte_ns else 0
        querystring = _querystring(scope.get("query_string", b"").decode("latin-1"))
        query = urlencode(querystring, doseq=True)
        path = scope.get("root_path", "") + scope["path"]
        host = header_value(scope["headers"], b"host") or b"localhost"
        uri = path + ("?" + query if query else "")
        line = {
            "request": {
                "method": scope["method"],
                "uri": uri,
                "url": f"{scope.get('scheme', 'http')}://{host.decode('latin-1')}{uri}",
                "querystring": {k: v[0] if len(v) == 1 else v for k, v in querystring.items()},
                "headers": _headers(scope["headers"]),
                "size": record.request_size,
            },
            "response": {
                "status": record.status,
                "headers": _headers(record.response_headers),
                "size": record.response_size,
            },
            "upstream_uri": exchange.upstream_uri,
            "latencies": {"request": request_ms, "proxy": proxy_ms, "gateway": max(request_ms - proxy_ms, 0)},
            "client_ip": (scope.get("client") or ("",))[0],
            "started_at": record.started_at_ms,
        }
        if exchange.provider_name or exchange.request_model:
            line["ai"] = {"proxy": self._ai_proxy(exchange, record, proxy_ms)}
        return orjson.dumps(line) + b"\n"

    def _ai_proxy(self, exchange: Exchange, record: _ExchangeRecord, llm_latency_ms: int) -> dict:
        usage = exchange.usage
        prompt_tokens = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        completion_tokens = usage.output_tokens
        ttft_ms = _ms(exchange.first_token_ns - exchange.upstream_sent_ns) if exchange.first_token_ns and exchange.upstream_sent_ns else 0
        proxy = {
            "meta": {
                "plugin_id": self.plugin_id,
                "provider_name": exchange.provider_name,
                "request_model": exchange.request_model,
                "response_model": exchange.response_model or exchange.request_model,
                "llm_latency": llm_latency_ms,
                "request_mode": exchange.request_mode or ("stream" if record.streamed else "oneshot"),
                **exchange.log_meta,
            },
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "time_to_first_token": ttft_ms,
                "time_per_token": round(llm_latency_ms / completion_tokens, 3) if completion_tokens else 0,
                "cost": round((prompt_tokens * self.input_cost + completion_tokens * self.output_cost) / 1e6, 8),
                "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
                "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            },
            "tried_targets": exchange.tried_targets,
        }
        if exchange.error:
            proxy["meta"]["error"] = exchange.error
        if record.payload_request is not None:
            proxy["payload"] = {
                "request": record.payload_request.decode("utf-8", "replace"),
                "response": b"".join(record.payload_response).decode("utf-8", "replace"),
            }
        return proxy

    def write(self, line: bytes) -> None:
        """Append ``line`` with a single ``write(2)``; a failing disk is logged, never raised.

        The file is reopened when it is no longer the one at ``path`` (logrotate renamed or
        removed it), so every worker moves on to the new file."""
        try:
            if self._fd is not None and not self._still_at_path():
                os.close(self._fd)
                self._fd = None
            if self._fd is None:
                directory = os.path.dirname(os.path.abspath(self.path))
                os.makedirs(directory, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            os.write(self._fd, line)
        except OSError as exc:
            logger.error("cannot write the aimw log %s: %s", self.path, exc)

    def _still_at_path(self) -> bool:
        try:
            at_path = os.stat(self.path)
        except FileNotFoundError:
            return False
        opened = os.fstat(self._fd)
        return (at_path.st_ino, at_path.st_dev) == (opened.st_ino, opened.st_dev)


class _ExchangeRecord:
    """What FileLogMiddleware observes of one exchange (per request, never shared)."""

    __slots__ = (
        "exchange",
        "started_at_ms",
        "request_size",
        "status",
        "response_headers",
        "response_size",
        "sse",
        "streamed",
        "json_chunks",
        "json_size",
        "payload_request",
        "payload_response",
        "payload_size",
    )

    def __init__(self, exchange: Exchange, log_payloads: bool) -> None:
        self.exchange = exchange
        exchange.received_ns = exchange.received_ns or time.monotonic_ns()
        self.started_at_ms = int(time.time() * 1000)
        self.request_size = 0
        self.status = 500
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.response_size = 0
        self.sse: SSEDecoder | None = None
        self.streamed = False
        self.json_chunks: list[bytes] | None = None
        self.json_size = 0
        self.payload_request: bytes | None = b"" if log_payloads else None
        self.payload_response: list[bytes] = []
        self.payload_size = 0

    def wrap_receive(self, receive: Receive) -> Receive:
        async def counting_receive() -> Message:
            message = await receive()
            body = message.get("body")
            if body:
                self.request_size += len(body)
                if self.payload_request is not None and len(self.payload_request) < MAX_LOGGED_PAYLOAD:
                    self.payload_request += body[: MAX_LOGGED_PAYLOAD - len(self.payload_request)]
            return message

        return counting_receive

    def wrap_send(self, send: Send) -> Send:
        async def observing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                self.response_headers = list(message.get("headers", ()))
                content_type = header_value(self.response_headers, b"content-type") or b""
                if content_type.startswith(b"text/event-stream"):
                    self.streamed = True
                    if not self.exchange.stream_observed:
                        self.sse = SSEDecoder()
                elif content_type.startswith(b"application/json"):
                    self.json_chunks = []
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body:
                    self.observe_body(body)
                if not message.get("more_body", False):
                    self.finish_body()
            await send(message)

        return observing_send

    def observe_body(self, body: bytes) -> None:
        self.response_size += len(body)
        if self.payload_request is not None and self.payload_size < MAX_LOGGED_PAYLOAD:
            piece = body[: MAX_LOGGED_PAYLOAD - self.payload_size]
            self.payload_response.append(piece)
            self.payload_size += len(piece)
        if self.sse is not None:
            for event in self.sse.feed(body):
                self.observe_event(event.event, event.data)
        elif self.json_chunks is not None and self.json_size < MAX_PARSED_RESPONSE:
            self.json_chunks.append(body)
            self.json_size += len(body)

    def finish_body(self) -> None:
        self.exchange.responded_ns = time.monotonic_ns()
        if self.sse is not None:
            for event in self.sse.flush():
                self.observe_event(event.event, event.data)
        elif self.json_chunks:
            self.observe_json(b"".join(self.json_chunks))

    def observe_event(self, name: str, data: bytes) -> None:
        exchange = self.exchange
        if name == "content_block_delta":
            if not exchange.first_token_ns:
                exchange.first_token_ns = time.monotonic_ns()
            return
        if name not in ("message_start", "message_delta", "error"):
            return
        try:
            event = _event_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if event.message is not None:
            exchange.response_model = event.message.model or exchange.response_model
            self.observe_usage(event.message.usage)
        self.observe_usage(event.usage)
        if event.error is not None:
            # the middleware that failed said why first (e.g. "upstream timed out"); keep that
            exchange.error = exchange.error or f"{event.error.type}: {event.error.message}"

    def observe_json(self, body: bytes) -> None:
        try:
            answer = _event_decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if answer.model:
            self.exchange.response_model = answer.model
        self.observe_usage(answer.usage)
        if answer.error is not None:
            self.exchange.error = self.exchange.error or f"{answer.error.type}: {answer.error.message}"
        if not self.exchange.first_token_ns:
            self.exchange.first_token_ns = self.exchange.responded_ns

    def observe_usage(self, view: _UsageView | None) -> None:
        """Anthropic usage is cumulative: a later value replaces an earlier one."""
        if view is None:
            return
        usage = self.exchange.usage
        if view.input_tokens is not None:
            usage.input_tokens = view.input_tokens
        if view.output_tokens is not None:
            usage.output_tokens = view.output_tokens
        if view.cache_read_input_tokens is not None:
            usage.cache_read_input_tokens = view.cache_read_input_tokens
        if view.cache_creation_input_tokens is not None:
            usage.cache_creation_input_tokens = view.cache_creation_input_tokens


def _querystring(query: str) -> dict[str, list[str]]:
    """The parsed query with credential parameters (Google's ``key`` …) replaced by REDACTED."""
    parsed = parse_qs(query, keep_blank_values=True)
    for name in parsed.keys() & REDACTED_QUERY_PARAMETERS:
        parsed[name] = ["REDACTED"] * len(parsed[name])
    return parsed


def _headers(headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = "REDACTED" if name in REDACTED_HEADERS else raw_value.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _ms(ns: int) -> int:
    return max(ns, 0) // 1_000_000
