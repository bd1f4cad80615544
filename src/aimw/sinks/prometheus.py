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

Counted with prometheus-client's Counter, Histogram and Gauge (aimw.sinks.prometheus_families)
in a CollectorRegistry of the sink's own. Several worker processes: prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set before the workers start): each worker's
values are memory-mapped files there and a scrape answered by any worker sums all of them at
once (MultiProcessCollector); aimw.sinks.prometheus_files has the directory's clean-up at start.

Cost: per exchange, the updates of prometheus-client's metric objects (their label children are
looked up once and kept): about 13 µs for a stream in one process, 23 µs in multiprocess mode,
where each update also writes to its mmap file; the exposition is built at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, make_wsgi_app
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from aimw.errors import ERROR_TYPE_BY_STATUS, error_type_for_status
from aimw.exchange import Attempt, ObservedExchange
from aimw.sinks.prometheus_families import WORKSPACE, MetricSet
from aimw.sinks.prometheus_files import check_multiprocess, prepare_directory
from aimw.upstream.departure import CLIENT_CLOSED

MAX_LABEL_VALUES = 100  # distinct values per label and worker process, then OTHER
MAX_LABEL_CHARS = 200  # characters: a longer value is counted as OTHER
OTHER = "other"
ANTHROPIC_ERROR_TYPES = frozenset(ERROR_TYPE_BY_STATUS.values())
TOKEN_TYPES = ("prompt_tokens", "completion_tokens", "total_tokens")

Child = TypeVar("Child", bound=MetricWrapperBase)


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


class PrometheusSink:
    """A :class:`~aimw.types.Sink` counting each exchange (module docstring: the metrics) in
    prometheus-client's metric objects, and their exposition.

    Args:
        multiprocess_directory: prometheus-client's ``PROMETHEUS_MULTIPROC_DIR``, which must be
            in the environment since before prometheus-client was imported: this worker's values
            are files there and a scrape sums every worker's (None: this process alone).
        max_label_values: distinct values kept per label (``ai_provider``, ``ai_model``,
            ``consumer``) in this process before OTHER.

    Raises:
        OSError: the multiprocess directory cannot be created or listed.
        ValueError: prometheus-client is not in multiprocess mode on that directory.
    """

    def __init__(self, *, multiprocess_directory: str | None = None, max_label_values: int = MAX_LABEL_VALUES) -> None:
        self.providers = LabelCap(max_label_values)
        self.models = LabelCap(max_label_values)
        self.consumers = LabelCap(max_label_values)
        self.multiprocess_directory = multiprocess_directory
        if multiprocess_directory is not None:
            check_multiprocess(multiprocess_directory)
            prepare_directory(multiprocess_directory, os.getpid())
        self.registry = CollectorRegistry()  # this process's values
        self.metrics = MetricSet(self.registry)
        self.exposed = self.registry  # what a scrape reads
        if multiprocess_directory is not None:
            self.metrics.streams.set(0)  # a previous process of this pid may have left its gauge
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed, path=multiprocess_directory)  # type: ignore[no-untyped-call]
        self._children: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}

    def emit(self, observed: ObservedExchange) -> None:
        """Count one finished exchange."""
        exchange, figures, metrics = observed.exchange, observed.figures, self.metrics
        provider = self.providers.value(exchange.provider_name)
        model = self.models.value(exchange.request_model)
        consumer = self.consumers.value(exchange.consumer.username if exchange.consumer is not None else None)
        if exchange.provider_name or exchange.request_model:
            mode = exchange.request_mode or ("stream" if observed.streamed else "oneshot")
            kong = (provider, model, "", "", "", "", WORKSPACE, consumer, mode)
            self.child(metrics.requests, kong).inc()
            if figures.cost > 0:
                self.child(metrics.cost, kong).inc(figures.cost)
            counts = (figures.prompt_tokens, figures.completion_tokens, figures.total_tokens)
            for token_type, tokens in zip(TOKEN_TYPES, counts, strict=True):
                if tokens > 0:
                    self.child(metrics.tokens, (provider, model, "", "", "", "", token_type, WORKSPACE, consumer)).inc(
                        tokens
                    )
            self.timings(observed, kong)
        error = anthropic_error_type(observed)
        if error is not None:
            self.child(metrics.errors, (provider, model, consumer, error)).inc()
        if exchange.client_closed is not None:
            self.child(metrics.disconnects, (provider, model, consumer, exchange.client_closed)).inc()
        attempts = exchange.attempts
        for number, attempt in enumerate(attempts, 1):
            target = (self.providers.value(attempt.provider), self.models.value(attempt.model))
            self.child(metrics.attempts, (*target, attempt_outcome(attempt))).inc()
            if number < len(attempts):
                self.child(metrics.failovers, target).inc()

    def timings(self, observed: ObservedExchange, kong: tuple[str, ...]) -> None:
        """The histograms, in ms: latency once the answering attempt's last byte came, time to
        first token once content reached the client, time per token with output tokens."""
        exchange, figures = observed.exchange, observed.figures
        attempt = exchange.attempts[-1] if exchange.attempts else None
        if attempt is None or not attempt.sent_ns:
            return
        if exchange.first_token_ns:
            self.child(self.metrics.ttft, kong).observe(figures.time_to_first_token_ms)
        if attempt.last_byte_ns:
            self.child(self.metrics.latency, kong).observe(figures.proxy_ms)
            if figures.completion_tokens:
                self.child(self.metrics.tpot, kong).observe(figures.time_per_token_ms)

    def child(self, metric: Child, labels: tuple[str, ...]) -> Child:
        """``metric.labels(*labels)``, kept (the label cap bounds how many)."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found  # type: ignore[return-value]  # the child of ``metric`` is of its class

    def stream_started(self) -> None:
        """An event stream's response started (aimw.middleware.metrics_endpoint)."""
        self.metrics.streams.inc()

    def stream_ended(self) -> None:
        """That stream's exchange returned (the client got its end, or left)."""
        self.metrics.streams.dec()

    def encode(self, accept: str) -> tuple[bytes, str]:
        """The exposition for a scrape whose Accept header is ``accept``: (body, content type)
        in Prometheus' text format or OpenMetrics, as prometheus-client negotiates; in
        multiprocess mode every worker's values summed. Safe from any thread."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.exposed), content_type

    def wsgi_app(self) -> Callable[..., Iterable[bytes]]:
        """prometheus-client's WSGI exposition of these metrics (for a listener of its own)."""
        return make_wsgi_app(self.exposed)

    def close(self) -> None:
        """This worker is shutting down: in multiprocess mode its live gauge (its streams in
        flight) leaves the sums (prometheus-client's ``mark_process_dead``); its counts stay."""
        if self.multiprocess_directory is not None:
            mark_process_dead(os.getpid(), self.multiprocess_directory)  # type: ignore[no-untyped-call]


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
