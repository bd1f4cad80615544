"""The soak's two servers, as real processes on loopback (each in its own session, its
output in the run's directory): the fake router (:mod:`bench.soak.upstream`) and the gateway,
``hypercorn --config recipes/hypercorn.toml -k uvloop --workers W bench.soak.app:app`` with
``AIMW_UPSTREAM_TIMEOUT`` low (stalls end quickly), a pool as large as the streams (each
Hypercorn worker has its own) and the ``x-soak-exchange`` header forwarded."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from bench.net import LOOPBACK_HOST
from bench.servers import Server, ServerSpec
from bench.soak.corpus import REPO
from bench.soak.plan import HEAD_HOLD_S, HEADER
from bench.soak.probe import worker_pids

TOKEN = "hf_soak" + "Xq2vB7nM4kP9"  # what the gateway sends the fake router
MODEL = "soak/Llama-3.3-70B-Instruct"
HYPERCORN_CONFIG = REPO / "recipes" / "hypercorn.toml"
HYPERCORN_GRACEFUL_DEFAULT = 3.0  # seconds: Hypercorn's own graceful_timeout
START_TIMEOUT = 60.0  # seconds for the processes to come up


def graceful_timeout(config_path: Path = HYPERCORN_CONFIG) -> float:
    """The graceful_timeout recipes/hypercorn.toml sets (seconds), else Hypercorn's default."""
    settings = tomllib.loads(config_path.read_text()) if config_path.exists() else {}
    return float(settings.get("graceful_timeout", HYPERCORN_GRACEFUL_DEFAULT))


def specs(
    out: Path, ports: tuple[int, int], *, recipe: str, workers: int, streams: int, upstream_timeout: float
) -> tuple[ServerSpec, ServerSpec]:
    """The fake router's and the gateway's commands; ``ports``: (gateway, fake)."""
    port, fake_port = ports
    fake = ServerSpec(
        "fake-router",
        [sys.executable, "-m", "bench.soak.upstream", "--port", str(fake_port), "--token", TOKEN, "--model", MODEL,
         "--max-stall", str(max(15.0, upstream_timeout * 5)), "--pause", str(max(HEAD_HOLD_S, upstream_timeout - 1))],
        fake_port, out / "upstream.out", cwd=REPO,
    )  # fmt: skip
    env = {
        "AIMW_SOAK_RECIPE": recipe,
        "AIMW_SOAK_DEBUG_DIR": str(out / "debug"),
        "AIMW_LOG_PATH": str(out / "aimw.log"),
        "AIMW_FORWARD_HEADERS": HEADER,
        "AIMW_UPSTREAM_TIMEOUT": str(upstream_timeout),
        "AIMW_UPSTREAM_MAX_CONNECTIONS": str(streams + 64),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if recipe == "config":
        gateway_yaml = out / "gateway.yaml"
        gateway_yaml.write_text(_gateway_yaml(fake_port, upstream_timeout, out / "aimw.log"))
        env.update(AIMW_CONFIG=str(gateway_yaml), SOAK_HF_TOKEN=TOKEN)
    else:
        env.update(
            HUGGINGFACE_API_TOKEN=TOKEN, AIMW_MODEL=MODEL, AIMW_UPSTREAM_URL=f"http://{LOOPBACK_HOST}:{fake_port}"
        )
    hypercorn = Path(sys.executable).parent / "hypercorn"
    gateway = ServerSpec(
        "aimw",
        [str(hypercorn), "--config", str(HYPERCORN_CONFIG), "-k", "uvloop", "--workers", str(workers),
         "--bind", f"{LOOPBACK_HOST}:{port}", "bench.soak.app:app"],
        port, out / "hypercorn.out", env=env, cwd=REPO,
    )  # fmt: skip
    return fake, gateway


def _gateway_yaml(fake_port: int, timeout: float, log_path: Path) -> str:
    """recipes.config's file: one huggingface target at the fake, in Kong's schema."""
    url = json.dumps(f"http://{LOOPBACK_HOST}:{fake_port}/v1/chat/completions")
    return (
        f"llm_format: anthropic\nbalancer:\n  read_timeout: {int(timeout * 1000)}\ntargets:\n"
        '  - auth: {header_name: Authorization, header_value: "Bearer ${SOAK_HF_TOKEN}"}\n'
        f"    model: {{provider: huggingface, name: {json.dumps(MODEL)}, options: {{upstream_url: {url}}}}}\n"
        f"log: {{path: {json.dumps(str(log_path))}}}\n"
    )


def clean_environment() -> None:
    """Remove this process's AIMW_* and HUGGINGFACE_* variables: the servers it starts get
    exactly the soak's settings."""
    for name in [name for name in os.environ if name.startswith(("AIMW_", "HUGGINGFACE_"))]:
        del os.environ[name]


async def fake_stats(port: int, query: bytes = b"") -> dict:
    """The fake router's accounting (``GET /soak/stats``, ``query`` e.g. ``?reset=peaks``)."""
    reader, writer = await asyncio.open_connection(LOOPBACK_HOST, port)
    writer.write(b"GET /soak/stats%s HTTP/1.1\r\nhost: soak\r\nconnection: close\r\n\r\n" % query)
    data = await reader.read()
    writer.close()
    await writer.wait_closed()  # not counted among the connections to the fake afterwards
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


async def open_streams(port: int, count: int, seconds: float) -> int:
    """The streams the fake router has open, once they are ``count`` (or after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        streams = (await fake_stats(port))["streams"]
        if streams >= count or time.monotonic() > deadline:
            return streams
        await asyncio.sleep(0.1)


async def wait_up(fake: Server, gateway: Server, workers: int, debug_dir: Path) -> list[int]:
    """Wait for both servers to accept connections and every gateway worker to have
    installed the debug hook; returns the workers' pids."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        for server in (fake, gateway):
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.spec.name} exited: {server.spec.log_path.read_text()[-3000:]}")
        pids = worker_pids(debug_dir)
        if len(pids) >= workers and await _accepts(fake.spec.port) and await _accepts(gateway.spec.port):
            return pids
        if time.monotonic() > deadline:
            raise RuntimeError(f"the servers did not come up in {START_TIMEOUT:g} s")
        await asyncio.sleep(0.1)


async def until(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll ``condition`` every 10 ms for at most ``seconds``; whether it came true."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(LOOPBACK_HOST, port)
    except OSError:
        return False
    writer.close()
    return True
