"""``--png FILE``: the report's tokens and latency over time, drawn with matplotlib (the
optional extra ``aimw[report]``; imported only when a chart is asked for).

Two panels over the time buckets, every group summed: input (cached included), cached and
output tokens per bucket; time to first token p50 / p95 (ms) per bucket.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from types import ModuleType

from aimw.report.aggregate import Report

MISSING_MATPLOTLIB = "--png needs matplotlib: pip install 'aimw[report]'"


class ChartUnavailable(RuntimeError):
    """matplotlib is not installed (the message says how to install it)."""


def _pyplot() -> ModuleType:
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError as exc:
        raise ChartUnavailable(MISSING_MATPLOTLIB) from exc
    matplotlib.use("Agg")  # files only, never a window
    return importlib.import_module("matplotlib.pyplot")


def check_available() -> None:
    """Raise :class:`ChartUnavailable` now if matplotlib is missing."""
    _pyplot()


def write_png(report: Report, path: str, *, title: str) -> None:
    """Draw ``report`` into the PNG file ``path``.

    Raises:
        ChartUnavailable: matplotlib is not installed.
        OSError: ``path`` cannot be written.
    """
    plt = _pyplot()
    buckets = report.per_bucket()
    times = [datetime.fromtimestamp(start / 1000, UTC) for start, _ in buckets]
    figure, (tokens, latency) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, layout="constrained")
    try:
        figure.suptitle(title)
        tokens.plot(times, [stats.prompt_tokens for _, stats in buckets], marker="o", label="input (cached included)")
        tokens.plot(times, [stats.cached_tokens for _, stats in buckets], marker="o", label="cached")
        tokens.plot(times, [stats.completion_tokens for _, stats in buckets], marker="o", label="output")
        tokens.set_ylabel(f"tokens per {report.period}")
        tokens.legend(loc="upper left")
        for percent in (50, 95):
            values = [stats.time_to_first_token_ms.percentile(percent) for _, stats in buckets]
            latency.plot(
                times,
                [float("nan") if v is None else v for v in values],
                marker="o",
                label=f"time to first token p{percent}",
            )
        latency.set_ylabel("ms")
        latency.set_xlabel(f"{report.period} (UTC)")
        latency.legend(loc="upper left")
        figure.autofmt_xdate()
        figure.savefig(path, format="png", dpi=100)
    finally:
        plt.close(figure)
