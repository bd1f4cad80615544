"""PrometheusSink: the finished exchanges counted as Prometheus metrics, Kong's AI metrics
first, so that dashboards and alerts written for Kong's AI Gateway read aimw unchanged.

Kong's metrics (its Prometheus plugin with ``ai_metrics``: kong/plugins/prometheus/exporter.lua,
and the AI Gateway's "Monitor AI LLM metrics" page and its /metrics example), with Kong's
names, ``kong_`` prefix included (Kong's exporter adds it; the dashboards query
``kong_ai_llm_*``), and Kong's labels ``ai_provider, ai_model, cache_status, vector_db,
embeddings_provider, embeddings_model, workspace, consumer, request_mode``:

- ``kong_ai_llm_requests_total``: exchanges that reached the AI layers (a provider or model known).
- ``kong_ai_llm_cost_total``: their cost (the configured prices per million tokens).
- ``kong_ai_llm_tokens_total``: tokens, ``token_type`` ``prompt_tokens`` (input + cache read +
  cache creation), ``completion_tokens``, ``total_tokens``; no ``request_mode`` label (as Kong).
- ``kong_ai_llm_provider_latency_ms`` (histogram, ms): the answering attempt's request sent ->
  its last byte (the log's ``llm_latency``); Kong's buckets 250 ... 60000.
- ``kong_ai_llm_ttft_latency_ms`` (histogram, ms): time to first token (the log's
  ``time_to_first_token``); the AI Gateway's name (its example), whose buckets Kong does not
  publish: the provider latency's.
- ``kong_ai_llm_tpot_latency_ms`` (histogram, ms per output token): the log's
  ``time_per_token``; the AI Gateway's name, with Kong's own latency buckets 1 ... 6000 (its
  example's ``le`` 100 then 200 are neighbours there).

aimw's own (``aimw_`` prefix: Kong has no such metric):

- ``aimw_errors_total{ai_provider, ai_model, consumer, error_type}``: exchanges that ended in
  an Anthropic error, by its type (``rate_limit_error``, ``overloaded_error`` ... the client's
  status's type; a stream's ``event: error`` counts with the type it named). Requests that
  never reached a provider count too, with empty provider and model (``authentication_error``,
  ``not_found_error``).
- ``aimw_client_disconnects_total{ai_provider, ai_model, consumer, phase}``: clients that left
  early (the log's status 499), ``phase`` ``upload``, ``waiting``, ``stream`` or ``answer``.
- ``aimw_upstream_attempts_total{ai_provider, ai_model, outcome}``: tried targets, labelled
  with the attempt's own target; ``outcome`` ``ok``, a failure kind (``unreachable``,
  ``timeout``, ``busy``, ``broke_off``), ``client_closed``, or the Anthropic error type of the
  provider's error status.
- ``aimw_failovers_total{ai_provider, ai_model}``: attempts given up for the next target,
  labelled with the target left.
- ``aimw_streams_in_flight`` (gauge): event streams being sent to clients now
  (aimw.middleware.metrics_endpoint counts them).

Bounded labels: ``ai_provider`` comes from the configured provider or target, ``ai_model``
from the model sent upstream (the operator's with AIMW_MODEL or a target's ``model.name``;
without them a pass-through sends the client's, which a client may vary at will), ``consumer``
from the configured consumers. Each of the three keeps at most ``max_label_values`` (100)
distinct values per worker process, the first ones seen; later values, and values longer than
200 characters, are counted as ``other``. ``cache_status``, ``vector_db``, ``embeddings_*``
are always empty (aimw has no semantic cache) and ``workspace`` is ``default``. No label
holds a request id, a key or a raw client header.

Cost: per exchange, a few additions in the worker's memory under a lock, about 2 µs (no I/O;
prometheus-client's metric objects took 10 to 20 µs for the same updates, 45 µs in multiprocess
mode, where each one writes to a file); the exposition is built at scrape time. With
``PROMETHEUS_MULTIPROC_DIR`` the worker also writes its totals to a file at most once a second
(aimw.sinks.prometheus_files), so a scrape answered by any worker sums all of them, up to a
second late.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, make_wsgi_app
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from aimw.errors import ERROR_TYPE_BY_STATUS, error_type_for_status
from aimw.exchange import Attempt, ObservedExchange
from aimw.sinks.prometheus_families import (
    ATTEMPTS,
    COUNTERS,
    DISCONNECTS,
    ERRORS,
    FAILOVERS,
    KONG,
    LATENCY_BUCKETS,
    TPOT_BUCKETS,
    Totals,
    add_snapshot,
    families,
)
from aimw.sinks.prometheus_files import Snapshot, WorkerSnapshots, prepare_directory
from aimw.upstream.departure import CLIENT_CLOSED

MAX_LABEL_VALUES = 100  # distinct values per label and worker process, then OTHER
MAX_LABEL_CHARS = 200  # characters: a longer value is counted as OTHER
OTHER = "other"
ANTHROPIC_ERROR_TYPES = frozenset(ERROR_TYPE_BY_STATUS.values())


class LabelCap:
    """The values one label may take in this process: the first ``limit`` distinct ones seen
    (each at most MAX_LABEL_CHARS long), then OTHER; ``""`` for none."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def value(self, raw: str | None) -> str:
        if not raw:
            return ""
        if raw in self.seen:
            return raw
        if len(self.seen) >= self.limit or len(raw) > MAX_LABEL_CHARS:
            return OTHER
        self.seen.add(raw)
        return raw


class _Histogram:
    """Counts per bucket (not cumulative; the last is +Inf) and the sum of the values."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # bucket ``le`` b holds value <= b
        self.total += value

    def numbers(self) -> list[float]:
        return [*self.counts, self.total]


class _KongSeries:
    """Kong's metrics for one (provider, model, consumer, request_mode)."""

    __slots__ = ("completion_tokens", "cost", "latency", "prompt_tokens", "requests", "total_tokens", "tpot", "ttft")

    def __init__(self) -> None:
        self.requests = 0
        self.cost = 0.0
        self.prompt_tokens = self.completion_tokens = self.total_tokens = 0
        self.latency = _Histogram(LATENCY_BUCKETS)
        self.ttft = _Histogram(LATENCY_BUCKETS)
        self.tpot = _Histogram(TPOT_BUCKETS)

    def add(self, observed: ObservedExchange) -> None:
        """Count one exchange: latency once the answering attempt's last byte came, time to
        first token once content reached the client, time per token with output tokens."""
        figures, exchange = observed.figures, observed.exchange
        self.requests += 1
        self.cost += figures.cost
        self.prompt_tokens += figures.prompt_tokens
        self.completion_tokens += figures.completion_tokens
        self.total_tokens += figures.total_tokens
        attempt = exchange.attempts[-1] if exchange.attempts else None
        if attempt is None or not attempt.sent_ns:
            return
        if exchange.first_token_ns:
            self.ttft.observe(figures.time_to_first_token_ms)
        if attempt.last_byte_ns:
            self.latency.observe(figures.proxy_ms)
            if figures.completion_tokens:
                self.tpot.observe(figures.time_per_token_ms)

    def numbers(self) -> list[float]:
        counts = [self.requests, self.cost, self.prompt_tokens, self.completion_tokens, self.total_tokens]
        return [*counts, *self.latency.numbers(), *self.ttft.numbers(), *self.tpot.numbers()]


class PrometheusSink:
    """A :class:`~aimw.types.Sink` counting each exchange (module docstring: the metrics),
    and a prometheus-client collector (``collect()``) reading them.

    Args:
        multiprocess_directory: prometheus-client's ``PROMETHEUS_MULTIPROC_DIR``: this worker
            writes its totals there and a scrape sums every worker's (None: this process alone).
        max_label_values: distinct values kept per label (``ai_provider``, ``ai_model``,
            ``consumer``) in this process before OTHER.

    Raises:
        OSError: the multiprocess directory cannot be created or listed.
    """

    def __init__(self, *, multiprocess_directory: str | None = None, max_label_values: int = MAX_LABEL_VALUES) -> None:
        self.providers = LabelCap(max_label_values)
        self.models = LabelCap(max_label_values)
        self.consumers = LabelCap(max_label_values)
        self.kong: dict[tuple[str, ...], _KongSeries] = {}
        self.counts: dict[str, dict[tuple[str, ...], int]] = {name: {} for name in COUNTERS}
        self.streams_in_flight = 0
        self._lock = threading.Lock()  # the scrape reads from another thread
        self.registry = CollectorRegistry()
        self.registry.register(self)
        self.snapshots: WorkerSnapshots | None = None
        if multiprocess_directory is not None:
            prepare_directory(multiprocess_directory, os.getpid())
            self.snapshots = WorkerSnapshots(multiprocess_directory, os.getpid())
            MultiProcessCollector(self.registry, path=multiprocess_directory)  # type: ignore[no-untyped-call]

    def emit(self, observed: ObservedExchange) -> None:
        """Count one finished exchange (in this process's memory)."""
        exchange = observed.exchange
        provider = self.providers.value(exchange.provider_name)
        model = self.models.value(exchange.request_model)
        consumer = self.consumers.value(exchange.consumer.username if exchange.consumer is not None else None)
        error = anthropic_error_type(observed)
        attempts = [(self.providers.value(a.provider), self.models.value(a.model), a) for a in exchange.attempts]
        with self._lock:
            if exchange.provider_name or exchange.request_model:
                mode = exchange.request_mode or ("stream" if observed.streamed else "oneshot")
                key = (provider, model, consumer, mode)
                series = self.kong.get(key)
                if series is None:
                    series = self.kong[key] = _KongSeries()
                series.add(observed)
            if error is not None:
                self._count(ERRORS, (provider, model, consumer, error))
            if exchange.client_closed is not None:
                self._count(DISCONNECTS, (provider, model, consumer, exchange.client_closed))
            for target_provider, target_model, attempt in attempts:
                self._count(ATTEMPTS, (target_provider, target_model, attempt_outcome(attempt)))
            for target_provider, target_model, _ in attempts[:-1]:
                self._count(FAILOVERS, (target_provider, target_model))
        self._changed()

    def stream_started(self) -> None:
        """An event stream's response started (aimw.middleware.metrics_endpoint)."""
        with self._lock:
            self.streams_in_flight += 1
        self._changed()

    def stream_ended(self) -> None:
        """That stream's exchange returned (the client got its end, or left)."""
        with self._lock:
            self.streams_in_flight -= 1
        self._changed()

    def collect(self) -> list[Metric]:
        """The metric families (prometheus-client's Collector protocol): this process's
        counts, plus every other worker's in multiprocess mode. Safe from any thread."""
        totals: Totals = {}
        add_snapshot(totals, self.snapshot())
        in_flight = self.streams_in_flight
        if self.snapshots is not None:
            for snapshot, running in self.snapshots.others():
                add_snapshot(totals, snapshot)
                streams = snapshot.get("streams_in_flight")
                if running and isinstance(streams, int):
                    in_flight += streams
        return families(totals, in_flight)

    def encode(self, accept: str) -> tuple[bytes, str]:
        """The exposition for a scrape whose Accept header is ``accept``: (body, content type)
        in Prometheus' text format or OpenMetrics, as prometheus-client negotiates."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def wsgi_app(self) -> Callable[..., Iterable[bytes]]:
        """prometheus-client's WSGI exposition of these metrics (for a listener of its own)."""
        return make_wsgi_app(self.registry)

    def snapshot(self) -> Snapshot:
        """This process's totals as JSON-ready lists."""
        with self._lock:
            rows: dict[str, list[list[object]]] = {KONG: [[*k, *series.numbers()] for k, series in self.kong.items()]}
            for name, counts in self.counts.items():
                rows[name] = [[*key, value] for key, value in counts.items()]
            return {"families": rows, "streams_in_flight": self.streams_in_flight}

    def flush(self) -> None:
        """Write this worker's snapshot now (multiprocess mode; nothing otherwise)."""
        if self.snapshots is not None:
            self.snapshots.flush(self.snapshot)

    def _count(self, name: str, key: tuple[str, ...]) -> None:
        counts = self.counts[name]
        counts[key] = counts.get(key, 0) + 1

    def _changed(self) -> None:
        if self.snapshots is not None:
            self.snapshots.changed(self.snapshot)


def anthropic_error_type(observed: ObservedExchange) -> str | None:
    """The Anthropic error type the client got, None for a success or a client that left:
    its status's type (aimw.errors), or for a 2xx that failed after it started the type
    the exchange's error names (``overloaded_error: ...``), else ``api_error`` (what a
    broken stream's ``event: error`` says)."""
    exchange = observed.exchange
    if exchange.client_closed is not None:
        return None
    if observed.status >= 400:
        return error_type_for_status(observed.status)
    if exchange.error is None:
        return None
    named = exchange.error.partition(":")[0]
    return named if named in ANTHROPIC_ERROR_TYPES else "api_error"


def attempt_outcome(attempt: Attempt) -> str:
    """``client_closed``, the Anthropic error type of the provider's error status, the
    upstream failure's kind (aimw.upstream.failures), ``failure``, or ``ok``."""
    if attempt.failure == CLIENT_CLOSED:
        return "client_closed"
    if attempt.status is not None and attempt.status >= 400:
        return error_type_for_status(attempt.status)
    if attempt.failure_kind is not None:
        return attempt.failure_kind
    if attempt.failure is not None or attempt.status is None:
        return "failure"
    return "ok"
