"""Loopback-only networking helpers and the event loop choice for the bench's processes.

Every byte the benchmark sends goes to this machine: :func:`require_loopback` refuses
any other address before a socket is opened.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
LOOPBACK_HOST = "127.0.0.1"


def require_loopback(host: str) -> str:
    """Return ``host`` when it is a loopback address (127.0.0.0/8, ::1, localhost); raise ValueError otherwise."""
    if host == "localhost":
        return host
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(f"the benchmark only talks to loopback addresses, not {host!r}")


def free_port(host: str = LOOPBACK_HOST) -> int:
    """A TCP port free on ``host`` right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((require_loopback(host), 0))
        return probe.getsockname()[1]


def loop_name(kind: str) -> str:
    """The event loop ``kind`` resolves to: "uvloop" when asked for or "auto" and installed, else "asyncio"."""
    if kind not in ("auto", "uvloop", "asyncio"):
        raise ValueError(f"unknown event loop {kind!r}: auto, uvloop or asyncio")
    if kind == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if kind == "uvloop":
            raise
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T], loop: str = "auto") -> T:
    """Run ``main`` on a fresh event loop of kind ``loop`` (see :func:`loop_name`)."""
    if loop_name(loop) == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
