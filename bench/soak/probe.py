"""What the soak reads of the machine and the gateway: the gateway workers' own snapshots
(asyncio tasks, file descriptors, RSS, upstream pool; through :mod:`bench.soak.app`'s SIGUSR1
hook), RSS sampled from /proc while a round runs, the kernel's listen-queue overflow
counters, and the TCP connections open to a port.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from bench import procstat

SNAPSHOT_TIMEOUT = 10.0  # seconds a worker may take to answer SIGUSR1 (a loaded loop)
_HELD_STATES = ("01", "08")  # ESTABLISHED, CLOSE_WAIT (the peer closed; this end has not yet)


@dataclass(frozen=True)
class Snapshot:
    """The gateway's workers at one moment, summed: ``tasks`` (asyncio), ``fds`` (open file
    descriptors), ``rss`` / ``peak_rss`` (bytes: VmRSS, VmHWM), the upstream pool's ``idle``
    and ``in_use`` connections."""

    tasks: int
    fds: int
    rss: int
    peak_rss: int
    idle: int
    in_use: int

    def as_dict(self) -> dict:
        return {
            "tasks": self.tasks,
            "fds": self.fds,
            "rss_mb": round(self.rss / 2**20, 1),
            "peak_rss_mb": round(self.peak_rss / 2**20, 1),
            "pool_idle": self.idle,
            "pool_in_use": self.in_use,
        }


def worker_pids(debug_dir: Path) -> list[int]:
    """The gateway workers that installed the hook (each wrote ``worker-<pid>``)."""
    return sorted(int(path.name.split("-", 1)[1]) for path in debug_dir.glob("worker-*"))


async def snapshot(debug_dir: Path, pids: list[int]) -> Snapshot:
    """SIGUSR1 each worker and sum what they write (``snapshot-<pid>.json``, its ``n``
    counting the signals answered). Raises TimeoutError when a worker does not answer."""
    before = {pid: _read(debug_dir, pid).get("n", 0) for pid in pids}
    for pid in pids:
        os.kill(pid, signal.SIGUSR1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SNAPSHOT_TIMEOUT
    answers: dict[int, dict] = {}
    while len(answers) < len(pids):
        for pid in pids:
            value = _read(debug_dir, pid)
            if value.get("n", 0) > before[pid]:
                answers[pid] = value
        if len(answers) < len(pids):
            if loop.time() > deadline:
                raise TimeoutError(f"gateway workers {sorted(set(pids) - set(answers))} did not answer SIGUSR1")
            await asyncio.sleep(0.02)
    values = list(answers.values())
    return Snapshot(
        *(sum(value[name] for value in values) for name in ("tasks", "fds", "rss", "peak_rss", "idle", "in_use"))
    )


def _read(debug_dir: Path, pid: int) -> dict:
    try:
        return json.loads((debug_dir / f"snapshot-{pid}.json").read_text())
    except (OSError, ValueError):
        return {}


class RssSampler:
    """The summed RSS of ``pids`` every ``interval`` seconds while running; ``peak`` bytes."""

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        self.pids = pids
        self.interval = interval
        self.peak = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self.peak = procstat.tree_rss_bytes(self.pids)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, procstat.tree_rss_bytes(self.pids))
            await asyncio.sleep(self.interval)

    def stop(self) -> int:
        if self._task is not None:
            self._task.cancel()
        self.peak = max(self.peak, procstat.tree_rss_bytes(self.pids))
        return self.peak


def listen_overflows() -> dict[str, int]:
    """The kernel's TcpExt ListenOverflows and ListenDrops (this network namespace, since boot)."""
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines() if line.startswith("TcpExt:")]
    names, values = lines[0][1:], lines[1][1:]
    counters = dict(zip(names, map(int, values), strict=True))
    return {name: counters.get(name, 0) for name in ("ListenOverflows", "ListenDrops")}


def tcp_sockets(*, local_port: int | None = None, remote_port: int | None = None) -> int:
    """Open TCP sockets (ESTABLISHED or CLOSE_WAIT: the ones a process still holds) with that
    local and/or remote port, IPv4 and IPv6, from /proc/net/tcp*."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] not in _HELD_STATES:
                continue
            if local_port is not None and int(fields[1].rsplit(":", 1)[1], 16) != local_port:
                continue
            if remote_port is not None and int(fields[2].rsplit(":", 1)[1], 16) != remote_port:
                continue
            count += 1
    return count
