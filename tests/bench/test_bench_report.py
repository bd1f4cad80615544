"""The Markdown report: ratios, goals and tables computed from a results dict."""

from __future__ import annotations

import pytest

from bench.cli import problems_of
from bench.report import goal_rows, pick, render
from tests.bench.sample_results import MB, measurement, results


def test_ratios_compare_aimw_with_litellm_passthrough_and_direct():
    report = render(results(
        [measurement("nonstream-c32", "direct", 8000), measurement("nonstream-c32", "passthrough", 2000),
         measurement("nonstream-c32", "aimw", 1000), measurement("nonstream-c32", "litellm", 250)],
        ["nonstream-c32"], ["direct", "passthrough", "aimw", "litellm"],
    ))  # fmt: skip
    # aimw/LiteLLM 4×, aimw/pass-through 0.5×, CPU LiteLLM/aimw 4×, p50 1 - 0.125 ms,
    # first byte 0.5 - 0.0625 ms, direct/aimw 8×
    assert "| nonstream-c32 | 4.00× | 0.50× | 4.00× | +0.88 | +0.44 | 8.00× |" in report
    assert "| aimw | 1,000.0 | 1.00 | 3.00 | 0.50 | 100 | 1.000 | 50.0 | 60.0 | 20 + 10 | 10 ok |" in report
    assert "`-k uvloop`" in report


def test_goals_are_met_missed_or_not_measured():
    data = results(
        [measurement("stream-c32", "aimw", 500, events_per_s=120_000.0),
         measurement("nonstream-c32", "aimw", 1200), measurement("nonstream-c32-w2", "aimw", 2400),
         measurement("nonstream-c128", "aimw", 1000, server_rss_peak_bytes=200 * MB)],
        [], ["aimw"],
    )  # fmt: skip
    rows = {goal: (value, met) for goal, value, met in goal_rows(pick(data))}
    assert rows["stream ≥ 100,000 translated events/s at C=32"] == ("120,000 events/s", True)
    assert rows["non-stream ≥ 1,500 req/s at C=32"] == ("1,200 req/s", False)
    assert rows["2 workers ≥ 1.7× one worker (nonstream-c32)"] == ("2.00×", True)
    assert rows["RSS < 150 MB at C=128"] == ("200.0 MB", False)
    assert rows["RSS < 100 MB idle (1 worker, largest seen)"] == ("50.0 MB", True)
    assert rows["p50 at C=1 within 1 ms of direct (nonstream-c1)"] == ("not measured", None)


def test_the_median_round_is_kept():
    rounds = [measurement("nonstream-c1", "aimw", rate, round=n) for n, rate in enumerate((300, 100, 200), 1)]
    chosen = pick(results(rounds, ["nonstream-c1"], ["aimw"], rounds=3))
    assert chosen[("nonstream-c1", "aimw")]["req_per_s"] == 200


def test_skipped_and_failed_targets_show_why_and_count_as_problems():
    litellm = {"scenario": "nonstream-c1", "target": "litellm", "round": 1, "label": "nonstream-c1.litellm"}
    passthrough = {"scenario": "nonstream-c1", "target": "passthrough", "round": 1, "label": "nonstream-c1.passthrough"}
    data = results(
        [measurement("nonstream-c1", "aimw", 100, invalid=2, invalid_examples=[["text differs"]]),
         {**litellm, "skipped": "not installed"}, {**passthrough, "failed": "exited\nlog"}],
        ["nonstream-c1"], ["passthrough", "aimw", "litellm"],
    )  # fmt: skip
    report = render(data)
    assert "| litellm | not installed |" in report and "| passthrough | exited |" in report
    assert "**2/10 invalid**" in report
    problems = problems_of(data)
    assert len(problems) == 2 and problems[0].startswith("nonstream-c1.aimw: 2 invalid")


def test_the_chart_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from bench.chart import draw

    data = results([measurement("nonstream-c1", target, rate) for target, rate in (("direct", 9000), ("aimw", 900))],
                   ["nonstream-c1"], ["direct", "aimw"])  # fmt: skip
    assert draw(data, tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")


def test_measurements_shared_with_other_processes_are_flagged():
    quiet = render(results([measurement("nonstream-c1", "aimw", 100)], ["nonstream-c1"], ["aimw"]))
    busy = render(
        results([measurement("nonstream-c1", "aimw", 100, others_cpu_percent=40.0)], ["nonstream-c1"], ["aimw"])
    )
    assert "⚠ Other processes" not in quiet
    assert "during 1 of 1 measurements" in busy and "20 + 10 (others 40 ⚠)" in busy


def test_two_worker_rows_show_each_process_share_of_the_cpu():
    record = measurement(
        "nonstream-c32-w2", "aimw", 100, server_cpu_percent=150.0, server_cpu_percent_by_process=[95.2, 54.6, 0.1]
    )
    report = render(results([record], ["nonstream-c32-w2"], ["aimw"]))
    assert "| 150 (95 / 55) |" in report


def test_a_change_of_aimw_code_during_the_run_is_flagged():
    same = [measurement("nonstream-c1", target, 100, aimw_code="a") for target in ("direct", "aimw")]
    changed = [
        measurement("nonstream-c1", "direct", 100, aimw_code="a"),
        measurement("nonstream-c1", "aimw", 100, aimw_code="b"),
    ]
    assert "changed during the run" not in render(results(same, ["nonstream-c1"], ["direct", "aimw"]))
    assert "2 versions were measured" in render(results(changed, ["nonstream-c1"], ["direct", "aimw"]))


def test_the_gemini_targets_get_their_goal_their_ratios_and_their_token_fetches():
    data = results(
        [measurement("stream-c32", "aimw", 500, events_per_s=102_500.0),
         measurement("stream-c32", "aimw-gemini", 400, events_per_s=82_000.0),
         measurement("stream-c32", "aimw-vertex", 400, events_per_s=82_000.0, token_requests=1, workers=1),
         measurement("stream-c32-w2", "aimw-vertex", 700, token_requests=2, workers=2)],
        ["stream-c32", "stream-c32-w2"], ["aimw", "aimw-gemini", "aimw-vertex"],
    )  # fmt: skip
    rows = {goal: (value, met) for goal, value, met in goal_rows(pick(data))}
    assert rows["Gemini stream ≥ 100,000 translated events/s at C=32"] == ("82,000 events/s", False)
    token = rows["Vertex AI token fetched once per worker (cached, every measurement)"]
    assert token == ("3 fetches for 3 workers in 2 measurements", True)
    report = render(data)
    # 400 req/s: 0.80× aimw's, CPU per request 1.25× aimw's; Vertex AI as the Gemini API; one fetch for one worker
    assert "| stream-c32 | 400.0 | 82,000 | 0.80× | 1.25× | 1.00× | 1.00× | 1 / 1 |" in report
    assert "| stream-c32-w2 | – | – | – | – | – | – | 2 / 2 |" in report
    assert "| aimw-gemini | 400.0 |" in report and "| aimw-vertex | 400.0 |" in report


def test_a_token_fetched_per_request_fails_the_goal_and_no_gemini_target_no_section():
    many = results(
        [measurement("stream-c32", "aimw-vertex", 400, token_requests=400, workers=1)], ["stream-c32"], ["aimw-vertex"]
    )
    rows = {goal: (value, met) for goal, value, met in goal_rows(pick(many))}
    assert rows["Vertex AI token fetched once per worker (cached, every measurement)"][1] is False
    assert rows["Gemini stream ≥ 100,000 translated events/s at C=32"] == ("not measured", None)
    assert "## aimw on Gemini" not in render(
        results([measurement("stream-c32", "aimw", 400)], ["stream-c32"], ["aimw"])
    )


def test_aimw_config_is_compared_with_aimw_and_gets_its_goal():
    data = results(
        [measurement("stream-c32", "aimw", 500, events_per_s=100_000.0),
         measurement("stream-c32", "aimw-config", 480, events_per_s=96_000.0),
         measurement("nonstream-c32", "aimw", 1000), measurement("nonstream-c32", "aimw-config", 800)],
        ["stream-c32", "nonstream-c32"], ["aimw", "aimw-config"],
    )  # fmt: skip
    rows = {goal: (value, met) for goal, value, met in goal_rows(pick(data))}
    goal = "config (two targets, round-robin) stream events/s within 5 % of aimw's at C=32"
    assert rows[goal] == ("96,000 events/s, 0.96× aimw's", True)
    report = render(data)
    assert "## aimw from a config file" in report and "| aimw-config | 480.0 |" in report
    # 480 / 500 req/s, CPU per request 1000/480 ms against 2 ms; p50 2.083 − 2 ms, first byte 1.042 − 1 ms
    assert "| stream-c32 | 480.0 | 96,000 | 0.96× | 1.04× | +0.08 | +0.04 |" in report
    assert "| nonstream-c32 | 800.0 | – | 0.80× | 1.25× | +0.25 | +0.12 |" in report
    slower = results(
        [measurement("stream-c32", "aimw", 500, events_per_s=100_000.0),
         measurement("stream-c32", "aimw-config", 400, events_per_s=80_000.0)],
        ["stream-c32"], ["aimw", "aimw-config"],
    )  # fmt: skip
    assert {g: m for g, _, m in goal_rows(pick(slower))}[goal] is False
    alone = results([measurement("stream-c32", "aimw", 500)], ["stream-c32"], ["aimw"])
    assert "## aimw from a config file" not in render(alone)
    assert {g: v for g, v, _ in goal_rows(pick(alone))}[goal] == "not measured"
