"""One soak run: the fake router and the gateway (:mod:`bench.soak.servers`), a warm-up and
an idle baseline, rounds of load with faults and departures (:mod:`bench.soak.load`), a
settle after each (looking for what leaked), a normal request, a graceful stop with streams
in flight, then the log checked line by line. Returns the summary (:mod:`bench.soak.report`
reads it; ``python -m bench.soak`` writes it as ``summary.json``).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import procstat
from bench.net import LOOPBACK_HOST, free_port
from bench.servers import Server, start
from bench.soak.corpus import Requests
from bench.soak.load import Limits, Load, RoundShape, Tally
from bench.soak.logcheck import check_log
from bench.soak.plan import Planner
from bench.soak.probe import RssSampler, Snapshot, listen_overflows, snapshot, tcp_sockets
from bench.soak.servers import clean_environment, fake_stats, graceful_timeout, open_streams, specs, until, wait_up


@dataclass
class SoakConfig:
    """A run. Times in seconds.

    streams: clients per round, each first holding one stream: all are held at once.
    hold: how long all of them are held; hold_gap_ms: their token gap (0: 20-50 ms).
    duration: the fault mix runs this long after that, on ``mix_clients`` clients (None: all).
    pending: held streams waiting for their answer's head at once during the ramp.
    hang_after / head_timeout: an exchange hangs after this long without a byte once its answer
    began (None: ``upstream_timeout`` + 3 s) / without its answer's head.
    graceful_streams: streams in flight when SIGTERM comes, released ``graceful_stream`` later.
    """

    output: Path
    streams: int = 1000
    workers: int = 1
    rounds: int = 2
    recipe: str = "huggingface"
    hold: float = 3.0
    hold_gap_ms: int = 0
    duration: float = 10.0
    mix_clients: int | None = None
    pending: int = 64
    upstream_timeout: float = 2.0
    hang_after: float | None = None
    head_timeout: float = 30.0
    settle_timeout: float = 20.0
    graceful_streams: int = 100
    graceful_stream: float = 2.0
    seed: int = 11


class Run:
    """The servers and the load of one soak, and what each phase found."""

    def __init__(self, config: SoakConfig, fake: Server, gateway: Server, pids: list[int]) -> None:
        self.config = config
        self.fake, self.gateway, self.pids = fake, gateway, pids
        self.ports = (gateway.spec.port, fake.spec.port)
        self.debug_dir = config.output / "debug"
        hang_after = config.hang_after if config.hang_after is not None else config.upstream_timeout + 3
        limits = Limits(hang_after, config.head_timeout, config.pending)
        self.load = Load(
            LOOPBACK_HOST, gateway.spec.port, Requests(LOOPBACK_HOST, gateway.spec.port), Planner(config.seed), limits
        )

    async def one(self, tokens: int) -> None:
        """One normal exchange on its own connection, closed after."""
        connection, _ = await self.load.exchange(None, self.load.planner.normal(tokens))
        if connection is not None and connection.transport is not None:
            connection.transport.close()

    async def settle(self, baseline: Snapshot | None) -> dict:
        """Wait (at most ``settle_timeout``) until nothing the load used is still held, and
        return what is held then (leaks): no client connection left at the gateway (Hypercorn
        keeps one it saw closed until its keep_alive_timeout), upstream connections all idle
        in the pool, and against ``baseline`` the same asyncio tasks and file descriptors (idle
        pool connections apart: aiohttp keeps them 5 s)."""
        port, fake_port = self.ports
        started = time.monotonic()
        while True:
            snap = await snapshot(self.debug_dir, self.pids)
            fake = await fake_stats(fake_port)
            held = {
                "client_connections_open": tcp_sockets(local_port=port),
                "pool_in_use": snap.in_use,
                "upstream_streams_open": fake["streams"],
                "upstream_connections_not_idle": fake["connections"] - snap.idle,
            }
            if baseline is not None:
                held["tasks"] = snap.tasks - baseline.tasks
                held["fds"] = (snap.fds - snap.idle) - (baseline.fds - baseline.idle)
            leaks = {name: value for name, value in held.items() if value}
            elapsed = time.monotonic() - started
            if not leaks or elapsed > self.config.settle_timeout:
                return {
                    "seconds": round(elapsed, 1),
                    "gateway": snap.as_dict(),
                    "upstream_connections": fake["connections"],
                    "tcp_to_upstream": tcp_sockets(remote_port=fake_port),
                    "leaks": leaks,
                }
            await asyncio.sleep(0.5)

    async def round(self, baseline: Snapshot) -> dict:
        """One round (:meth:`bench.soak.load.Load.round`): the workers' RSS sampled all along
        (the Hypercorn master apart), their snapshot with every stream held, the CPU each
        process used, then the settle against ``baseline``."""
        config, fake_port, plateau = self.config, self.ports[1], {}
        await fake_stats(fake_port, b"?reset=peaks")
        sampler = RssSampler(self.pids)
        sampler.start()
        cpu = _cpu(self.gateway, self.fake)

        async def held() -> int:
            return (await fake_stats(fake_port))["streams"]

        async def at_plateau() -> None:
            await asyncio.sleep(config.hold)
            plateau.update((await snapshot(self.debug_dir, self.pids)).as_dict())
            plateau["held_streams"] = await held()
            await fake_stats(fake_port, b"?release=holds")

        shape = RoundShape(config.streams, config.duration, config.hold_gap_ms, config.mix_clients)
        tally = await self.load.round(shape, held, at_plateau)
        peak_rss = sampler.stop()
        cpu = {name: round(value - cpu[name], 1) for name, value in _cpu(self.gateway, self.fake).items()}
        fake = await fake_stats(fake_port)
        return {
            "tally": tally.as_dict(),
            "held_streams": fake["peak_streams"],
            "peak_upstream_connections": fake["peak_connections"],
            "plateau": plateau,
            "peak_rss_mb": round(peak_rss / 2**20, 1),
            "cpu_s": cpu,
            "settled": await self.settle(baseline),
        }

    async def graceful_stop(self) -> dict:
        """``graceful_streams`` held streams; once the fake has all of them, SIGTERM Hypercorn,
        and ``graceful_stream`` seconds later (at most the graceful timeout less a second)
        release them: each must end whole, then Hypercorn exit."""
        config, load, fake_port = self.config, self.load, self.ports[1]
        load.tally = Tally()
        await fake_stats(fake_port, b"?reset=peaks")
        watchdog = asyncio.create_task(load.watch())
        plans = [load.planner.hold(config.hold_gap_ms) for _ in range(config.graceful_streams)]
        tasks = [asyncio.create_task(load.exchange(None, plan)) for plan in plans]
        in_flight = await open_streams(fake_port, len(plans), 60.0)
        signalled = time.monotonic()
        self.gateway.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(max(min(config.graceful_stream, graceful_timeout() - 1), 0))
        await fake_stats(fake_port, b"?release=holds")
        await asyncio.gather(*tasks, return_exceptions=True)
        streams_done = time.monotonic() - signalled
        await load.checked()
        await until(lambda: self.gateway.process.poll() is not None, graceful_timeout() + 15)
        watchdog.cancel()
        exited = self.gateway.process.poll()
        return {
            "streams": len(plans),
            "in_flight_at_sigterm": in_flight,
            "graceful_timeout_s": graceful_timeout(),
            "streams_done_s": round(streams_done, 2),
            "exit_s": round(time.monotonic() - signalled, 2) if exited is not None else None,
            "exit_code": exited,
            "tally": load.tally.as_dict(),
        }


def _cpu(gateway: Server, fake: Server) -> dict[str, float]:
    """CPU seconds used so far by the gateway (all its processes), the fake, this client."""
    return {
        "gateway": procstat.tree_cpu_seconds(procstat.process_tree(gateway.pid)),
        "fake_router": procstat.cpu_seconds(fake.pid),
        "client": time.process_time(),
    }


async def soak(config: SoakConfig) -> dict:
    """Run the soak; the summary as a dict (JSON-ready). Removes this process's AIMW_* and
    HUGGINGFACE_* variables (the servers get exactly the soak's settings)."""
    config.output.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(config.output / "debug", ignore_errors=True)  # a former run's worker files
    clean_environment()
    overflows_before = listen_overflows()
    ports = (free_port(), free_port())
    fake_spec, gateway_spec = specs(
        config.output, ports, recipe=config.recipe, workers=config.workers, streams=config.streams,
        upstream_timeout=config.upstream_timeout,
    )  # fmt: skip
    fake, gateway = start(fake_spec), start(gateway_spec)
    summary: dict = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}}
    try:
        run = Run(config, fake, gateway, await wait_up(fake, gateway, config.workers, config.output / "debug"))
        summary["body_bytes"] = run.load.requests.body_sizes
        await asyncio.gather(*(run.one(5) for _ in range(4 * config.workers)))
        summary["warm_up"] = run.load.tally.as_dict()
        idle = await run.settle(None)
        baseline = await snapshot(run.debug_dir, run.pids)
        summary["baseline"] = {**baseline.as_dict(), "settle_s": idle["seconds"], "not_settled": idle["leaks"]}
        summary["rounds"] = [await run.round(baseline) for _ in range(config.rounds)]
        run.load.tally = Tally()
        await run.one(10)
        summary["after"] = run.load.tally.as_dict()
        summary["graceful"] = await run.graceful_stop()
        fake_accounting = await fake_stats(ports[1], b"?fates=1")
        answered_ns = {int(key): ns for key, ns in fake_accounting.pop("answered_ns").items()}
        del fake_accounting["fates"]
        summary["fake_router"] = fake_accounting
    finally:
        gateway.stop()
        fake.stop()
    overflows_after = listen_overflows()
    summary["listen_overflows"] = {name: overflows_after[name] - overflows_before[name] for name in overflows_after}
    summary["log"] = check_log(config.output / "aimw.log", run.load.ended, answered_ns).as_dict()
    output = gateway_spec.log_path.read_text(errors="replace")
    summary["gateway_output"] = {"tracebacks": output.count("Traceback"), "lines": output.count("\n")}
    return summary
