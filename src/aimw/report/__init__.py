"""``aimw report``: the JSON-lines log (aimw's or Kong's file-log) read for a person.

Per time bucket (UTC hour or day) and provider / model / consumer: requests, errors by
Anthropic error type, input / cached / output tokens, cost, time to first token and tokens
per second (p50 / p95). The log is streamed line by line in constant memory; unreadable lines
are skipped and counted. ``python -m aimw report --help`` lists the options.
"""

from aimw.report.aggregate import GroupKey, GroupStats, Report
from aimw.report.histogram import LogHistogram
from aimw.report.records import LineCounts, Record, read_records

__all__ = ["GroupKey", "GroupStats", "LineCounts", "LogHistogram", "Record", "Report", "read_records"]
