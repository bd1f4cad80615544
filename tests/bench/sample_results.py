"""Results dicts as bench/runner.py writes them, for the report's and the baseline's tests."""

from __future__ import annotations

MB = 1024 * 1024


def measurement(scenario: str, target: str, req_per_s: float, **extra) -> dict:
    record = {
        "scenario": scenario, "target": target, "round": 1, "label": f"{scenario}.{target}",
        "req_per_s": req_per_s, "requests": int(req_per_s), "errors": 0, "error_counts": {},
        "validated": 10, "invalid": 0, "invalid_examples": [],
        "latency_ms": {"p50": 1000 / req_per_s, "p90": 2.0, "p99": 3.0, "mean": 1.0, "max": 4.0},
        "first_byte_ms": {"p50": 500 / req_per_s, "p90": 1.0, "p99": 1.0, "mean": 1.0, "max": 1.0},
        "first_text_ms": None, "events": 0, "events_per_s": None,
        "server_cpu_percent": 100.0, "server_cpu_ms_per_request": 1000 / req_per_s, "server_cpu_us_per_event": None,
        "rss_idle_bytes": 50 * MB, "server_rss_peak_bytes": 60 * MB,
        "loadgen_cpu_percent": 20.0, "upstream_cpu_percent": 10.0, "others_cpu_percent": 1.0,
    }  # fmt: skip
    return {**record, **extra}


def results(measurements: list[dict], scenarios: list[str], targets: list[str], rounds: int = 1) -> dict:
    return {
        "run_id": "test", "seconds": 1.0, "measurements": measurements,
        "options": {"scenarios": scenarios, "targets": targets, "duration": 1.0, "warmup": 0.5, "chunks": 5,
                    "validate_every": 1, "rounds": rounds, "hypercorn_args": ["-k", "uvloop"]},
        "machine": {"cpu_model": "cpu", "cpus": 2, "kernel": "6", "python": "3.11", "event_loop": "asyncio",
                    "server_cpus": [0], "driver_cpus": [1], "aimw_commit": "abc", "versions": {"aimw": "0.1.0"}},
    }  # fmt: skip
