"""The report as text (aligned tables for a person) and as JSON (for scripts).

Times are UTC; latencies in ms; tokens as logged (``input`` is Kong's ``prompt_tokens``,
cached tokens included); ``cost`` in the unit of the prices the gateway was given; ``p50``
/ ``p95`` are nearest-rank percentiles within 1 % (:mod:`aimw.report.histogram`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from aimw.report.aggregate import GroupKey, GroupStats, Period, Report
from aimw.report.histogram import RELATIVE_ERROR, LogHistogram

_HEADERS = (
    "provider",
    "model",
    "consumer",
    "requests",
    "errors",
    "failovers",
    "input",
    "cached",
    "output",
    "cost",
    "TTFT p50 ms",
    "TTFT p95 ms",
    "tok/s p50",
    "tok/s p95",
)
_TEXT_COLUMNS = 4  # bucket, provider, model, consumer: left-aligned; the figures right-aligned


def bucket_label(bucket_ms: int, period: Period) -> str:
    """``2025-06-01 13:00`` (hour) or ``2025-06-01`` (day), UTC."""
    moment = datetime.fromtimestamp(bucket_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M" if period == "hour" else "%Y-%m-%d")


def text(report: Report, *, sources: Sequence[str], since_ms: float | None = None) -> str:
    """The report as aligned text tables, ending with a newline."""
    period = report.period
    since = f", since {_utc(since_ms)} UTC" if since_ms is not None else ""
    out = [f"aimw report of {', '.join(sources)}: by {period} (UTC){since}", ""]
    rows = report.rows()
    if rows:
        table = [[bucket_label(key.bucket_ms, period), *_cells(key, stats)] for key, stats in rows]
        table.append(["total", *_cells(None, report.total())])
        out += _aligned([period, *_HEADERS], table, _TEXT_COLUMNS)
        errors = [
            [bucket_label(key.bucket_ms, period), key.provider, key.model, key.consumer, error_type, _int(count)]
            for key, stats in rows
            for error_type, count in sorted(stats.errors.items())
        ]
        if errors:
            out += ["", "errors by type"]
            out += _aligned([period, "provider", "model", "consumer", "type", "count"], errors, 5)
    else:
        out.append("no exchanges")
    out += ["", *_footer(report)]
    return "\n".join(out) + "\n"


def _footer(report: Report) -> list[str]:
    counts = report.counts
    lines = [
        f"lines read: {_int(counts.read)}; exchanges: {_int(counts.exchanges)} reported, "
        f"{_int(counts.before_since)} before --since; not exchanges (no ai block: pre-flights, "
        f"count_tokens): {_int(counts.not_exchanges)}; unreadable, skipped: {_int(counts.unreadable)}"
    ]
    estimated = report.total().estimated
    if estimated:
        lines.append(
            f"usage estimated by aimw (the provider reported none): {_int(estimated)} of "
            f"{_int(counts.exchanges)} exchanges"
        )
    lines.append(f"p50 / p95: nearest-rank percentiles, within {RELATIVE_ERROR:.0%} (log-spaced buckets)")
    return lines


def _cells(key: GroupKey | None, stats: GroupStats) -> list[str]:
    ttft, speed = stats.time_to_first_token_ms, stats.tokens_per_second
    return [
        key.provider if key else "",
        key.model if key else "",
        key.consumer if key else "",
        _int(stats.requests),
        _int(stats.error_count),
        _int(stats.failovers),
        _int(stats.prompt_tokens),
        _int(stats.cached_tokens),
        _int(stats.completion_tokens),
        f"{stats.cost:.4f}",
        _percentile(ttft, 50, "{:,.0f}"),
        _percentile(ttft, 95, "{:,.0f}"),
        _percentile(speed, 50, "{:,.1f}"),
        _percentile(speed, 95, "{:,.1f}"),
    ]


def _aligned(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> list[str]:
    """Columns padded to their widest cell, two spaces apart: the first ``left`` columns
    aligned left, the others right."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _percentile(histogram: LogHistogram, percent: int, form: str) -> str:
    value = histogram.percentile(percent)
    return "-" if value is None else form.format(value)


def _int(value: int) -> str:
    return f"{value:,}"


def _utc(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def as_json(report: Report, *, sources: Sequence[str], since_ms: float | None = None) -> bytes:
    """The report as one JSON document (indented, ending with a newline)::

    {"sources": [path], "by": "hour" | "day", "since": ISO time | null,
     "lines": {"read", "exchanges", "not_exchanges", "unreadable", "before_since"},
     "percentile_relative_error": 0.01,
     "groups": [{"bucket": ISO time, "provider", "model", "consumer", <figures>}],
     "total": {<figures>}}

    with <figures> = "requests", "errors": {type: count}, "failovers", "estimated_usage",
    "input_tokens" (cached included), "cached_tokens", "output_tokens", "cost",
    "time_to_first_token_ms": {"p50", "p95"}, "tokens_per_second": {"p50", "p95"}
    (each null when no exchange logged one).
    """
    counts = report.counts
    document: dict[str, Any] = {
        "sources": list(sources),
        "by": report.period,
        "since": _iso(since_ms) if since_ms is not None else None,
        "lines": {
            "read": counts.read,
            "exchanges": counts.exchanges,
            "not_exchanges": counts.not_exchanges,
            "unreadable": counts.unreadable,
            "before_since": counts.before_since,
        },
        "percentile_relative_error": RELATIVE_ERROR,
        "groups": [
            {
                "bucket": _iso(key.bucket_ms),
                "provider": key.provider,
                "model": key.model,
                "consumer": key.consumer,
                **_figures(stats),
            }
            for key, stats in report.rows()
        ],
        "total": _figures(report.total()),
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def _figures(stats: GroupStats) -> dict[str, Any]:
    return {
        "requests": stats.requests,
        "errors": dict(sorted(stats.errors.items())),
        "failovers": stats.failovers,
        "estimated_usage": stats.estimated,
        "input_tokens": stats.prompt_tokens,
        "cached_tokens": stats.cached_tokens,
        "output_tokens": stats.completion_tokens,
        "cost": round(stats.cost, 8),
        "time_to_first_token_ms": _percentiles(stats.time_to_first_token_ms),
        "tokens_per_second": _percentiles(stats.tokens_per_second),
    }


def _percentiles(histogram: LogHistogram) -> dict[str, float | None]:
    return {name: _rounded(histogram.percentile(percent)) for name, percent in (("p50", 50), ("p95", 95))}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
