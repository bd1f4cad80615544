"""ObserveMiddleware: the outermost layer. It owns the request's Exchange, stamps its
timings and sizes, computes the derived figures once, and hands the finished exchange to
its sinks (the Kong file log now; metrics and traces are siblings). It never changes a byte
and never decodes a response: the layer that wrote the Anthropic answer recorded its usage.

Every ``receive`` of the layers below passes through it, so it sees the client's
``http.disconnect`` whoever asked for it (the body's reader, the upstream app's departure
watch). A client that leaves before the response's last byte is logged with status 499,
nginx's "client closed request", whether or not a status had gone out (nginx keeps an
already sent status once bytes went out; aimw logs 499 for every departure so that one
status finds them all, and keeps the status that went out in the reason), and the reason
says when it left: ``client closed request during upload (after 100 bytes of its body)``,
``... while waiting for the provider``, ``... mid-stream (after HTTP 200 and 2048 bytes)``,
``... during the answer (after HTTP 200 and 512 bytes)`` (Exchange.client_closed names the
phase).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from aimw.asgi import send_error
from aimw.errors import GatewayError, where_it_failed
from aimw.exchange import Exchange, Figures, ObservedExchange, exchange_of
from aimw.types import ASGIApp, Headers, Message, Receive, Scope, Send, Sink

logger = logging.getLogger("aimw.observe")

MAX_LOGGED_PAYLOAD = 1024 * 1024  # bytes of each payload kept
CLIENT_CLOSED_REQUEST = 499  # nginx's status for "client closed request" (never sent, only logged)


class ObserveMiddleware:
    """Observe every HTTP exchange and emit it to ``sinks``.

    Args:
        app: the gateway below.
        sinks: where finished exchanges go (aimw.sinks), each called once per exchange.
        log_payloads: keep the request and response bodies (each cut at 1 MiB) for the sinks.
        input_cost / output_cost: price per million prompt / completion tokens, for ``cost``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        sinks: Sequence[Sink],
        log_payloads: bool = False,
        input_cost: float = 0.0,
        output_cost: float = 0.0,
    ) -> None:
        self.app = app
        self.sinks = tuple(sinks)
        self.log_payloads = log_payloads
        self.input_cost = input_cost
        self.output_cost = output_cost

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        observation = _Observation(exchange_of(scope), self.log_payloads)
        observed_send = observation.observing_send(send)
        try:
            await self.app(scope, observation.counting_receive(receive), observed_send)
        except Exception as exc:
            # the catch-all: one log line, and an Anthropic 500 if nothing was answered yet
            observation.exchange.fail(f"{type(exc).__name__} in the gateway")
            logger.error("unexpected failure in the gateway: %s", where_it_failed(exc))
            if observation.started:
                raise
            await send_error(observed_send, GatewayError(500, "internal gateway error", "api_error"))
        except BaseException as exc:
            observation.exchange.fail(f"{type(exc).__name__} in the gateway")
            raise
        finally:
            observed = observation.finished(scope, self.figures(observation.exchange))
            for sink in self.sinks:
                sink.emit(observed)

    def figures(self, exchange: Exchange) -> Figures:
        """The derived figures of ``exchange`` (ms, tokens, cost) as of now."""
        end_ns = exchange.last_byte_ns or time.monotonic_ns()
        request_ms = _ms(end_ns - exchange.received_ns)
        attempt = exchange.attempts[-1] if exchange.attempts else None
        proxy_ms = ttft_ms = 0
        if attempt is not None and attempt.sent_ns:
            if attempt.last_byte_ns:
                proxy_ms = _ms(attempt.last_byte_ns - attempt.sent_ns)
            if exchange.first_token_ns:
                ttft_ms = _ms(exchange.first_token_ns - attempt.sent_ns)
        usage = exchange.usage
        prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        completion = usage.output_tokens
        return Figures(
            request_ms=request_ms,
            proxy_ms=proxy_ms,
            gateway_ms=max(request_ms - proxy_ms, 0),
            time_to_first_token_ms=ttft_ms,
            time_per_token_ms=round(proxy_ms / completion, 3) if completion else 0,
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            cost=round((prompt * self.input_cost + completion * self.output_cost) / 1e6, 8),
        )


class _Observation:
    """What is seen of one exchange on the wire (per request, never shared)."""

    __slots__ = (
        "body_complete",
        "departure",
        "exchange",
        "payload_request",
        "payload_response",
        "payload_size",
        "request_size",
        "response_headers",
        "response_size",
        "started",
        "started_at_ms",
        "status",
        "streamed",
    )

    def __init__(self, exchange: Exchange, log_payloads: bool) -> None:
        self.exchange = exchange
        exchange.received_ns = exchange.received_ns or time.monotonic_ns()
        self.started_at_ms = int(time.time() * 1000)
        self.request_size = 0
        self.status = 500
        self.response_headers: Headers = []
        self.response_size = 0
        self.streamed = False
        self.started = False  # http.response.start went to the client
        self.body_complete = False  # the request body's last message was received
        self.departure: str | None = None  # why the exchange ended early: the client left
        self.payload_request: bytearray | None = bytearray() if log_payloads else None
        self.payload_response: list[bytes] = []
        self.payload_size = 0

    def counting_receive(self, receive: Receive) -> Receive:
        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.client_left()
                return message
            body = message.get("body")
            if body:
                self.request_size += len(body)
                kept = self.payload_request
                if kept is not None and len(kept) < MAX_LOGGED_PAYLOAD:
                    kept += body[: MAX_LOGGED_PAYLOAD - len(kept)]
            if not message.get("more_body", False):
                self.body_complete = True
            return message

        return counted

    def client_left(self) -> None:
        """The client closed its connection: a departure when the response was not complete
        (recorded once, as it stood then)."""
        exchange = self.exchange
        if exchange.last_byte_ns or exchange.client_closed is not None:
            return
        if not self.body_complete:
            exchange.client_closed = "upload"
            self.departure = f"client closed request during upload (after {self.request_size} bytes of its body)"
        elif not self.started:
            exchange.client_closed = "waiting"
            self.departure = "client closed request while waiting for the provider"
        else:
            exchange.client_closed = "stream" if self.streamed else "answer"
            when = "mid-stream" if self.streamed else "during the answer"
            self.departure = f"client closed request {when} (after HTTP {self.status} and {self.response_size} bytes)"

    def observing_send(self, send: Send) -> Send:
        exchange = self.exchange

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.started = True
                self.status = message["status"]
                self.response_headers = list(message.get("headers", ()))
                self.streamed = any(
                    name == b"content-type" and value.startswith(b"text/event-stream")
                    for name, value in self.response_headers
                )
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body:
                    if not exchange.first_byte_ns:
                        exchange.first_byte_ns = time.monotonic_ns()
                    self.response_size += len(body)
                    if self.payload_request is not None and self.payload_size < MAX_LOGGED_PAYLOAD:
                        piece = body[: MAX_LOGGED_PAYLOAD - self.payload_size]
                        self.payload_response.append(piece)
                        self.payload_size += len(piece)
                if not message.get("more_body", False):
                    exchange.last_byte_ns = time.monotonic_ns()
            await send(message)

        return observed

    def finished(self, scope: Scope, figures: Figures) -> ObservedExchange:
        """The exchange as the sinks get it; a departure is its outcome (status 499 and why)."""
        payloads = self.payload_request is not None
        if self.departure is not None:
            self.exchange.error = self.departure  # what the layers below saw was its effect
        return ObservedExchange(
            scope=scope,
            exchange=self.exchange,
            status=CLIENT_CLOSED_REQUEST if self.departure is not None else self.status,
            response_headers=self.response_headers,
            request_size=self.request_size,
            response_size=self.response_size,
            started_at_ms=self.started_at_ms,
            streamed=self.streamed,
            figures=figures,
            payload_request=bytes(self.payload_request) if self.payload_request is not None else None,
            payload_response=b"".join(self.payload_response) if payloads else None,
        )


def _ms(ns: int) -> int:
    return max(ns, 0) // 1_000_000
