"""The exposition side of aimw's Prometheus metrics (aimw.sinks.prometheus lists them): their
names, labels and buckets, the totals' layout, the sum of several workers' totals, and the
prometheus-client metric families built from it at scrape time.

Totals are kept per family as ``{label values: numbers}``. A counter's numbers are its value;
a Kong series' (provider, model, consumer, request_mode) are, in order: requests, cost,
prompt / completion / total tokens, then three histograms (provider latency, time to first
token, time per output token), each as its per-bucket counts (not cumulative, +Inf last) and
its sum. Sources: Kong's exporter (kong/plugins/prometheus/exporter.lua: names, labels, the
provider latency's buckets, the ``kong_`` prefix) and its AI Gateway /metrics example (the
time to first token and per token histograms).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

KONG_LABELS = (
    "ai_provider", "ai_model", "cache_status", "vector_db", "embeddings_provider", "embeddings_model",
    "workspace", "consumer", "request_mode",
)  # fmt: skip
KONG_TOKEN_LABELS = (
    "ai_provider", "ai_model", "cache_status", "vector_db", "embeddings_provider", "embeddings_model",
    "token_type", "workspace", "consumer",
)  # fmt: skip
TOKEN_TYPES = ("prompt_tokens", "completion_tokens", "total_tokens")
WORKSPACE = "default"  # Kong's default workspace's name
LATENCY_BUCKETS = (250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 10000, 30000, 60000)  # ms
TPOT_BUCKETS = (1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000)  # ms per token

KONG = "kong"  # the Kong series' family in the totals: (provider, model, consumer, request_mode)
ERRORS = "aimw_errors"
DISCONNECTS = "aimw_client_disconnects"
ATTEMPTS = "aimw_upstream_attempts"
FAILOVERS = "aimw_failovers"
_WHO = ("ai_provider", "ai_model", "consumer")
_TARGET = ("ai_provider", "ai_model")
COUNTERS = {  # aimw's counters: labels, help
    ERRORS: ((*_WHO, "error_type"), "Exchanges that ended in an Anthropic error, by type"),
    DISCONNECTS: ((*_WHO, "phase"), "Clients that left before the answer's end, by phase"),
    ATTEMPTS: ((*_TARGET, "outcome"), "Upstream attempts (tried targets), by outcome"),
    FAILOVERS: (_TARGET, "Attempts given up for the next target, by the target left"),
}

TTFT_AT = 5 + len(LATENCY_BUCKETS) + 2  # where each histogram starts in a Kong series' numbers
TPOT_AT = TTFT_AT + len(LATENCY_BUCKETS) + 2
_KEY_SIZES = {KONG: 4, **{name: len(labels) for name, (labels, _) in COUNTERS.items()}}
_SIZES = {KONG: TPOT_AT + len(TPOT_BUCKETS) + 2, **dict.fromkeys(COUNTERS, 1)}

Totals = dict[str, dict[tuple[str, ...], list[float]]]


def add_snapshot(totals: Totals, snapshot: dict[str, object]) -> None:
    """Add a worker's snapshot (``{"families": {name: [[*labels, *numbers], ...]}}``) to
    ``totals``; rows of another layout (another aimw version's) are skipped."""
    families = snapshot.get("families")
    if not isinstance(families, dict):
        return
    for name, rows in families.items():
        key_size, size = _KEY_SIZES.get(name), _SIZES.get(name)
        if key_size is None or size is None or not isinstance(rows, list):
            continue
        table = totals.setdefault(name, {})
        for row in rows:
            if isinstance(row, list) and len(row) == key_size + size:
                key = tuple(str(value) for value in row[:key_size])
                table[key] = summed(table.get(key), row[key_size:])


def summed(kept: list[float] | None, numbers: Sequence[float]) -> list[float]:
    """``numbers`` added element by element to ``kept`` (a copy of them when None)."""
    if kept is None:
        return [float(number) for number in numbers]
    return [a + b for a, b in zip(kept, numbers, strict=True)]


def families(totals: Totals, streams_in_flight: int) -> list[Metric]:
    """Kong's families, aimw's counters and the streams gauge, from summed ``totals``."""
    requests = CounterMetricFamily("kong_ai_llm_requests", "AI requests total per ai_provider", labels=KONG_LABELS)
    cost = CounterMetricFamily("kong_ai_llm_cost", "AI requests cost per ai_provider", labels=KONG_LABELS)
    tokens = CounterMetricFamily("kong_ai_llm_tokens", "AI tokens total per ai_provider", labels=KONG_TOKEN_LABELS)
    latency = HistogramMetricFamily("kong_ai_llm_provider_latency_ms", "LLM response latency, ms", labels=KONG_LABELS)
    ttft = HistogramMetricFamily("kong_ai_llm_ttft_latency_ms", "LLM time to first token, ms", labels=KONG_LABELS)
    tpot = HistogramMetricFamily("kong_ai_llm_tpot_latency_ms", "LLM time per output token, ms", labels=KONG_LABELS)
    histograms = ((latency, LATENCY_BUCKETS, 5), (ttft, LATENCY_BUCKETS, TTFT_AT), (tpot, TPOT_BUCKETS, TPOT_AT))
    token_totals: dict[tuple[str, ...], list[float]] = {}
    for (provider, model, consumer, mode), numbers in totals.get(KONG, {}).items():
        labels = [provider, model, "", "", "", "", WORKSPACE, consumer, mode]
        requests.add_metric(labels, numbers[0])
        if numbers[1] > 0:
            cost.add_metric(labels, numbers[1])
        token_totals[provider, model, consumer] = summed(token_totals.get((provider, model, consumer)), numbers[2:5])
        for family, bounds, start in histograms:
            part = numbers[start : start + len(bounds) + 2]
            if any(part[:-1]):
                family.add_metric(labels, _cumulative_buckets(part[:-1], bounds), part[-1])
    for (provider, model, consumer), values in token_totals.items():
        for token_type, value in zip(TOKEN_TYPES, values, strict=True):
            if value > 0:
                tokens.add_metric([provider, model, "", "", "", "", token_type, WORKSPACE, consumer], value)
    metrics: list[Metric] = [requests, cost, tokens, latency, ttft, tpot]
    for name, (label_names, help_text) in COUNTERS.items():
        counter = CounterMetricFamily(name, help_text, labels=label_names)
        for key, numbers in totals.get(name, {}).items():
            counter.add_metric(list(key), numbers[0])
        metrics.append(counter)
    metrics.append(GaugeMetricFamily("aimw_streams_in_flight", "Event streams being sent now", value=streams_in_flight))
    return metrics


def _cumulative_buckets(counts: Sequence[float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    """(le, cumulative count) per bucket, +Inf last, from per-bucket counts."""
    buckets, total = [], 0.0
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        total += count
        buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))  # Go's float text
    return buckets
