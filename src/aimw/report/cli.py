"""``aimw report``: the command line of the report (``python -m aimw report aimw.log``).

Reads one or more JSON-lines logs (``-`` for standard input, ``.gz`` files decompressed as
they are read) line by line, and prints the figures per time bucket and provider / model /
consumer as text, or as JSON with ``--json``; ``--png FILE`` also draws a chart. Exit
status: 0, or 2 for a usage error, a file that cannot be read, or ``--png`` without
matplotlib.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from aimw.report import chart, render
from aimw.report.aggregate import PERIOD_MS, Period, Report
from aimw.report.records import LineCounts, read_records

DESCRIPTION = (
    "The JSON-lines log (aimw's, or Kong's file-log) read for a person: per UTC hour or day and "
    "provider / model / consumer, requests, errors by Anthropic error type, input / cached / output "
    "tokens, cost, time to first token and tokens per second (p50 / p95). Unreadable lines are "
    "skipped and counted. Exit status 2: a usage error, a log that cannot be read, --png without matplotlib."
)
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([mhdw])")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's arguments on ``parser``."""
    parser.add_argument(
        "logs",
        nargs="*",
        metavar="LOG",
        help="JSON-lines log files (aimw's or Kong's file-log); '-' reads standard input, "
        "*.gz is decompressed (default: $AIMW_LOG_PATH, else aimw.log)",
    )
    parser.add_argument("--by", choices=tuple(PERIOD_MS), default="hour", help="time bucket, UTC (default: hour)")
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only exchanges started at or after WHEN: an ISO date or time (UTC unless it has an "
        "offset: 2025-06-01, 2025-06-01T09:30, 2025-06-01T09:30+02:00) or a time ago (30m, 24h, 7d, 2w)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of text")
    parser.add_argument("--png", metavar="FILE", help="also draw tokens and latency over time (needs aimw[report])")


def parse_since(value: str, now_ms: float) -> float:
    """``--since``'s value as ms since the epoch.

    Raises:
        ValueError: neither an ISO date/time nor a relative ``<n>m|h|d|w``.
    """
    relative = _RELATIVE.fullmatch(value.strip())
    if relative:
        return now_ms - float(relative.group(1)) * _UNIT_MS[relative.group(2)]
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"--since {value!r}: expected an ISO date or time (2025-06-01T09:30) or a time ago (24h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() * 1000


def run(args: argparse.Namespace, *, now_ms: float | None = None) -> int:
    """Run the report for parsed ``args``; returns the exit status."""
    sources: list[str] = args.logs or [os.environ.get("AIMW_LOG_PATH") or "aimw.log"]
    period: Period = args.by
    try:
        since_ms = parse_since(args.since, time.time() * 1000 if now_ms is None else now_ms) if args.since else None
        if args.png:
            chart.check_available()  # before a long read
    except (ValueError, chart.ChartUnavailable) as exc:
        print(f"aimw report: {exc}", file=sys.stderr)
        return 2
    counts = LineCounts()
    try:
        with contextlib.ExitStack() as stack:
            streams = (stack.enter_context(_opened(source)) for source in sources)
            report = Report(period, counts).add_all(read_records(streams, counts, since_ms))
    except OSError as exc:
        print(f"aimw report: cannot read {exc.filename or 'the log'}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.buffer.write(render.as_json(report, sources=sources, since_ms=since_ms))
    else:
        sys.stdout.write(render.text(report, sources=sources, since_ms=since_ms))
    sys.stdout.flush()
    if counts.unreadable:
        print(f"aimw report: {counts.unreadable:,} unreadable lines skipped", file=sys.stderr)
    if args.png:
        try:
            chart.write_png(report, args.png, title=f"aimw report of {', '.join(sources)}")
        except OSError as exc:
            print(f"aimw report: cannot write {args.png}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"aimw report: chart written to {args.png}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _opened(source: str) -> Iterator[BinaryIO]:
    if source == "-":
        yield sys.stdin.buffer
    elif source.endswith(".gz"):
        with gzip.open(source, "rb") as stream:
            yield stream  # type: ignore[misc]  # GzipFile is a binary file
    else:
        with open(source, "rb") as stream:
            yield stream
