"""A real ``redis-server`` on a free loopback port, for the tests that count in Redis: no
persistence, no protected mode, started and stopped (and killed and restarted, for the
outage tests) by the tests themselves. ``make test`` installs redis-server when missing;
the tests skip only when no binary exists.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.harness import free_port

START_TIMEOUT = 10.0  # seconds redis-server may take to accept connections
REDIS_SERVER = shutil.which("redis-server")


def require_redis_server() -> str:
    """The redis-server binary, or skip the test saying how to get one."""
    if REDIS_SERVER is None:
        pytest.skip("no redis-server binary on PATH (make test installs Debian's redis-server package)")
    return REDIS_SERVER


class RedisServer:
    """``redis-server`` on 127.0.0.1:``port`` (a free one by default), data in ``workdir``."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = require_redis_server()
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        """Start it (again, on the same port, empty) and wait until it accepts connections."""
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", str(self.workdir),
        ]  # fmt: skip
        with open(self.workdir / f"redis-{self.port}.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.accepting():
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not accept connections within {START_TIMEOUT} s")
            time.sleep(0.02)
        return self

    def accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        """Stop it at once (SIGKILL: an outage, not a shutdown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
