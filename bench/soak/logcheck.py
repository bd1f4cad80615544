"""The gateway's log against the exchanges the soak made: exactly one whole JSON line per
exchange (matched by its ``x-soak-exchange`` request header), with the status and reason its
kind must have, and the usage of what was generated.

Per kind (see :mod:`bench.soak.plan`):

- ``normal`` and ``hold``: status 200, no ``ai.proxy.meta.error``, ``completion_tokens`` and
  ``prompt_tokens`` the fake's usage (a held stream's: the tokens the client got); one the
  gateway answered with its own upstream timeout: the status the client got and a reason.
- stream faults (``reset``, ``stall_stream``, ``truncated``): status 200 (the stream had
  started), an error reason.
- ``stall_head``: 504; ``http_429`` / ``http_500`` / ``http_503``: 429 / 500 / 529; an error reason.
- departures: status 499, a reason naming the client, the ``ai`` block when the request
  reached the provider (``depart_head``, ``depart_stream``), and for ``depart_stream`` the
  output tokens streamed before the client left, marked ``usage.estimated`` (the fake's usage
  comes only at the end of its stream).

Problems are grouped by check: ``lines`` (missing, repeated, torn or unknown lines),
``status``, ``reason``, ``ai``, ``usage``; a departure's are also counted under
``departures`` (the 499 logging of issue 11).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.soak.checks import expected_status
from bench.soak.load import Ended
from bench.soak.plan import DEPARTURE_STATUS, HEADER, exchange_id

_KEPT = 10  # problems kept per check


@dataclass
class LogCheck:
    """The log's lines against the exchanges: counts, and problems by check."""

    lines: int = 0
    exchanges: int = 0
    statuses: Counter = field(default_factory=Counter)  # "kind status" -> lines
    problems: dict[str, list[str]] = field(default_factory=dict)
    problem_counts: Counter = field(default_factory=Counter)
    stream_fault_usage: Counter = field(default_factory=Counter)  # broken streams with / without output tokens
    late_departures: int = 0  # clients that left after the fake had ended their answer (checked as whole)

    def problem(self, check: str, text: str) -> None:
        self.problem_counts[check] += 1
        kept = self.problems.setdefault(check, [])
        if len(kept) < _KEPT:
            kept.append(text)

    def as_dict(self) -> dict:
        return {
            "lines": self.lines,
            "exchanges": self.exchanges,
            "statuses": dict(sorted(self.statuses.items())),
            "problem_counts": dict(self.problem_counts),
            "problems": self.problems,
            "stream_fault_usage": dict(self.stream_fault_usage),
            "late_departures": self.late_departures,
        }


def check_log(path: Path, exchanges: dict[int, Ended], answered_ns: dict[int, int] | None = None) -> LogCheck:
    """Check the log at ``path`` against ``exchanges`` (id -> every exchange made: its plan,
    the tokens and status its client got). ``answered_ns``: when the fake ended the answer
    of a departure (the fake's clock is this one): a client that left after that left too
    late (a busy client reading late), and the gateway rightly logged a whole answer."""
    check = LogCheck(exchanges=len(exchanges))
    answered_ns = answered_ns or {}
    data = path.read_bytes() if path.exists() else b""
    if data and not data.endswith(b"\n"):
        check.problem("lines", f"the log ends without a newline: {data[-80:]!r}")
    by_id: dict[int, list[dict]] = {}
    for number, raw in enumerate(data.splitlines(), 1):
        check.lines += 1
        try:
            line = json.loads(raw)
            headers = line["request"]["headers"]
        except (ValueError, KeyError, TypeError):
            check.problem("lines", f"line {number} is not a whole JSON log line: {raw[:120]!r}")
            continue
        found = exchange_id(headers.get(HEADER))
        if found is None or found not in exchanges:
            check.problem("lines", f"line {number} belongs to no exchange of the soak: {raw[:120]!r}")
            continue
        by_id.setdefault(found, []).append(line)
    for plan_id, ended in exchanges.items():
        plan, lines = ended.plan, by_id.get(plan_id, [])
        if len(lines) != 1:
            check.problem("lines", f"exchange {plan_id} ({plan.kind}) has {len(lines)} log lines")
            if plan.departs:
                check.problem_counts["departures"] += 1
            continue
        late = plan.departs and ended.left_ns > answered_ns.get(plan_id, ended.left_ns)
        check.late_departures += late
        _check_line(check, ended, lines[0], whole=late)
    return check


def _check_line(check: LogCheck, ended: Ended, line: dict, *, whole: bool) -> None:
    """One exchange's line; ``whole``: a departure whose answer the gateway sent whole."""
    plan = ended.plan
    departed = plan.departs and not whole
    status = line.get("response", {}).get("status")
    check.statuses[f"{plan.kind} {status}"] += 1
    proxy = line.get("ai", {}).get("proxy")
    meta = proxy.get("meta", {}) if isinstance(proxy, dict) else {}
    usage = proxy.get("usage", {}) if isinstance(proxy, dict) else {}
    reason = meta.get("error") or line.get("error")
    where = f"exchange {plan.id} ({plan.kind})"
    before = sum(check.problem_counts.values())
    # the status the client got (a timed-out exchange's 504 too), a departure's 499
    expected = DEPARTURE_STATUS if departed else 200 if whole else ended.status or expected_status(plan)
    if status != expected:
        check.problem("status", f"{where}: logged status {status}, expected {expected}")
    if whole or (plan.kind in ("normal", "hold") and not ended.timed_out):
        if reason:
            check.problem("reason", f"{where}: an error reason on a good exchange: {reason!r}")
        tokens = plan.tokens if whole else ended.tokens
        got = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
        if got != (plan.prompt_tokens, tokens):
            check.problem("usage", f"{where}: usage {got}, expected {(plan.prompt_tokens, tokens)}")
    elif not isinstance(reason, str) or not reason:
        check.problem("reason", f"{where}: no error reason")
    elif departed and "client" not in reason.lower():
        check.problem("reason", f"{where}: the reason {reason!r} does not say the client left")
    if plan.reaches_provider and proxy is None:
        check.problem("ai", f"{where}: no ai block although the request reached the provider")
    if (
        departed
        and plan.kind == "depart_stream"
        and (not usage.get("completion_tokens") or usage.get("estimated") is not True)
    ):
        check.problem(
            "usage", f"{where}: usage {usage} for the {plan.at} tokens streamed before the client left (an estimate)"
        )
    if plan.kind in ("reset", "stall_stream", "truncated"):
        check.stream_fault_usage["with output tokens" if usage.get("completion_tokens") else "without"] += 1
    if departed and sum(check.problem_counts.values()) > before:
        check.problem_counts["departures"] += 1
