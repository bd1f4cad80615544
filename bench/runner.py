"""One benchmark run: every scenario, every target in turn (interleaved), fresh servers.

For each scenario, each target is started afresh (pinned to CPU 0 in one-worker
scenarios), its idle RSS read once it answers, measured by a load generator process
(pinned to CPU 1 with the shared fake upstream), then stopped. The results, the
commands and the machine's facts go to ``<output>/raw/<run id>/results.json``; the
Markdown table and the PNG chart to ``<output>/results.md`` and ``<output>/results.png``.
With a baseline revision, its code is extracted and its imports checked before anything starts.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bench import procstat, servers
from bench.baseline import Baseline, check_baseline_imports, extract_baseline
from bench.loadgen import LoadConfig
from bench.net import free_port, loop_name
from bench.scenarios import SCENARIOS, Scenario
from bench.targets import REPO, TARGETS, RunContext, Target, baseline_target

SETTLE_SECONDS = 0.5  # after a server first answers, before its idle RSS is read


@dataclass
class RunOptions:
    """What to run. Times in seconds."""

    targets: list[str]
    scenarios: list[str]
    duration: float = 10.0
    warmup: float = 2.0
    chunks: int = 200
    rounds: int = 1
    validate_every: int = 10
    timeout: float = 30.0
    hypercorn_args: list[str] = field(default_factory=list)
    output_dir: Path = REPO / "bench" / "results"
    pin: bool = True
    chart: bool = True
    progress: bool = False
    loop: str = "auto"  # the fake upstream's and the load generator's event loop
    baseline: Baseline | None = None  # aimw at this revision, named in targets as baseline.name


@dataclass(frozen=True)
class CpuPlan:
    """Which CPUs the server under test and the drivers (fake upstream, load generator) use.

    The runner pins itself to the drivers' CPU, so every child it starts gets an explicit
    set: unpinned scenarios get every CPU, not the runner's.
    """

    server: frozenset[int] | None
    drivers: frozenset[int] | None
    every: frozenset[int]

    @classmethod
    def choose(cls, pin: bool) -> CpuPlan:
        every = frozenset(os.sched_getaffinity(0))
        if not pin or len(every) < 2:
            return cls(None, None, every)
        first, second = sorted(every)[:2]
        return cls(frozenset({first}), frozenset({second}), every)

    def for_server(self, scenario: Scenario) -> frozenset[int] | None:
        """The server's CPUs: its own when pinned, else every CPU (never this process's own)."""
        if self.server is None:
            return None
        return self.server if scenario.pinned else self.every

    def for_drivers(self, scenario: Scenario) -> frozenset[int]:
        return (self.drivers if scenario.pinned else None) or self.every


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class Run:
    """A benchmark run; :meth:`execute` returns the results dict (also written to disk)."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.run_id = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.raw_dir = options.output_dir / "raw" / self.run_id
        self.cpus = CpuPlan.choose(options.pin)
        self.upstream: servers.Server | None = None
        self.measurements: list[dict] = []

    def execute(self) -> dict:
        options = self.options
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        known = dict(TARGETS)
        if options.baseline is not None:
            known[options.baseline.name] = self._prepare_baseline(options.baseline)
        targets = [known[name] for name in options.targets]
        scenarios = [SCENARIOS[name] for name in options.scenarios]
        context = RunContext(
            python=sys.executable,
            raw_dir=self.raw_dir,
            upstream_url="",
            chunks=options.chunks,
            hypercorn_args=tuple(options.hypercorn_args),
            loop=options.loop,
        )
        started = time.monotonic()
        own_affinity = os.sched_getaffinity(0)
        if self.cpus.drivers:
            os.sched_setaffinity(0, self.cpus.drivers)  # keep this process off the server's CPU
        try:
            if any(target.proxies_upstream for target in targets):
                self.upstream = self._start_upstream()
                context = replace(context, upstream_url=self.upstream.url)
            for round_number in range(1, options.rounds + 1):
                for scenario in scenarios:
                    for target in targets:
                        if scenario.workers > 1 and not target.multiworker:
                            continue
                        record = self._measure(context, target, scenario, round_number)
                        self.measurements.append(record)
                        with open(self.raw_dir / "measurements.jsonl", "a") as partial:
                            partial.write(json.dumps(record) + "\n")  # kept if the run stops early
        finally:
            if self.upstream is not None:
                self.upstream.stop()
            os.sched_setaffinity(0, own_affinity)
        results = {
            "run_id": self.run_id,
            "seconds": time.monotonic() - started,
            "options": {**asdict(options), "output_dir": str(options.output_dir)},
            "machine": machine_facts(self.cpus, options.loop),
            "measurements": self.measurements,
        }
        (self.raw_dir / "results.json").write_text(json.dumps(results, indent=1))
        return results

    def _prepare_baseline(self, baseline: Baseline) -> Target:
        """Extract the baseline revision and check that its server would import it (BaselineError if not)."""
        source = extract_baseline(baseline, REPO, self.raw_dir)
        check_baseline_imports(sys.executable, source)
        _say(f"baseline {baseline.name} ({baseline.commit}) extracted to {source}; it imports aimw from there")
        return baseline_target(baseline, source)

    def _start_upstream(self) -> servers.Server:
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "bench.fake_upstream",
            "--port",
            str(port),
            "--chunks",
            str(self.options.chunks),
            "--loop",
            self.options.loop,
        ]
        spec = servers.ServerSpec(
            "upstream", argv, port, self.raw_dir / "upstream.log", cwd=REPO, cpus=self.cpus.drivers
        )
        upstream = servers.start(spec)
        upstream.wait_ready()
        _say(f"fake upstream on {upstream.url} (pid {upstream.pid}, CPUs {_cpus(spec.cpus)})")
        return upstream

    def _measure(self, context: RunContext, target: Target, scenario: Scenario, round_number: int) -> dict:
        options = self.options
        label = f"{scenario.name}.{target.name}" + (f".r{round_number}" if options.rounds > 1 else "")
        record: dict = {
            "scenario": scenario.name,
            "target": target.name,
            "round": round_number,
            "label": label,
            "workers": scenario.workers,
            "aimw_code": code_fingerprint(),
        }
        unavailable = target.available(context)
        if unavailable:
            _say(f"  {label:<34} skipped: {unavailable}")
            return {**record, "skipped": unavailable}
        spec = target.build(context, free_port(), scenario.workers, label)
        spec = replace(spec, cpus=self.cpus.for_server(scenario))
        record["command"] = spec.command_line()
        drivers = self.cpus.for_drivers(scenario)
        counted = self.upstream is not None and target.proxies_upstream
        if self.upstream is not None:
            os.sched_setaffinity(self.upstream.pid, drivers)
        counts_before = upstream_counts(self.upstream.url) if counted else {}
        server = servers.start(spec)
        try:
            record["startup_s"] = server.wait_ready()
            time.sleep(SETTLE_SECONDS)
            record["rss_idle_bytes"] = procstat.tree_rss_bytes(procstat.process_tree(server.pid))
            config = LoadConfig(
                port=spec.port,
                api=target.api,
                stream=scenario.stream,
                concurrency=scenario.concurrency,
                duration=options.duration,
                warmup=options.warmup,
                chunks=options.chunks,
                validate_every=options.validate_every,
                timeout=options.timeout,
                label=label,
                server_pid=server.pid,
                upstream_pid=self.upstream.pid if self.upstream is not None and target.proxies_upstream else None,
                progress=options.progress,
                loop=options.loop,
            )
            record.update(run_load_process(config, drivers))
        except (servers.ServerFailed, LoadgenFailed) as exc:
            record["failed"] = str(exc)
        finally:
            server.stop()
        if counted:
            counts = upstream_counts(self.upstream.url)
            record["upstream_counts"] = {name: counts[name] - counts_before.get(name, 0) for name in counts}
            if target.fetches_tokens:
                record["token_requests"] = record["upstream_counts"]["token_requests"]
        _say(summary_line(record))
        return record


def upstream_counts(url: str) -> dict[str, int]:
    """The fake upstream's counts since it started (``GET /bench/stats``, see UpstreamStats)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/bench/stats")
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


class LoadgenFailed(RuntimeError):
    """The load generator process failed; the message holds its output."""


def run_load_process(config: LoadConfig, cpus: frozenset[int]) -> dict:
    """Run :mod:`bench.loadgen` in its own process pinned to ``cpus``; returns its result."""
    limit = config.warmup + config.duration + config.timeout + 60
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "bench.loadgen", json.dumps(asdict(config))],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=None if config.progress else subprocess.PIPE,
            timeout=limit,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LoadgenFailed(f"load generator still running after {limit:g} s; stopped") from None
    if completed.returncode != 0:
        errors = (completed.stderr or b"").decode(errors="replace")[-2000:]
        raise LoadgenFailed(f"load generator exited with status {completed.returncode}\n{errors}")
    return json.loads(completed.stdout)


def summary_line(record: dict) -> str:
    """One line per measurement for the console."""
    label = f"  {record['label']:<34}"
    if "skipped" in record:
        return f"{label} skipped: {record['skipped']}"
    if "failed" in record:
        return f"{label} FAILED: {record['failed'].splitlines()[0]}"
    latency = record["latency_ms"] or {}
    parts = [f"{record['req_per_s']:9.1f} req/s", f"p50 {latency.get('p50', float('nan')):7.2f} ms"]
    if record.get("events_per_s"):
        parts.append(f"{record['events_per_s']:9.0f} events/s")
    parts.append(f"server CPU {record['server_cpu_percent']:3.0f}%")
    if "token_requests" in record:
        parts.append(f"{record['token_requests']} token fetches / {record.get('workers', 1)} workers")
    problems = record["errors"] + record["invalid"]
    parts.append(
        f"{record['errors']} errors, {record['invalid']}/{record['validated']} invalid"
        if problems
        else f"{record['validated']} validated"
    )
    return label + "  ".join(parts)


def machine_facts(cpus: CpuPlan, loop: str = "auto") -> dict:
    """What the numbers depend on: CPU, kernel, Python, package versions, git commit, pinning."""
    return {
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "event_loop": loop_name(loop),
        "load_average": os.getloadavg(),
        "server_cpus": sorted(cpus.server) if cpus.server else None,
        "driver_cpus": sorted(cpus.drivers) if cpus.drivers else None,
        "aimw_commit": _git_commit(),
        "versions": {name: _version(name) for name in ("aimw", "hypercorn", "httpx", "msgspec", "uvloop")}
        | {"litellm": _litellm_version()},
    }


def code_fingerprint() -> str:
    """A short hash of aimw's code as it is on disk now (src/ and recipes/ Python files), so a
    run can tell when the code changed between two of its measurements."""
    digest = hashlib.sha256()
    for path in sorted([*(REPO / "src").rglob("*.py"), *(REPO / "recipes").glob("*.py")]):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "recipes"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def _version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _litellm_version() -> str | None:
    site = REPO / "bench" / ".venv-litellm" / "lib"
    found = sorted(site.glob("python*/site-packages/litellm-*.dist-info"))
    return found[0].name.removeprefix("litellm-").removesuffix(".dist-info") if found else None


def _cpus(cpus: frozenset[int] | None) -> str:
    return ",".join(map(str, sorted(cpus))) if cpus else "any"
