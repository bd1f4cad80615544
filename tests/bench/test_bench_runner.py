"""The runner's choices: which CPUs each process gets, what a console line says."""

from __future__ import annotations

from bench.runner import CpuPlan, code_fingerprint, summary_line, upstream_counts
from bench.scenarios import SCENARIOS

PINNED, UNPINNED = SCENARIOS["stream-c32"], SCENARIOS["stream-c32-w2"]


def test_one_worker_scenarios_split_the_cpus_and_two_worker_ones_get_them_all():
    plan = CpuPlan(server=frozenset({0}), drivers=frozenset({1}), every=frozenset({0, 1, 2}))
    assert (plan.for_server(PINNED), plan.for_drivers(PINNED)) == ({0}, {1})
    # the runner itself sits on the drivers' CPU: unpinned children must get every CPU explicitly
    assert (plan.for_server(UNPINNED), plan.for_drivers(UNPINNED)) == ({0, 1, 2}, {0, 1, 2})


def test_without_pinning_nothing_is_pinned():
    plan = CpuPlan.choose(pin=False)
    assert plan.server is None and plan.for_server(PINNED) is None and plan.for_drivers(PINNED) == plan.every


def test_the_code_fingerprint_is_stable_while_the_code_is():
    assert code_fingerprint() == code_fingerprint() and len(code_fingerprint()) == 12


def test_summary_lines_name_problems():
    record = {"label": "stream-c32.aimw", "req_per_s": 90.0, "latency_ms": {"p50": 300.0}, "events_per_s": 18000.0,
              "server_cpu_percent": 98.0, "errors": 1, "invalid": 2, "validated": 10}  # fmt: skip
    line = summary_line(record)
    assert "90.0 req/s" in line and "18000 events/s" in line and "1 errors, 2/10 invalid" in line
    assert summary_line({"label": "x", "failed": "exited\nlog"}).endswith("FAILED: exited")
    assert summary_line({"label": "x", "skipped": "not installed"}).endswith("skipped: not installed")


def test_summary_lines_show_the_token_fetches_of_a_vertex_measurement():
    record = {"label": "stream-c32.aimw-vertex", "req_per_s": 90.0, "latency_ms": {"p50": 300.0},
              "events_per_s": 18000.0, "server_cpu_percent": 98.0, "errors": 0, "invalid": 0, "validated": 10,
              "token_requests": 2, "workers": 2}  # fmt: skip
    assert "2 token fetches / 2 workers" in summary_line(record)


def test_the_fake_upstream_s_counts_are_read_over_http():
    import asyncio
    import threading

    from bench.fake_upstream import start_fake_upstream

    ready, stop = threading.Event(), threading.Event()
    found: dict = {}

    async def serve() -> None:
        server, stats = await start_fake_upstream(chunks=3)
        stats.token_requests, stats.gemini_streams = 2, 5
        found["url"] = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        ready.set()
        await asyncio.to_thread(stop.wait, 30)
        server.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    try:
        assert ready.wait(10)
        counts = upstream_counts(found["url"])
    finally:
        stop.set()
        thread.join(10)
    assert counts["token_requests"] == 2 and counts["gemini_streams"] == 5 and counts["streams"] == 0
