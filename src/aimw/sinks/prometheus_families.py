"""aimw's Prometheus metrics as prometheus-client objects (aimw.sinks.prometheus lists what they
count): their names, labels, buckets and help, created in one CollectorRegistry.

Sources: Kong's exporter (kong/plugins/prometheus/exporter.lua: names, labels, the provider
latency's buckets, the ``kong_`` prefix) and its AI Gateway /metrics example (the time to first
token and per token histograms). prometheus-client appends ``_total`` to a counter's name, so
the counters are named without it here and exposed with it (``kong_ai_llm_requests_total``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

KONG_LABELS = (
    "ai_provider", "ai_model", "cache_status", "vector_db", "embeddings_provider", "embeddings_model",
    "workspace", "consumer", "request_mode",
)  # fmt: skip
KONG_TOKEN_LABELS = (
    "ai_provider", "ai_model", "cache_status", "vector_db", "embeddings_provider", "embeddings_model",
    "token_type", "workspace", "consumer",
)  # fmt: skip
WORKSPACE = "default"  # Kong's default workspace's name
LATENCY_BUCKETS = (250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 10000, 30000, 60000)  # ms
TPOT_BUCKETS = (1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000)  # ms per token
_WHO = ("ai_provider", "ai_model", "consumer")
_TARGET = ("ai_provider", "ai_model")


class MetricSet:
    """The metric objects, registered in ``registry``. With PROMETHEUS_MULTIPROC_DIR in the
    environment when prometheus-client was imported, their values live in that directory's
    files (prometheus-client's multiprocess mode); the gauge then sums live processes only."""

    __slots__ = (
        "attempts", "cost", "disconnects", "errors", "failovers", "latency", "requests", "streams", "tokens",
        "tpot", "ttft",
    )  # fmt: skip

    def __init__(self, registry: CollectorRegistry) -> None:
        kong = KONG_LABELS
        self.requests = Counter(
            "kong_ai_llm_requests", "AI requests total per ai_provider", labelnames=kong, registry=registry
        )
        self.cost = Counter("kong_ai_llm_cost", "AI requests cost per ai_provider", labelnames=kong, registry=registry)
        self.tokens = Counter(
            "kong_ai_llm_tokens", "AI tokens total per ai_provider", labelnames=KONG_TOKEN_LABELS, registry=registry
        )
        self.latency = Histogram(
            "kong_ai_llm_provider_latency_ms",
            "LLM response latency, ms",
            buckets=LATENCY_BUCKETS,
            labelnames=kong,
            registry=registry,
        )
        self.ttft = Histogram(
            "kong_ai_llm_ttft_latency_ms",
            "LLM time to first token, ms",
            buckets=LATENCY_BUCKETS,
            labelnames=kong,
            registry=registry,
        )
        self.tpot = Histogram(
            "kong_ai_llm_tpot_latency_ms",
            "LLM time per output token, ms",
            buckets=TPOT_BUCKETS,
            labelnames=kong,
            registry=registry,
        )
        self.errors = Counter(
            "aimw_errors", "Exchanges that ended in an Anthropic error, by type",
            labelnames=(*_WHO, "error_type"), registry=registry,
        )  # fmt: skip
        self.disconnects = Counter(
            "aimw_client_disconnects", "Clients that left before the answer's end, by phase",
            labelnames=(*_WHO, "phase"), registry=registry,
        )  # fmt: skip
        self.attempts = Counter(
            "aimw_upstream_attempts", "Upstream attempts (tried targets), by outcome",
            labelnames=(*_TARGET, "outcome"), registry=registry,
        )  # fmt: skip
        self.failovers = Counter(
            "aimw_failovers", "Attempts given up for the next target, by the target left",
            labelnames=_TARGET, registry=registry,
        )  # fmt: skip
        self.streams = Gauge(
            "aimw_streams_in_flight", "Event streams being sent now", multiprocess_mode="livesum", registry=registry
        )
