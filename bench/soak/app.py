"""The soak's gateway: a recipe's app, unchanged, with a debug hook that is not an endpoint.

    AIMW_SOAK_RECIPE=huggingface AIMW_SOAK_DEBUG_DIR=/tmp/soak \
        hypercorn --config recipes/hypercorn.toml bench.soak.app:app

``AIMW_SOAK_RECIPE`` names the recipe module (``recipes.<name>``: ``huggingface`` or ``config``).
When a worker starts (ASGI lifespan) it writes ``<AIMW_SOAK_DEBUG_DIR>/worker-<pid>`` and
installs a SIGUSR1 handler in its event loop; each SIGUSR1 writes
``snapshot-<pid>.json`` (atomically, by rename)::

    {"n": <signals answered>, "pid", "tasks": <asyncio tasks>, "fds": <open file descriptors>,
     "rss": <VmRSS bytes>, "peak_rss": <VmHWM bytes>, "idle": <upstream pool, idle>, "in_use": <in use>}

SIGUSR2 starts cProfile in the worker; the next SIGUSR2 stops it and writes
``profile-<pid>.pstats`` (``python -m pstats``): where the worker's CPU goes under the soak.

Nothing is served over HTTP: requests pass to the recipe's app as they are.
"""

from __future__ import annotations

import asyncio
import cProfile
import importlib
import json
import os
import signal
from pathlib import Path

from aimw.types import Receive, Scope, Send
from aimw.upstream.app import UpstreamApp
from aimw.upstream.transport import UpstreamTransport

RECIPE = os.environ.get("AIMW_SOAK_RECIPE", "huggingface")
if RECIPE not in ("huggingface", "config"):
    raise SystemExit(f"bench.soak.app: AIMW_SOAK_RECIPE must be huggingface or config, not {RECIPE!r}")
gateway = importlib.import_module(f"recipes.{RECIPE}").app
_installed = False


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    global _installed
    if scope["type"] == "lifespan" and not _installed:
        _installed = True
        _install(Path(os.environ["AIMW_SOAK_DEBUG_DIR"]))
    await gateway(scope, receive, send)


def transports(app: object) -> list[UpstreamTransport]:
    """Every upstream transport below ``app``: each middleware's ``app``, each failover leg's."""
    found, pending = [], [app]
    while pending:
        layer = pending.pop()
        if isinstance(layer, UpstreamApp):
            found.append(layer.transport)
            continue
        pending += [leg.app for leg in getattr(layer, "legs", ())]
        inner = getattr(layer, "app", None)
        if inner is not None:
            pending.append(inner)
    return found


def _install(debug_dir: Path) -> None:
    pid = os.getpid()
    pools = transports(gateway)
    answered = 0

    def write_snapshot() -> None:
        nonlocal answered
        answered += 1
        counts = [pool.connections() for pool in pools]
        snapshot = {
            "n": answered,
            "pid": pid,
            "tasks": len(asyncio.all_tasks()),
            "fds": len(os.listdir("/proc/self/fd")),
            **_memory(),
            "idle": sum(count.idle for count in counts if count is not None),
            "in_use": sum(count.in_use for count in counts if count is not None),
        }
        path = debug_dir / f"snapshot-{pid}.json"
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(snapshot))
        partial.replace(path)

    profile: list[cProfile.Profile] = []

    def toggle_profile() -> None:
        if profile:
            profile.pop().dump_stats(debug_dir / f"profile-{pid}.pstats")
        else:
            profile.append(cProfile.Profile())
            profile[0].enable()

    debug_dir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, write_snapshot)
    loop.add_signal_handler(signal.SIGUSR2, toggle_profile)
    (debug_dir / f"worker-{pid}").write_text("")


def _memory() -> dict[str, int]:
    """VmRSS and VmHWM of this process (bytes)."""
    values = {}
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith((b"VmRSS:", b"VmHWM:")):
                values["rss" if line.startswith(b"VmRSS") else "peak_rss"] = int(line.split()[1]) * 1024
    return values
