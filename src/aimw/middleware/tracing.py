"""TracingMiddleware: one OpenTelemetry span per Messages exchange, a child span per upstream
attempt, and the GenAI metrics (OpenTelemetry GenAI semantic conventions: aimw.telemetry).

It sits right under ObserveMiddleware (aimw.telemetry.traced puts it there when
OpenTelemetry is configured; otherwise it is not in the stack at all) and reads the
request's Exchange once the layers below have returned, as Observe's sinks do.

- The exchange's span (kind SERVER: aimw serving its client) starts when a ``POST
  .../v1/messages`` arrives, continuing the client's trace from its ``traceparent`` /
  ``tracestate`` (W3C Trace Context; the propagators of ``OTEL_PROPAGATORS``), and is named
  ``chat {gen_ai.request.model}`` once the model is known. Other requests (pre-flights,
  count_tokens) are not traced.
- Each upstream attempt gets a child span (kind CLIENT: aimw calling the provider), started
  by the upstream app's per-attempt hook (aimw.upstream.app.ATTEMPT_HEADERS) just before its
  request goes out, so that request carries a ``traceparent`` naming that span (the
  provider's own traces join the client's). It ends at the attempt's last byte (or when the
  next attempt began, or with the exchange, for one that never answered).
- Attributes: gen_ai.operation.name ``chat``, gen_ai.provider.name, gen_ai.request.model
  (the model sent upstream), gen_ai.request.stream, gen_ai.response.model, gen_ai.response.id and
  finish_reasons (the Anthropic stop_reason the client got), gen_ai.usage.* (input tokens
  include cache reads and writes, as the conventions say for Anthropic), server.address /
  server.port (the answering target), http.response.status_code, and error.type with an
  error status on failures (aimw.telemetry.conventions lists the values).
- Prompts and completions are never recorded unless ``log_payloads`` (AIMW_LOG_PAYLOADS=1):
  then the client's request body and the answer it got, each cut at 1 MiB as in the file log
  (a receive wrapper is added for it, only then), go on the
  exchange's span as the events ``gen_ai.content.prompt`` (attribute ``gen_ai.prompt``) and
  ``gen_ai.content.completion`` (``gen_ai.completion``).

Per event it costs one call that keeps a reference to the last two body messages (the
stop_reason is read from them at the end). Per exchange the SDK's work dominates: two spans
(one more per extra attempt), six histogram records, and the spans' OTLP encoding on the
BatchSpanProcessor's thread: about 0.3 ms of CPU in all (README, "OpenTelemetry"). A span
sampled out (OTEL_TRACES_SAMPLER) gets no attributes; the metrics are recorded regardless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from opentelemetry.metrics import MeterProvider
from opentelemetry.propagate import get_global_textmap
from opentelemetry.trace import Span, SpanKind, StatusCode, TracerProvider, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from aimw.exchange import Attempt, Exchange, exchange_of
from aimw.telemetry import conventions as semconv
from aimw.telemetry.answer import answer_facts
from aimw.telemetry.instruments import MAX_MODEL_CHARS, GenAIMetrics
from aimw.types import ASGIApp, Headers, Message, Receive, Scope, Send
from aimw.upstream.app import ATTEMPT_HEADERS

logger = logging.getLogger("aimw.tracing")

MESSAGES_PATH = "/v1/messages"
MAX_PAYLOAD = 1024 * 1024  # bytes of each body kept on the span (as ObserveMiddleware's log)
Attributes = dict[str, AttributeValue]
_UPSTREAM = TraceContextTextMapPropagator()  # what the provider gets: W3C traceparent / tracestate only


class TracingMiddleware:
    """Trace every Messages exchange through ``app`` (see the module docstring).

    Args:
        app: the gateway below ObserveMiddleware.
        tracer_provider / meter_provider: where spans and metrics go (aimw.telemetry.setup
            builds them from the OTEL_* variables).
        log_payloads: put the request and response bodies on the span (AIMW_LOG_PAYLOADS).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        log_payloads: bool = False,
    ) -> None:
        self.app = app
        self.tracer = tracer_provider.get_tracer("aimw")
        self.metrics = GenAIMetrics(meter_provider.get_meter("aimw"))
        self.extractor = get_global_textmap()
        self.fields = frozenset(field.encode("latin-1") for field in self.extractor.fields)
        self.log_payloads = log_payloads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(MESSAGES_PATH):
            await self.app(scope, receive, send)
            return
        trace = _Trace(self, exchange_of(scope), self._carrier(scope["headers"]))
        scope[ATTEMPT_HEADERS] = trace.attempt_headers
        try:
            if self.log_payloads:
                trace.payloads = _Payloads()
                receive = trace.payloads.receiving(receive)
            await self.app(scope, receive, trace.sending(send))
        finally:
            try:
                trace.end(time.monotonic_ns())
            except Exception:  # telemetry never fails a request
                logger.exception("recording the exchange's trace failed")

    def _carrier(self, headers: Headers) -> dict[str, str]:
        """The request's propagation headers (repeated ones joined with ``,``)."""
        carrier: dict[str, str] = {}
        for name, value in headers:
            if name in self.fields:
                key = name.decode("latin-1")
                text = value.decode("latin-1")
                carrier[key] = f"{carrier[key]},{text}" if key in carrier else text
        return carrier


class _Trace:
    """One exchange's spans and what was seen of its answer (per request, never shared)."""

    __slots__ = (
        "attempts",
        "context",
        "epoch_offset_ns",
        "exchange",
        "head",
        "last",
        "payloads",
        "previous",
        "span",
        "status",
        "streamed",
        "tracing",
    )

    def __init__(self, tracing: TracingMiddleware, exchange: Exchange, carrier: dict[str, str]) -> None:
        self.tracing = tracing
        self.exchange = exchange
        exchange.received_ns = exchange.received_ns or time.monotonic_ns()  # Observe's, when above
        self.epoch_offset_ns = time.time_ns() - time.monotonic_ns()  # monotonic ns -> epoch ns
        self.span = tracing.tracer.start_span(
            semconv.OPERATION,
            context=tracing.extractor.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={semconv.OPERATION_NAME: semconv.OPERATION},
        )
        self.context = set_span_in_context(self.span)
        self.attempts: list[tuple[Attempt, Span, int]] = []  # attempt, its span, when it began (monotonic ns)
        self.status: int | None = None
        self.streamed = False
        self.head: bytes | None = None
        self.previous = self.last = b""
        self.payloads: _Payloads | None = None  # with log_payloads

    def attempt_headers(self, attempt: Attempt) -> Iterable[tuple[str, str]]:
        """The upstream app's per-attempt hook: start the attempt's span; its traceparent."""
        span = self.tracing.tracer.start_span(
            _span_name(attempt.model),
            context=self.context,
            kind=SpanKind.CLIENT,
            attributes=_attempt_attributes(attempt),
        )
        self.attempts.append((attempt, span, time.monotonic_ns()))
        carrier: dict[str, str] = {}
        _UPSTREAM.inject(carrier, context=set_span_in_context(span))
        return carrier.items()

    def sending(self, send: Send) -> Send:
        """``send``, noting the status and the first and last two body messages (and with
        ``payloads`` the answer's first MAX_PAYLOAD bytes)."""

        async def traced(message: Message) -> None:
            if message["type"] == "http.response.body":
                body = message.get("body")
                if body:
                    if self.head is None:
                        self.head = body
                    self.previous, self.last = self.last, body
                    if self.payloads is not None:
                        self.payloads.answered(body)
            elif message["type"] == "http.response.start":
                self.status = message["status"]
                self.streamed = any(
                    name == b"content-type" and value.startswith(b"text/event-stream")
                    for name, value in message.get("headers", ())
                )
            await send(message)

        return traced

    def end(self, end_ns: int) -> None:
        """End the attempts' spans and the exchange's, and record the metrics."""
        exchange = self.exchange
        error_type = semconv.exchange_error_type(exchange, self.status or 500)  # none sent: Observe's 500
        _end_attempt_spans(self.attempts, self.epoch_offset_ns, end_ns)
        answering = exchange.attempts[-1] if exchange.attempts else None
        provider = semconv.provider_name(exchange.provider_name, answering.host if answering else None)
        span = self.span
        if span.is_recording():  # not sampled out (OTEL_TRACES_SAMPLER)
            span.update_name(_span_name(exchange.request_model))
            span.set_attributes(self._attributes(provider, answering, error_type))
            if error_type is not None:
                span.set_status(StatusCode.ERROR, exchange.error or error_type)
            if self.payloads is not None:
                self.payloads.add_events(span)
        span.end(self.epoch_offset_ns + end_ns)
        self.tracing.metrics.record(exchange, provider, error_type, end_ns)

    def _attributes(self, provider: str, answering: Attempt | None, error_type: str | None) -> Attributes:
        """The exchange span's attributes once it has ended."""
        attributes = _exchange_attributes(self.exchange, provider, answering)
        if self.status is not None:
            attributes[semconv.HTTP_STATUS] = self.status
        if error_type is not None:
            attributes[semconv.ERROR_TYPE] = error_type
            return attributes
        whole = self.head is self.last and not self.previous
        message_id, stop_reason = answer_facts(
            self.head, self.previous + self.last, streamed=self.streamed, whole=whole
        )
        if message_id is not None:
            attributes[semconv.RESPONSE_ID] = message_id
        if stop_reason is not None:
            attributes[semconv.RESPONSE_FINISH_REASONS] = (stop_reason,)
        return attributes


def _attempt_attributes(attempt: Attempt) -> Attributes:
    """An attempt span's attributes when it starts (the conventions' sampling-relevant ones)."""
    attributes: Attributes = {
        semconv.OPERATION_NAME: semconv.OPERATION,
        semconv.PROVIDER_NAME: semconv.provider_name(attempt.provider, attempt.host),
        semconv.SERVER_ADDRESS: attempt.host,
        semconv.SERVER_PORT: attempt.port,
    }
    if attempt.model:
        attributes[semconv.REQUEST_MODEL] = attempt.model
    return attributes


def _end_attempt_spans(traced: list[tuple[Attempt, Span, int]], offset_ns: int, end_ns: int) -> None:
    """End each attempt's span at its last byte, else when the next began, else at ``end_ns``
    (monotonic ns; ``offset_ns`` turns them into the epoch ns spans take)."""
    for index, (attempt, span, _) in enumerate(traced):
        following = traced[index + 1][2] if index + 1 < len(traced) else end_ns
        if span.is_recording():
            error_type = semconv.attempt_error_type(attempt)
            if attempt.status is not None:
                span.set_attribute(semconv.HTTP_STATUS, attempt.status)
            if error_type is not None:
                span.set_attribute(semconv.ERROR_TYPE, error_type)
                span.set_status(StatusCode.ERROR, attempt.failure or error_type)
        span.end(offset_ns + (attempt.last_byte_ns or following))


class _Payloads:
    """The request and answer bodies of one exchange, each cut at MAX_PAYLOAD bytes (as
    ObserveMiddleware keeps them for the log): the client's body as it sent it, the answer as
    the client got it."""

    __slots__ = ("answer", "answer_size", "request")

    def __init__(self) -> None:
        self.request = bytearray()
        self.answer: list[bytes] = []
        self.answer_size = 0

    def receiving(self, receive: Receive) -> Receive:
        async def kept() -> Message:
            message = await receive()
            body = message.get("body")
            if body and len(self.request) < MAX_PAYLOAD:
                self.request += body[: MAX_PAYLOAD - len(self.request)]
            return message

        return kept

    def answered(self, body: bytes) -> None:
        if self.answer_size < MAX_PAYLOAD:
            self.answer.append(body[: MAX_PAYLOAD - self.answer_size])
            self.answer_size += len(self.answer[-1])

    def add_events(self, span: Span) -> None:
        """The bodies as the span's events gen_ai.content.prompt / gen_ai.content.completion."""
        if self.request:
            span.add_event(semconv.PROMPT_EVENT, {semconv.PROMPT: _text(bytes(self.request))})
        if self.answer:
            span.add_event(semconv.COMPLETION_EVENT, {semconv.COMPLETION: _text(b"".join(self.answer))})


def _exchange_attributes(exchange: Exchange, provider: str, answering: Attempt | None) -> Attributes:
    attributes: Attributes = {
        semconv.PROVIDER_NAME: provider,
        semconv.REQUEST_STREAM: exchange.request_mode == "stream",
    }
    if exchange.request_model:
        attributes[semconv.REQUEST_MODEL] = exchange.request_model
    if exchange.response_model:
        attributes[semconv.RESPONSE_MODEL] = exchange.response_model
    if answering is not None:
        attributes[semconv.SERVER_ADDRESS] = answering.host
        attributes[semconv.SERVER_PORT] = answering.port
    usage = exchange.usage
    input_tokens = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    if input_tokens or usage.output_tokens:
        attributes[semconv.USAGE_INPUT_TOKENS] = input_tokens
        attributes[semconv.USAGE_OUTPUT_TOKENS] = usage.output_tokens
    if usage.cache_read_input_tokens:
        attributes[semconv.USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_input_tokens
    if usage.cache_creation_input_tokens:
        attributes[semconv.USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_creation_input_tokens
    return attributes


def _span_name(model: str | None) -> str:
    """``chat {model}`` (the conventions' ``{gen_ai.operation.name} {gen_ai.request.model}``)."""
    return f"{semconv.OPERATION} {model[:MAX_MODEL_CHARS]}" if model else semconv.OPERATION


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")
