"""The closed-loop load generator: ``concurrency`` keep-alive connections, each sending
its next request as soon as the previous answer ended, for ``warmup`` then
``duration`` seconds, to one loopback target.

Every response is checked for status 200 and a complete stream end; one in
``validate_every`` is fully validated (:mod:`bench.validate`) against the fake's
:class:`~bench.answer.Answer`. Over the measured window it reports throughput, latency,
time to first byte / first text delta, SSE events per second, and, read from /proc,
the CPU time and peak RSS of the server under test (its whole process tree), the CPU
of the fake upstream and of the load generator itself, so a run shows whether anything
but the server under test was the bottleneck.

Run as a process by the runner (JSON config in, JSON result on stdout, a live progress
line on stderr):

    python -m bench.loadgen '{"port": 8000, "api": "anthropic", "stream": true, "concurrency": 32}'
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field

from bench import procstat
from bench.answer import DEFAULT_CHUNKS, MODEL, Answer
from bench.http_client import ClientConnection, Response
from bench.net import LOOPBACK_HOST, require_loopback, run
from bench.validate import (
    check_anthropic_message,
    check_anthropic_stream,
    check_openai_completion,
    check_openai_stream,
    count_events,
)

MAX_CONCURRENCY = 1024
MAX_DURATION = 600.0  # seconds, for the window and for the warm-up
_RAMP_SECONDS_PER_CONNECTION = 0.01  # connections open one by one during the first half of the warm-up
_RSS_POLL_INTERVAL = 0.05  # seconds
_PROGRESS_INTERVAL = 0.5  # seconds
_EXAMPLES_KEPT = 5

# How the first text delta shows in a body piece, per API.
_TEXT_MARKERS = {
    "anthropic": re.compile(rb'"type"\s*:\s*"text_delta"'),
    "openai": re.compile(rb'"content"\s*:\s*"[^"]'),
}
# What the end of every complete stream carries, per API.
_STREAM_ENDS = {"anthropic": b"message_stop", "openai": b"[DONE]"}
_CHECKS = {
    ("anthropic", True): check_anthropic_stream,
    ("anthropic", False): check_anthropic_message,
    ("openai", True): check_openai_stream,
    ("openai", False): check_openai_completion,
}


@dataclass
class LoadConfig:
    """One measurement. Units: seconds for times.

    api: "anthropic" (POST /v1/messages) or "openai" (POST /v1/chat/completions).
    chunks: the fake upstream's chunk count (what the answers must contain).
    validate_every: fully validate one response in this many (1: all).
    timeout: seconds one request may take before it is aborted and counted as an error.
    server_pid / upstream_pid: process trees whose CPU (and, for the server, RSS) is read.
    """

    port: int
    api: str = "anthropic"
    stream: bool = False
    concurrency: int = 1
    duration: float = 10.0
    warmup: float = 2.0
    chunks: int = DEFAULT_CHUNKS
    host: str = LOOPBACK_HOST
    path: str = ""
    validate_every: int = 10
    timeout: float = 30.0
    label: str = ""
    server_pid: int | None = None
    upstream_pid: int | None = None
    progress: bool = False
    loop: str = "auto"

    def __post_init__(self) -> None:
        require_loopback(self.host)
        if self.api not in _TEXT_MARKERS:
            raise ValueError(f"api must be 'anthropic' or 'openai', not {self.api!r}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be within 1..{MAX_CONCURRENCY}, got {self.concurrency}")
        if not 0 < self.duration <= MAX_DURATION or not 0 <= self.warmup <= MAX_DURATION:
            raise ValueError(f"duration must be within (0, {MAX_DURATION}] s and warm-up within [0, {MAX_DURATION}] s")
        if self.validate_every < 1:
            raise ValueError("validate_every must be at least 1")
        self.path = self.path or ("/v1/messages" if self.api == "anthropic" else "/v1/chat/completions")


def build_request(config: LoadConfig) -> bytes:
    """The one request every connection sends, encoded once (HTTP/1.1 bytes)."""
    prompt = f"Answer in {config.chunks} short chunks."
    if config.api == "anthropic":
        body: dict = {"model": MODEL, "max_tokens": 4096, "messages": [{"role": "user", "content": prompt}]}
        auth = b"x-api-key: bench-key\r\nanthropic-version: 2023-06-01\r\n"
    else:
        body = {"model": MODEL, "max_tokens": 4096, "messages": [{"role": "user", "content": prompt}]}
        if config.stream:
            body["stream_options"] = {"include_usage": True}
        auth = b"authorization: Bearer bench-key\r\n"
    if config.stream:
        body["stream"] = True
    payload = json.dumps(body, separators=(",", ":")).encode()
    return (
        b"POST %s HTTP/1.1\r\nhost: %s:%d\r\ncontent-type: application/json\r\naccept: %s\r\n"
        b"%scontent-length: %d\r\n\r\n%s"
        % (
            config.path.encode(),
            config.host.encode(),
            config.port,
            b"text/event-stream" if config.stream else b"application/json",
            auth,
            len(payload),
            payload,
        )
    )


def percentiles_ms(samples_ns: list[int]) -> dict | None:
    """p50, p90, p99, mean and max of ``samples_ns`` (nanoseconds) in milliseconds (nearest rank)."""
    if not samples_ns:
        return None
    ordered = sorted(samples_ns)

    def rank(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))] / 1e6

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "mean": sum(ordered) / len(ordered) / 1e6,
        "max": ordered[-1] / 1e6,
    }


@dataclass
class _Tally:
    """What the measured window collected (times in ns)."""

    latencies: list[int] = field(default_factory=list)
    first_bytes: list[int] = field(default_factory=list)
    first_texts: list[int] = field(default_factory=list)
    events: int = 0
    errors: int = 0


class LoadRun:
    """One closed-loop run; :meth:`run` returns the result as a JSON-ready dict."""

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.request = build_request(config)
        self.answer = Answer.of(config.chunks)
        self.check = _CHECKS[(config.api, config.stream)]
        self.stream_end = _STREAM_ENDS[config.api] if config.stream else None
        self.text_marker = _TEXT_MARKERS[config.api] if config.stream else None
        self.tally = _Tally()
        self.window_start_ns = 0  # 0 until the warm-up ended
        self.window_end_ns = 0  # 0 until the window closed
        self.stopping = False
        self.completed = 0  # every response, warm-up included (the sampling counter)
        self.warmup_requests = 0
        self.validated = 0
        self.invalid = 0
        self.invalid_examples: list[list[str]] = []
        self.error_counts: dict[str, int] = {}
        self.connections: list[ClientConnection | None] = [None] * config.concurrency
        self.rss_peak = 0
        self.server_pids: list[int] = []

    async def run(self) -> dict:
        config = self.config
        if config.server_pid:
            self.server_pids = procstat.process_tree(config.server_pid)
        monitor = asyncio.create_task(self._poll_rss())
        progress = asyncio.create_task(self._show_progress()) if config.progress else None
        watchdog = asyncio.create_task(self._abort_late_requests())
        started = time.perf_counter()
        workers = []
        for slot in range(config.concurrency):  # ramp up: a burst of connects lands on one server worker
            workers.append(asyncio.create_task(self._work(slot)))
            await asyncio.sleep(self.ramp_spacing)
        await asyncio.sleep(max(0.0, started + config.warmup - time.perf_counter()))
        before = self._cpu_snapshot()
        self.window_start_ns = time.perf_counter_ns()
        await asyncio.sleep(config.duration)
        self.window_end_ns = time.perf_counter_ns()
        after = self._cpu_snapshot()
        self.stopping = True
        await asyncio.wait(workers, timeout=config.timeout + 1)
        for task in (monitor, progress, watchdog, *workers):
            if task is not None:
                task.cancel()
        for connection in self.connections:
            if connection is not None:
                connection.close()
        if progress is not None:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
        return self._result(before, after)

    @property
    def ramp_spacing(self) -> float:
        """Seconds between two connections opening: the ramp takes at most half the warm-up,
        so that a multi-process server's workers each get a share of the connections."""
        config = self.config
        return min(0.5 * config.warmup, _RAMP_SECONDS_PER_CONNECTION * config.concurrency) / config.concurrency

    async def _connect(self, slot: int) -> ClientConnection | None:
        try:
            connection = await ClientConnection.open(self.config.host, self.config.port, self.text_marker)
        except OSError as exc:
            self._count_error(f"connect: {type(exc).__name__}: {exc}")
            connection = None
        self.connections[slot] = connection
        return connection

    async def _work(self, slot: int) -> None:
        request, tally = self.request, self.tally
        while not self.stopping:
            connection = self.connections[slot]
            if connection is None or not connection.is_open:
                connection = await self._connect(slot)
                if connection is None:
                    await asyncio.sleep(0.05)
                    continue
            try:
                response = await connection.send(request)
            except Exception as exc:
                if not self.stopping:
                    self._count_error(f"{type(exc).__name__}: {exc}")
                continue
            self.completed += 1
            problem = self._quick_problem(response)
            sampled = problem is None and self.completed % self.config.validate_every == 0
            if sampled:
                self._validate(response)
            in_window = self.window_start_ns and not self.window_end_ns and response.done_ns >= self.window_start_ns
            if not in_window:
                if not self.window_start_ns:
                    self.warmup_requests += 1
                if problem is not None and not self.window_end_ns:
                    self._count_error(problem)
                continue
            if problem is not None:
                self._count_error(problem)
                continue
            tally.latencies.append(response.done_ns - response.sent_ns)
            tally.first_bytes.append(response.first_byte_ns - response.sent_ns)
            if self.stream_end is not None:
                tally.events += count_events(response.body)
                if response.first_text_ns:
                    tally.first_texts.append(response.first_text_ns - response.sent_ns)

    def _quick_problem(self, response: Response) -> str | None:
        """What is wrong with any response at a glance (None: nothing)."""
        if response.status != 200:
            return f"status {response.status}: {response.body[:120]!r}"
        if self.stream_end is not None and self.stream_end not in response.body[-200:]:
            return f"stream does not end with {self.stream_end.decode()}"
        return None

    def _validate(self, response: Response) -> None:
        self.validated += 1
        problems = self.check(response.body, self.answer)
        if problems:
            self.invalid += 1
            if len(self.invalid_examples) < _EXAMPLES_KEPT:
                self.invalid_examples.append(problems[:10])

    def _count_error(self, kind: str) -> None:
        if self.window_start_ns and not self.window_end_ns:
            self.tally.errors += 1
        key = kind[:200]
        if key in self.error_counts or len(self.error_counts) < 20:
            self.error_counts[key] = self.error_counts.get(key, 0) + 1

    def _cpu_snapshot(self) -> dict:
        config = self.config
        if config.server_pid:
            self.server_pids = procstat.process_tree(config.server_pid)
        machine_busy, _ = procstat.machine_cpu_seconds()
        return {
            "wall": time.perf_counter(),
            "machine_busy": machine_busy,
            "loadgen": time.process_time(),
            "server_by_pid": {pid: procstat.cpu_seconds(pid) for pid in self.server_pids},
            "upstream": procstat.tree_cpu_seconds(procstat.process_tree(config.upstream_pid))
            if config.upstream_pid
            else 0.0,
        }

    async def _poll_rss(self) -> None:
        if not self.config.server_pid:
            return
        while True:
            self.rss_peak = max(self.rss_peak, procstat.tree_rss_bytes(self.server_pids))
            await asyncio.sleep(_RSS_POLL_INTERVAL)

    async def _abort_late_requests(self) -> None:
        timeout_ns = int(self.config.timeout * 1e9)
        while True:
            await asyncio.sleep(min(1.0, self.config.timeout / 4))
            now = time.perf_counter_ns()
            for connection in self.connections:
                since = connection.in_flight_since_ns if connection is not None else 0
                if since and now - since > timeout_ns:
                    connection.abort(f"no complete answer within {self.config.timeout} s")

    async def _show_progress(self) -> None:
        config = self.config
        started = time.perf_counter()
        while True:
            await asyncio.sleep(_PROGRESS_INTERVAL)
            elapsed = time.perf_counter() - started
            if self.window_start_ns:
                window = (time.perf_counter_ns() - self.window_start_ns) / 1e9
                count = len(self.tally.latencies)
                phase = f"{window:5.1f}/{config.duration:g} s  {count:8d} req  {count / max(window, 1e-9):9.1f} req/s"
            else:
                phase = f"warm-up {elapsed:4.1f}/{config.warmup:g} s  {self.completed:8d} req"
            errors = f"  {self.tally.errors} errors" if self.tally.errors else ""
            sys.stderr.write(f"\r\x1b[K  {config.label:<34} {phase}{errors}")
            sys.stderr.flush()

    def _result(self, before: dict, after: dict) -> dict:
        tally = self.tally
        window = after["wall"] - before["wall"]
        requests = len(tally.latencies)
        by_pid = {
            pid: seconds - before["server_by_pid"].get(pid, 0.0) for pid, seconds in after["server_by_pid"].items()
        }
        server_cpu = sum(by_pid.values())
        upstream_cpu = after["upstream"] - before["upstream"]
        loadgen_cpu = after["loadgen"] - before["loadgen"]
        others_cpu = after["machine_busy"] - before["machine_busy"] - server_cpu - upstream_cpu - loadgen_cpu
        return {
            "config": asdict(self.config),
            "window_s": window,
            "requests": requests,
            "warmup_requests": self.warmup_requests,
            "errors": tally.errors,
            "error_counts": self.error_counts,
            "validated": self.validated,
            "invalid": self.invalid,
            "invalid_examples": self.invalid_examples,
            "req_per_s": requests / window,
            "events": tally.events,
            "events_per_s": tally.events / window if self.stream_end else None,
            "latency_ms": percentiles_ms(tally.latencies),
            "first_byte_ms": percentiles_ms(tally.first_bytes),
            "first_text_ms": percentiles_ms(tally.first_texts) if self.stream_end else None,
            "server_processes": len(self.server_pids),
            "server_cpu_s": server_cpu,
            "server_cpu_percent": 100 * server_cpu / window,
            "server_cpu_percent_by_process": sorted(
                (100 * seconds / window for seconds in by_pid.values()), reverse=True
            ),
            "server_cpu_ms_per_request": 1e3 * server_cpu / requests if requests else None,
            "server_cpu_us_per_event": 1e6 * server_cpu / tally.events if tally.events else None,
            "server_rss_peak_bytes": self.rss_peak or None,
            "upstream_cpu_percent": 100 * upstream_cpu / window if self.config.upstream_pid else None,
            "loadgen_cpu_percent": 100 * loadgen_cpu / window,
            "others_cpu_percent": max(0.0, 100 * others_cpu / window),
        }


async def run_load(config: LoadConfig) -> dict:
    """Run one measurement in this process's event loop; returns the result dict."""
    return await LoadRun(config).run()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        sys.stderr.write(__doc__)
        sys.exit(2)
    config = LoadConfig(**json.loads(argv[0]))
    result = run(run_load(config), config.loop)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
