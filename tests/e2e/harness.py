"""End-to-end harness: real gateway processes (Hypercorn serving a recipe), the Anthropic
SDK and the real Claude Code CLI as clients, and the checks every end-to-end test makes.

Tests attribute requests and log lines to themselves with an ``x-e2e-case`` header: the
gateway forwards it to the fake and keeps it in the log line's request headers.

Modules start their fakes and gateways with :func:`running_gateway` (any recipe, any
environment) and check each test with :func:`checked_fake`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import httpx
import pytest

import anthropic
from tests.shared_data import REPO

HF_TOKEN = "hf_test" + "Zq8vX2mN4pL6rT1yW3kJ5hG7"  # what the gateway sends the fake router
CLIENT_KEY = "sk-ant-client-" + "e2e9f3b1c7d5a2"  # what clients send the gateway; must never leave it
HF_MODEL = "meta-llama/Llama-3.3-70B-Instruct"  # the huggingface provider's default model
START_TIMEOUT = 30.0  # seconds a gateway may take to accept connections
LOG_TIMEOUT = 10.0  # seconds a log line may take to appear after its response
CLI_TIMEOUT = 120.0  # seconds for one Claude Code run

_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
_PROVIDER_PREFIXES = ("AIMW_", "HUGGINGFACE_", "ANTHROPIC_", "CLAUDE_", "AZURE_", "DASHSCOPE_", "OPENAI_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without aimw / provider / Anthropic / proxy variables, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_PROVIDER_PREFIXES) and name.lower() not in _PROXY_VARS
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def _wait(condition: Callable[[], object], timeout: float, what: str):
    """Poll ``condition`` until it returns something truthy (bounded; not a timing assert)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.02)


class GatewayProcess:
    """``hypercorn --config recipes/hypercorn.toml <app> --bind 127.0.0.1:<free port>`` run from
    the repository (the settings aimw ships)."""

    def __init__(self, app: str, env: dict[str, str], workdir: Path, args: Sequence[str] = ()) -> None:
        self.app = app
        self.args = tuple(args)  # more Hypercorn options (``--workers 2``)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "aimw.log"
        self.output_path = workdir / "hypercorn.out"
        # the case header is forwarded to the fakes, which attribute requests by it
        self.env = clean_env(AIMW_LOG_PATH=str(self.log_path), AIMW_FORWARD_HEADERS="x-e2e-case", **env)
        self.process: subprocess.Popen | None = None

    def start(self) -> GatewayProcess:
        hypercorn = Path(sys.executable).parent / "hypercorn"
        command = [str(hypercorn)] if hypercorn.exists() else [sys.executable, "-m", "hypercorn"]
        command += ["--config", "recipes/hypercorn.toml", self.app, "--bind", f"127.0.0.1:{self.port}", *self.args]
        with open(self.output_path, "wb") as output:
            self.process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=output, stderr=subprocess.STDOUT)
        _wait(self._ready, START_TIMEOUT, f"{self.app} to accept connections on port {self.port}")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.app} exited with {self.process.returncode}:\n{self.output()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def output(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- the log file

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def log_lines(self, case: str | None = None) -> list[dict]:
        """Complete JSON lines of the log (those of ``case`` when given)."""
        lines = [json.loads(line) for line in self.log_text().splitlines(keepends=True) if line.endswith("\n")]
        if case is None:
            return lines
        return [line for line in lines if line["request"]["headers"].get("x-e2e-case") == case]

    def wait_log_lines(self, count: int, case: str | None = None, since: int = 0) -> list[dict]:
        """Wait until the log holds ``count`` lines (of ``case``, after the first ``since``); return them."""
        _wait(lambda: len(self.log_lines(case)[since:]) >= count, LOG_TIMEOUT, f"{count} log lines")
        return self.log_lines(case)[since:]


@contextmanager
def running_gateway(
    app: str, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[GatewayProcess]:
    """``hypercorn <app>`` (e.g. ``recipes.azure:app``) as a real process with ``env`` added to
    a clean environment; stopped on exit. For module- or session-scoped fixtures."""
    gateway = GatewayProcess(app, env, tmp_path_factory.mktemp(name))
    try:
        yield gateway.start()
    finally:
        gateway.stop()


class CheckedFake(Protocol):
    """What :func:`checked_fake` needs of a fake provider server."""

    violations: list[str]

    def restore(self) -> None: ...

    def pending_replies(self) -> int: ...


@contextmanager
def checked_fake(fake: CheckedFake, gateways: Sequence[GatewayProcess], request: pytest.FixtureRequest) -> Iterator:
    """Give a test ``fake`` emptied and with its initial configuration; afterwards every
    gateway must still be up and free of tracebacks, the fake must have rejected nothing
    the gateways sent, and the test must have used all its replies."""
    fake.restore()
    outputs_before = [len(gateway.output()) for gateway in gateways]
    yield fake
    violations, pending = list(fake.violations), fake.pending_replies()
    fake.restore()
    for gateway, before in zip(gateways, outputs_before, strict=True):
        new_output = gateway.output()[before:]
        assert gateway.alive(), f"the gateway {gateway.app} died:\n{new_output}"
        if request.node.get_closest_marker("xfail") is None:  # a known bug may log one
            assert "Traceback" not in new_output, f"the gateway logged a traceback:\n{new_output}"
    assert not violations, f"the fake provider rejected what the gateway sent: {violations}"
    assert not pending, f"{pending} scripted replies were not requested"


def sdk_client(base_url: str, case: str, *, sent: list | None = None, **kwargs) -> anthropic.Anthropic:
    """The Anthropic SDK with the client key, no retries, the case header; ``sent``, when
    given, receives every HTTP request the SDK makes (``request.content`` is its body)."""
    hooks = {"request": [sent.append]} if sent is not None else None
    return anthropic.Anthropic(
        base_url=base_url,
        api_key=CLIENT_KEY,
        max_retries=0,
        timeout=30.0,
        default_headers={"x-e2e-case": case},
        http_client=anthropic.DefaultHttpxClient(trust_env=False, event_hooks=hooks),
        **kwargs,
    )


def exact_log_lines(gateway: GatewayProcess, case: str, count: int = 1) -> list[dict]:
    """The log lines of ``case``: exactly ``count`` of them."""
    lines = gateway.wait_log_lines(count, case)
    assert len(lines) == count, lines
    return lines


def assert_log_usage(line: dict, prompt: int, completion: int, cached: int = 0) -> None:
    """The line's ai.proxy.usage holds these token counts."""
    usage = line["ai"]["proxy"]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt, completion), usage
    assert usage["total_tokens"] == prompt + completion
    assert usage["prompt_tokens_details"]["cached_tokens"] == cached


# ---------------------------------------------------------------- Claude Code


def run_claude(
    claude: str,
    base_url: str,
    prompt: str,
    workdir: Path,
    *args: str,
    model: str = "claude-e2e-model",
    headers: dict[str, str] | None = None,
    max_retries: int = 0,
    api_key: str = CLIENT_KEY,
) -> tuple[subprocess.CompletedProcess, dict | None]:
    """Run ``claude -p PROMPT --output-format json`` headless and offline in a fresh HOME and
    cwd under ``workdir``; returns the process and its parsed JSON output (None if not JSON).
    ``headers`` are added to every request (ANTHROPIC_CUSTOM_HEADERS); ``max_retries``:
    CLAUDE_CODE_MAX_RETRIES (none by default); ``api_key``: ANTHROPIC_API_KEY."""
    home, cwd = workdir / "home", workdir / "cwd"
    home.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    env = clean_env(
        HOME=str(home),
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY=api_key,
        ANTHROPIC_MODEL=model,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        CLAUDE_CODE_MAX_RETRIES=str(max_retries),
    )
    if headers:
        env["ANTHROPIC_CUSTOM_HEADERS"] = "\n".join(f"{name}: {value}" for name, value in headers.items())
    completed = subprocess.run(
        [claude, "-p", prompt, "--output-format", "json", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    try:
        output = json.loads(completed.stdout)
    except ValueError:
        output = None
    return completed, output


def run_bash_session(
    claude: str, base_url: str, command: str, workdir: Path, case: str, model: str
) -> tuple[subprocess.CompletedProcess, dict]:
    """The CLI asked to run ``command`` with the Bash tool allowed (:func:`run_claude`, the
    case header on every request); asserts it ended well after two turns (the tool call, then
    the answer) and returns the process and its JSON output."""
    completed, output = run_claude(
        claude,
        base_url,
        f"Run `{command}` and tell me what it printed.",
        workdir,
        "--allowedTools",
        "Bash",
        model=model,
        headers={"x-e2e-case": case},
    )
    diagnostics = f"exit {completed.returncode}\nstdout: {completed.stdout[-2000:]}\nstderr: {completed.stderr[-2000:]}"
    assert completed.returncode == 0, diagnostics
    assert output is not None and output["is_error"] is False, diagnostics
    assert output["num_turns"] == 2, diagnostics
    return completed, output


def leave_mid_stream(base_url: str, model: str, messages: list, case: str, marker: bytes, timeout: float = 30) -> bytes:
    """POST a streamed Messages request and leave once ``marker`` arrived, with the provider's
    stream still open (a client that hangs up mid-stream); returns the bytes received."""
    received = b""
    with (
        httpx.Client(trust_env=False, timeout=timeout) as http,
        http.stream(
            "POST",
            base_url + "/v1/messages",
            json={"model": model, "max_tokens": 64, "stream": True, "messages": messages},
            headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "x-e2e-case": case},
        ) as response,
    ):
        for chunk in response.iter_raw():
            received += chunk
            if marker in received:
                break
    return received
