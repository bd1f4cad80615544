"""The report's reader: which lines are exchanges, their error types, what is skipped and
counted, and a round trip through the line aimw's KongFileLog sink writes."""

from __future__ import annotations

import io
import json

import pytest

from aimw.exchange import Attempt, Exchange, Figures, ObservedExchange, Usage
from aimw.report import records
from aimw.report.records import LineCounts, Record, error_type, read_records
from aimw.sinks import KongFileLog
from tests.asgi_helpers import http_scope

STARTED_AT = 1748772000000  # 2025-06-01T10:00:00Z


def read(*lines: bytes | str, since_ms: float | None = None) -> tuple[list[Record], LineCounts]:
    data = b"".join(line if isinstance(line, bytes) else line.encode() for line in lines)
    counts = LineCounts()
    return list(read_records([io.BytesIO(data)], counts, since_ms)), counts


def log_line(**fields: object) -> str:
    return json.dumps({"started_at": STARTED_AT, **fields}) + "\n"


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (200, None, None),
        (499, "client closed request while waiting for the provider", "client_closed_request"),
        (429, "rate_limit_error: slow down", "rate_limit_error"),
        (529, "overloaded_error: every target failed: ...", "overloaded_error"),
        (408, "timeout_error: the client took too long to send its body", "timeout_error"),
        (502, "the upstream provider answered a redirect (HTTP 302)", "api_error"),
        (413, None, "request_too_large"),
        (418, None, "invalid_request_error"),
        (200, "api_error: upstream provider sent an invalid stream chunk", "api_error"),
        (200, "overloaded_error: upstream provider is overloaded", "overloaded_error"),
        (200, "something broke", "api_error"),
        (None, None, None),
    ],
)
def test_error_type(status, error, expected):
    assert error_type(status, error) == expected


def test_what_is_an_exchange():
    exchanges, counts = read(
        log_line(response={"status": 200}),  # a pre-flight: no ai block
        log_line(response={"status": 404}),  # refused before any provider
        log_line(response={"status": 200}, ai={"proxy": {"meta": {"provider_name": "openai"}}}),
        log_line(response={"status": 200}, ai={}),  # an empty ai block says nothing
    )
    assert [(r.provider, r.error_type) for r in exchanges] == [("-", "not_found_error"), ("openai", None)]
    assert (counts.read, counts.exchanges, counts.not_exchanges, counts.unreadable) == (4, 2, 2, 0)


@pytest.mark.parametrize(
    "line",
    [
        "not json\n",
        '{"started_at": 1748772000000, "response": {"status": 200}\n',  # cut short
        "[1, 2]\n",
        '{"response": {"status": 200}, "ai": {"proxy": {}}}\n',  # no started_at
        log_line(ai={"proxy": {"usage": {"prompt_tokens": "many"}}}),  # a field of the wrong type
        '{"started_at": 1e300, "ai": {"proxy": {}}}\n',  # not a time
        '{"started_at": 1748772000000, "response": {"status": 200}',  # the last line, truncated
    ],
)
def test_unreadable_lines_are_skipped_and_counted(line):
    good = log_line(ai={"proxy": {"meta": {"provider_name": "azure"}}})
    exchanges, counts = read(good, line, good) if line.endswith("\n") else read(good, good, line)
    assert [r.provider for r in exchanges] == ["azure", "azure"]
    assert (counts.read, counts.unreadable) == (3, 1)


def test_blank_lines_are_not_lines():
    exchanges, counts = read("\n", log_line(ai={"proxy": {}}), "  \n")
    assert (len(exchanges), counts.read) == (1, 1)


def test_a_line_longer_than_the_limit_is_skipped_to_its_end(monkeypatch):
    monkeypatch.setattr(records, "MAX_LINE_BYTES", 200)
    long_line = log_line(ai={"proxy": {"meta": {"provider_name": "x" * 1000}}})
    exchanges, counts = read(long_line, log_line(ai={"proxy": {"meta": {"provider_name": "azure"}}}))
    assert [r.provider for r in exchanges] == ["azure"]
    assert (counts.read, counts.unreadable) == (2, 1)


def test_since_leaves_out_earlier_exchanges():
    exchanges, counts = read(
        log_line(ai={"proxy": {}}),
        json.dumps({"started_at": STARTED_AT + 1, "ai": {"proxy": {}}}) + "\n",
        since_ms=STARTED_AT + 1,
    )
    assert [r.started_at_ms for r in exchanges] == [STARTED_AT + 1]
    assert (counts.exchanges, counts.before_since) == (1, 1)


@pytest.mark.parametrize(
    ("consumer", "name"),
    [
        ({"id": "c0ffee00-0000-4000-8000-000000000001", "username": "alice"}, "alice"),  # Kong's, and aimw's
        ({"id": "c0ffee00-0000-4000-8000-000000000001", "custom_id": "team-7"}, "team-7"),
        ({"id": "c0ffee00-0000-4000-8000-000000000001"}, "c0ffee00-0000-4000-8000-000000000001"),
        (None, "-"),
    ],
)
def test_the_consumer_is_named_by_username_custom_id_or_id(consumer, name):
    fields = {"ai": {"proxy": {}}} | ({"consumer": consumer} if consumer else {})
    (exchange,), _ = read(log_line(**fields))
    assert exchange.consumer == name


def test_kong_figures_become_the_reports():
    """Kong's names: prompt_tokens (cached included), prompt_tokens_details.cached_tokens,
    time_per_token (ms per output token) -> tokens per second."""
    usage = {
        "prompt_tokens": 11145,
        "completion_tokens": 414,
        "cost": 0.25,
        "time_per_token": 12.5,
        "time_to_first_token": 4605,
        "prompt_tokens_details": {"cached_tokens": 11008},
        "completion_tokens_details": {},
    }
    meta = {"provider_name": "azure", "request_model": "gpt-4.1", "response_model": "gpt-4.1-2025-04-14"}
    (exchange,), _ = read(log_line(response={"status": 200}, ai={"proxy": {"meta": meta, "usage": usage}}))
    assert exchange == Record(
        started_at_ms=STARTED_AT,
        provider="azure",
        model="gpt-4.1",
        consumer="-",
        error_type=None,
        prompt_tokens=11145,
        cached_tokens=11008,
        completion_tokens=414,
        cost=0.25,
        time_to_first_token_ms=4605,
        tokens_per_second=80.0,
        tried_targets=0,
        estimated=False,
    )


def test_what_kong_file_log_writes_reads_back(tmp_path):
    """The sink's own line: a stream that failed over to its second target and ended before
    the provider's usage came (estimated), read back field by field."""
    attempts = [
        Attempt("gemini", "gemini-2.5-pro", "https", "generativelanguage.googleapis.com", 443, "/v1beta/x"),
        Attempt("openai", "gpt-4.1", "https", "api.openai.com", 443, "/v1/chat/completions"),
    ]
    attempts[0].failure = "the upstream provider did not answer in time"
    exchange = Exchange(
        provider_name="openai",
        request_model="gpt-4.1",
        response_model="gpt-4.1-2025-04-14",
        request_mode="stream",
        usage=Usage(input_tokens=100, output_tokens=20, cache_read_input_tokens=50),
        attempts=attempts,
        error="client closed request mid-stream (after HTTP 200 and 2048 bytes)",
        usage_estimated=True,
    )
    figures = Figures(
        request_ms=1000,
        proxy_ms=990,
        gateway_ms=10,
        time_to_first_token_ms=300,
        time_per_token_ms=49.5,
        prompt_tokens=150,
        completion_tokens=20,
        total_tokens=170,
        cost=0.0015,
    )
    observed = ObservedExchange(
        scope=http_scope(body=b"{}"),
        exchange=exchange,
        status=499,
        response_headers=[(b"content-type", b"text/event-stream")],
        request_size=2,
        response_size=2048,
        started_at_ms=STARTED_AT,
        streamed=True,
        figures=figures,
    )
    path = tmp_path / "aimw.log"
    KongFileLog(str(path)).emit(observed)
    counts = LineCounts()
    with path.open("rb") as stream:
        (record,) = read_records([stream], counts)
    assert record == Record(
        started_at_ms=STARTED_AT,
        provider="openai",
        model="gpt-4.1",
        consumer="-",
        error_type="client_closed_request",
        prompt_tokens=150,
        cached_tokens=50,
        completion_tokens=20,
        cost=0.0015,
        time_to_first_token_ms=300,
        tokens_per_second=1000 / 49.5,
        tried_targets=2,
        estimated=True,
    )
