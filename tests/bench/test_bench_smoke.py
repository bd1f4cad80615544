"""A smoke run of the whole benchmark, as CI runs it: real servers on loopback (the fake
upstream, the pass-through, aimw and aimw-config with one and two workers), a fraction of a second per
measurement, a few chunks per answer. Numbers are not judged; the run must finish, every
answer must validate, and the report must be written. Needs only aimw's .venv."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.shared_data import REPO

SCENARIOS = ["nonstream-c1", "stream-c32", "nonstream-c32-w2"]
TARGETS = ["direct", "passthrough", "aimw", "aimw-config"]


def test_a_quick_run_measures_and_validates_every_target(tmp_path):
    completed = subprocess.run(
        [
            sys.executable, "-m", "bench", "--quick", "--duration", "0.5", "--warmup", "0.2",
            "--chunks", "5", "--validate-every", "1", "--no-chart", "--output", str(tmp_path),
            "--targets", ",".join(TARGETS), "--scenarios", ",".join(SCENARIOS),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = (tmp_path / "results.md").read_text()
    assert "## aimw's tuning goals" in report and "### stream-c32" in report
    assert completed.stdout.strip() == report.strip()
    [results_file] = tmp_path.glob("raw/*/results.json")
    measurements = json.loads(results_file.read_text())["measurements"]
    measured = {(record["scenario"], record["target"]) for record in measurements}
    expected = {
        (scenario, target)
        for scenario in SCENARIOS
        for target in TARGETS
        if not (scenario.endswith("-w2") and target == "direct")
    }
    assert measured == expected
    for record in measurements:
        assert "failed" not in record, record.get("failed")
        assert record["requests"] > 0 and record["validated"] > 0, record["label"]
        assert (record["invalid"], record["error_counts"]) == (0, {}), (record["label"], record["invalid_examples"])
        assert record["server_cpu_s"] > 0 and record["rss_idle_bytes"] > 0, record["label"]
    streamed = [record for record in measurements if record["scenario"] == "stream-c32"]
    assert all(record["events"] > 0 and record["first_text_ms"] for record in streamed)
    aimw_logs = list(tmp_path.glob("raw/*/*.aimw.log"))
    assert aimw_logs and all(path.read_text().count("\n") > 0 for path in aimw_logs)


def test_a_quick_run_of_the_gemini_targets_validates_and_fetches_one_token_per_worker(tmp_path):
    scenarios, targets = ["stream-c32", "nonstream-c32-w2"], ["aimw-gemini", "aimw-vertex"]
    completed = subprocess.run(
        [
            sys.executable, "-m", "bench", "--quick", "--duration", "0.5", "--warmup", "0.4",
            "--chunks", "5", "--validate-every", "1", "--no-chart", "--output", str(tmp_path),
            "--targets", ",".join(targets), "--scenarios", ",".join(scenarios),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = (tmp_path / "results.md").read_text()
    assert "## aimw on Gemini" in report and "Gemini stream ≥ 100,000 translated events/s at C=32" in report
    [results_file] = tmp_path.glob("raw/*/results.json")
    measurements = json.loads(results_file.read_text())["measurements"]
    assert {(record["scenario"], record["target"]) for record in measurements} == {
        (s, t) for s in scenarios for t in targets
    }
    for record in measurements:
        assert "failed" not in record, record.get("failed")
        assert record["requests"] > 0 and record["validated"] > 0, record["label"]
        assert (record["invalid"], record["error_counts"]) == (0, {}), (record["label"], record["invalid_examples"])
        counts = record["upstream_counts"]
        answered = counts["gemini_streams"] if record["scenario"].startswith("stream") else counts["gemini_responses"]
        assert answered > 0 and counts["unauthenticated"] == 0, record["label"]
        if record["target"] == "aimw-vertex":  # the token is cached: one grant per worker, not per request
            assert 1 <= record["token_requests"] <= record["workers"], record
        else:
            assert counts["token_requests"] == 0
    assert not any("PRIVATE KEY" in record["command"] for record in measurements)
