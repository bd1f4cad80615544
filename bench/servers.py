"""Start, probe and stop the processes of a run: the servers under test and the fake upstream.

Each process is started in its own session (so its whole group can be stopped by its
id), optionally pinned to CPUs with ``sched_setaffinity`` (``taskset -c``), with its
output sent to a log file under the run's raw directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.net import LOOPBACK_HOST, require_loopback

READY_TIMEOUT = 60.0  # seconds a server may take to answer its first request (LiteLLM takes ~10)
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL


class ServerFailed(RuntimeError):
    """A server exited, or did not answer in time; the message ends with its log's tail."""


@dataclass(frozen=True)
class ServerSpec:
    """How to run one server: argv, extra environment, working directory, port it
    listens on, CPUs to pin it to (None: not pinned) and its log file."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    cpus: frozenset[int] | None = None
    host: str = LOOPBACK_HOST

    def command_line(self) -> str:
        """The command as a person would type it (for the report)."""
        pin = f"taskset -c {','.join(map(str, sorted(self.cpus)))} " if self.cpus else ""
        env = " ".join(f"{name}={value}" for name, value in self.env.items())
        return f"{env + ' ' if env else ''}{pin}{' '.join(self.argv)}"


class Server:
    """A running server process (see :func:`start`)."""

    def __init__(self, spec: ServerSpec, process: subprocess.Popen) -> None:
        self.spec = spec
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{self.spec.host}:{self.spec.port}"

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        """Block until the server answers an HTTP request (any status); returns the seconds it took."""
        started = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise ServerFailed(f"{self.spec.name} exited with status {self.process.returncode}{self._log_tail()}")
            if _answers_http(self.spec.host, self.spec.port):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise ServerFailed(f"{self.spec.name} did not answer within {timeout:g} s{self._log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL it after STOP_TIMEOUT seconds."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
        _signal_group(self.process.pid, signal.SIGKILL)  # stragglers of the group (workers)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            tail = self.spec.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"\n--- last lines of {self.spec.log_path} ---\n" + "\n".join(tail)


def start(spec: ServerSpec) -> Server:
    """Start ``spec``'s process (not waiting for it to be ready)."""
    require_loopback(spec.host)
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(spec.log_path, "ab")  # noqa: SIM115 - the child keeps it; closed when we return
    cpus = spec.cpus

    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    try:
        process = subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env={**os.environ, **spec.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=pin if cpus else None,
        )
    finally:
        log.close()
    return Server(spec, process)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)  # the group we created with start_new_session: its id is the child's pid


def _answers_http(host: str, port: int) -> bool:
    """Whether ``host:port`` answers ``HEAD /`` with an HTTP status line within a second."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as probe:
            probe.sendall(b"HEAD / HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n\r\n" % host.encode())
            return probe.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False
