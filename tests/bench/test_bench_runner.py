"""The runner's choices: which CPUs each process gets, what a console line says."""

from __future__ import annotations

from bench.runner import CpuPlan, code_fingerprint, summary_line
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
