"""The GenAI metrics of one exchange (OpenTelemetry GenAI semantic conventions,
gen-ai-metrics.md), recorded once it has ended.

- ``gen_ai.client.token.usage`` ({token}, ``gen_ai.token.type`` input / output): the
  answer's usage; input counts cache reads and writes too (the Anthropic conventions'
  ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``).
- ``gen_ai.client.operation.duration`` (s): aimw as the provider's client: the first
  attempt's request sent -> the answering attempt's last byte (every retry included).
- ``gen_ai.server.request.duration`` (s): aimw as its client's server: request received ->
  last byte to the client.
- ``gen_ai.server.time_to_first_token`` (s): request received -> first content to the
  client, successful answers only.
- ``gen_ai.server.time_per_output_token`` (s): first content -> last byte, divided by the
  output tokens after the first; successful answers with more than one output token.

Attributes: gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model,
gen_ai.response.model, server.address, server.port (the answering target's), and error.type
on failures. The request model is the one sent upstream: with AIMW_MODEL or a configured
target model it is the operator's; a pass-through gateway without either sends the client's,
so a client could vary it: each model name is cut at 128 characters and the SDK's cardinality
limit (2000 attribute sets per metric, then ``otel.metric.overflow``) bounds the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aimw.telemetry import conventions as semconv

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.util.types import AttributeValue

    from aimw.exchange import Exchange

NS_PER_S = 1e9
MAX_MODEL_CHARS = 128  # characters of a model name kept in a metric attribute


class GenAIMetrics:
    """The five GenAI histograms on ``meter`` (with the conventions' bucket boundaries)."""

    __slots__ = (
        "operation_duration",
        "request_duration",
        "time_per_output_token",
        "time_to_first_token",
        "token_usage",
    )

    def __init__(self, meter: Meter) -> None:
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=semconv.TOKEN_BUCKETS,
        )
        self.operation_duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS,
        )
        self.request_duration = meter.create_histogram(
            "gen_ai.server.request.duration",
            unit="s",
            description="Generative AI server request duration such as time-to-last byte or last output token.",
            explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS,
        )
        self.time_to_first_token = meter.create_histogram(
            "gen_ai.server.time_to_first_token",
            unit="s",
            description="Time to generate first token for successful responses.",
            explicit_bucket_boundaries_advisory=semconv.TIME_TO_FIRST_TOKEN_BUCKETS,
        )
        self.time_per_output_token = meter.create_histogram(
            "gen_ai.server.time_per_output_token",
            unit="s",
            description="Time per output token generated after the first token for successful responses.",
            explicit_bucket_boundaries_advisory=semconv.TIME_PER_OUTPUT_TOKEN_BUCKETS,
        )

    def record(self, exchange: Exchange, provider: str, error_type: str | None, end_ns: int) -> None:
        """Record ``exchange``, which ended at ``end_ns`` (monotonic ns) with ``error_type``."""
        attributes = _attributes(exchange, provider, error_type)
        self.request_duration.record((end_ns - exchange.received_ns) / NS_PER_S, attributes)
        attempts = exchange.attempts
        if attempts and attempts[0].sent_ns and attempts[-1].last_byte_ns:
            self.operation_duration.record((attempts[-1].last_byte_ns - attempts[0].sent_ns) / NS_PER_S, attributes)
        usage = exchange.usage
        input_tokens = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        if input_tokens or usage.output_tokens:
            self.token_usage.record(input_tokens, {**attributes, semconv.TOKEN_TYPE: "input"})
            self.token_usage.record(usage.output_tokens, {**attributes, semconv.TOKEN_TYPE: "output"})
        first_token_ns = exchange.first_token_ns
        if error_type is not None or not first_token_ns:
            return
        self.time_to_first_token.record((first_token_ns - exchange.received_ns) / NS_PER_S, attributes)
        last_byte_ns = exchange.last_byte_ns or end_ns
        if usage.output_tokens > 1:
            per_token = (last_byte_ns - first_token_ns) / (usage.output_tokens - 1) / NS_PER_S
            self.time_per_output_token.record(per_token, attributes)


def _attributes(exchange: Exchange, provider: str, error_type: str | None) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {semconv.OPERATION_NAME: semconv.OPERATION, semconv.PROVIDER_NAME: provider}
    if exchange.request_model:
        attributes[semconv.REQUEST_MODEL] = exchange.request_model[:MAX_MODEL_CHARS]
    if exchange.response_model:
        attributes[semconv.RESPONSE_MODEL] = exchange.response_model[:MAX_MODEL_CHARS]
    if exchange.attempts:
        attempt = exchange.attempts[-1]
        attributes[semconv.SERVER_ADDRESS] = attempt.host
        attributes[semconv.SERVER_PORT] = attempt.port
    if error_type is not None:
        attributes[semconv.ERROR_TYPE] = error_type
    return attributes
