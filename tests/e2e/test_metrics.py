"""Prometheus metrics end to end: Hypercorn with two workers (``--workers 2``) serving
recipes.anthropic:app with AIMW_METRICS=1 and PROMETHEUS_MULTIPROC_DIR, in front of the fake
Anthropic API (10 input + 3 output tokens an answer).

- One scrape sums both workers: each worker's prometheus-client file (``counter_<pid>.db``)
  holds part of the requests, and whichever worker answers ``GET /metrics`` reports them all.
- A restart with the same directory starts from zero (the previous run's files are removed:
  no wipe before Hypercorn starts).
- AIMW_METRICS_BIND: both workers listen on the metrics port (SO_REUSEPORT) and answer for
  all; the gateway's own ``/metrics`` is then 404.

Requests open a connection each, so that both workers take some. Every wait is bounded polling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import GatewayProcess, free_port
from tests.fakes.anthropic_server import FakeAnthropicServer, message_reply

pytestmark = pytest.mark.e2e

KEY = "sk-ant-gateway-" + "e2e-metrics-01"  # the gateway's key to the fake (the client sends none)
TIMEOUT = 30.0  # seconds: hang guards and bounded waits, never assertions about speed
BATCH = 16  # requests sent at once, four connections at a time
TOKENS = 10 + 3  # each answer's total tokens


@pytest.fixture(scope="module")
def fake():
    with FakeAnthropicServer(KEY) as server:
        server.responder = lambda request: message_reply("2", input_tokens=10, output_tokens=3)
        yield server
    assert not server.violations, server.violations


def started(fake, workdir: Path, directory: Path, **env: str) -> GatewayProcess:
    environment = {
        "AIMW_UPSTREAM_URL": fake.url,
        "ANTHROPIC_API_KEY": KEY,
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "AIMW_METRICS": "1",
        **env,
    }
    workdir.mkdir(parents=True, exist_ok=True)
    return GatewayProcess("recipes.anthropic:app", environment, workdir, args=("--workers", "2")).start()


def ask(url: str) -> None:
    """One Messages request on a connection of its own."""
    body = {"model": "claude-e2e", "max_tokens": 16, "messages": [{"role": "user", "content": "1 + 1?"}]}
    headers = {"anthropic-version": "2023-06-01", "connection": "close"}
    response = httpx.post(url + "/v1/messages", json=body, headers=headers, timeout=TIMEOUT, trust_env=False)
    assert response.status_code == 200, response.text


def scrape(url: str) -> dict[str, float]:
    """``GET url``: each sample (name and labels, as text) -> value, on a connection of its own."""
    response = httpx.get(url, headers={"connection": "close"}, timeout=TIMEOUT, trust_env=False)
    assert response.status_code == 200, response.text
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_total(samples: dict[str, float]) -> float:
    return sum(v for name, v in samples.items() if name.startswith("kong_ai_llm_requests_total"))


def tokens_total(samples: dict[str, float]) -> float:
    return sum(v for name, v in samples.items() if name.startswith("kong_ai_llm_tokens_total") and "'total_" in name)


def worker_requests(directory: Path) -> dict[str, float]:
    """Each worker's counter file -> the requests it counted (read with prometheus-client)."""
    counted = {}
    for path in directory.glob("counter_*.db"):
        families = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        counted[path.name] = sum(
            sample.value
            for family in families
            for sample in family.samples
            if sample.name == "kong_ai_llm_requests_total"
        )
    return {name: requests for name, requests in counted.items() if requests}


def wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def send_until_both_workers_counted(gateway: GatewayProcess, directory: Path) -> int:
    """Send batches of requests until both workers' files hold some; how many were sent."""
    sent = 0
    with ThreadPoolExecutor(4) as pool:
        while True:
            list(pool.map(ask, [gateway.url] * BATCH))
            sent += BATCH
            if len(worker_requests(directory)) == 2 or sent >= 10 * BATCH:
                return sent


def test_one_scrape_sums_both_workers_and_a_restart_starts_from_zero(fake, tmp_path):
    directory = tmp_path / "metrics"
    gateway = started(fake, tmp_path / "first", directory)
    try:
        sent = send_until_both_workers_counted(gateway, directory)
        # a worker counts an exchange once its last byte went out: the client may have it first
        wait_for(lambda: sum(worker_requests(directory).values()) == sent, f"the workers' files to hold {sent}")
        counted = worker_requests(directory)
        assert len(counted) == 2 and all(counted.values()), counted  # both workers served some
        wait_for(lambda: requests_total(scrape(gateway.url + "/metrics")) == sent, f"a scrape showing {sent} requests")
        for _ in range(6):  # whichever worker answers, it answers for both
            samples = scrape(gateway.url + "/metrics")
            assert requests_total(samples) == sent
            assert tokens_total(samples) == TOKENS * sent
            assert samples["aimw_streams_in_flight[]"] == 0
        assert "Traceback" not in gateway.output(), gateway.output()
    finally:
        gateway.stop()
    assert len(worker_requests(directory)) == 2  # the stopped workers' counts stay on disk

    again = started(fake, tmp_path / "second", directory)
    try:
        samples = scrape(again.url + "/metrics")
        assert requests_total(samples) == 0  # the previous run's counts were removed at start
        ask(again.url)
        wait_for(lambda: requests_total(scrape(again.url + "/metrics")) == 1, "the new run's first request")
        assert "Traceback" not in again.output(), again.output()
    finally:
        again.stop()


def test_both_workers_listen_on_the_metrics_port(fake, tmp_path):
    port = free_port()
    directory = tmp_path / "metrics"
    gateway = started(fake, tmp_path, directory, AIMW_METRICS_BIND=f"127.0.0.1:{port}")
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: listening_sockets(port) == 2, "both workers to open the metrics port")
        sent = send_until_both_workers_counted(gateway, directory)
        wait_for(lambda: requests_total(scrape(metrics_url)) == sent, f"a scrape showing {sent} requests")
        assert {requests_total(scrape(metrics_url)) for _ in range(6)} == {sent}
        response = httpx.get(gateway.url + "/metrics", timeout=TIMEOUT, trust_env=False)
        assert response.status_code == 404  # not on the gateway's port
        assert "Traceback" not in gateway.output(), gateway.output()
    finally:
        gateway.stop()


def listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` on 127.0.0.1 (Linux's /proc/net/tcp: state 0A)."""
    local = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1] == local and line.split()[3] == "0A")
