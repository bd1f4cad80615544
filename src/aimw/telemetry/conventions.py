"""The OpenTelemetry GenAI semantic conventions as aimw fills them (attribute names, the
provider names, the ``error.type`` values, the metrics' bucket boundaries).

Source: OpenTelemetry semantic conventions for generative AI (``semantic-conventions-genai``
repository, docs/gen-ai/: gen-ai-spans.md, gen-ai-metrics.md, anthropic.md), status
"Development": the names may still change, so they are kept here, in one place, rather than
taken from the SDK's incubating module (which marks them as moved).
"""

from __future__ import annotations

from types import MappingProxyType

from aimw.errors import ERROR_TYPE_BY_STATUS, error_type_for_status
from aimw.exchange import Attempt, Exchange
from aimw.upstream.departure import CLIENT_CLOSED

OPERATION = "chat"  # gen_ai.operation.name of a Messages request (the Chat well-known value)

OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_STREAM = "gen_ai.request.stream"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
TOKEN_TYPE = "gen_ai.token.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
HTTP_STATUS = "http.response.status_code"
# Opt-in content (AIMW_LOG_PAYLOADS=1 only): the conventions' span events of v1.27 and before,
# holding the bodies as sent (Anthropic Messages JSON; the answer's JSON or event stream).
PROMPT_EVENT, PROMPT = "gen_ai.content.prompt", "gen_ai.prompt"
COMPLETION_EVENT, COMPLETION = "gen_ai.content.completion", "gen_ai.completion"

# Kong's provider_name -> gen_ai.provider.name (its well-known values where one applies).
_PROVIDER_NAMES = MappingProxyType({"azure": "azure.ai.openai", "gemini": "gcp.gemini"})
UNKNOWN_PROVIDER = "unknown"
_VERTEX_HOST = "aiplatform.googleapis.com"  # the conventions' gcp.vertex_ai endpoint

OTHER_ERROR = "_OTHER"  # the conventions' fallback error.type
CLIENT_CLOSED_ERROR = "client_closed"
ERROR_TYPES = frozenset(ERROR_TYPE_BY_STATUS.values()) | {"overloaded_error"}
"""The Anthropic error types aimw reports as error.type (besides failure kinds, above)."""

# Explicit bucket boundaries the conventions give each metric (s; tokens for token usage).
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TIME_TO_FIRST_TOKEN_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
TIME_PER_OUTPUT_TOKEN_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)


def provider_name(provider: str | None, host: str | None = None) -> str:
    """gen_ai.provider.name for Kong's ``provider`` name: ``anthropic``, ``openai``,
    ``azure.ai.openai``, ``gcp.gemini`` (``gcp.vertex_ai`` when ``host`` is Vertex AI's), and
    aimw's own name for the others (``huggingface``, ``dashscope``); ``unknown`` when no
    target was reached (a request refused before any was chosen)."""
    if provider is None:
        return UNKNOWN_PROVIDER
    if provider == "gemini" and host is not None and host.endswith(_VERTEX_HOST):
        return "gcp.vertex_ai"
    return _PROVIDER_NAMES.get(provider, provider)


def exchange_error_type(exchange: Exchange, status: int) -> str | None:
    """error.type of an exchange that the client got ``status`` for, None when it succeeded.

    In this order: ``client_closed`` (the client left early); the failing attempt's failure
    kind (``unreachable``, ``timeout``, ``busy``, ``broke_off``: aimw.upstream.failures); the
    Anthropic error type of an error status (``rate_limit_error``, ``overloaded_error`` ...:
    aimw.errors); for a 2xx that failed after it started (an ``event: error`` in the stream)
    the Anthropic error type the exchange's error names; else ``_OTHER``.
    """
    if exchange.client_closed is not None:
        return CLIENT_CLOSED_ERROR
    if status < 400 and exchange.error is None:
        return None
    kind = exchange.attempts[-1].failure_kind if exchange.attempts else None
    if kind is not None:
        return kind
    if status >= 400:
        return error_type_for_status(status)
    named = (exchange.error or "").partition(":")[0]
    return named if named in ERROR_TYPES else OTHER_ERROR


def attempt_error_type(attempt: Attempt) -> str | None:
    """error.type of one attempt, None when it succeeded: its failure kind, ``client_closed``,
    the provider's error status (``"429"``, as the conventions' example), else ``_OTHER``."""
    if attempt.failure is None and (attempt.status is None or attempt.status < 400):
        return None
    if attempt.failure_kind is not None:
        return attempt.failure_kind
    if attempt.failure == CLIENT_CLOSED:
        return CLIENT_CLOSED_ERROR
    if attempt.status is not None and attempt.status >= 400:
        return str(attempt.status)
    return OTHER_ERROR
