"""``aimw report`` end to end on one log holding every kind of line (tests/report/data/every_kind.log):
aimw's success stream and non-stream, a provider error, a client that left mid-stream (499,
usage estimated) and one that left during its upload, a failover, a stream that failed
mid-way, a request refused before any provider (no ai block), the sink's minimal line, a
pre-flight, the records of Kong's Hugging Face and Azure guides, two corrupt lines and a
truncated last line. The text and JSON outputs are compared with golden files
(``AIMW_UPDATE_GOLDEN=1`` rewrites them; review the diff)."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aimw.__main__ import main
from aimw.report import cli
from tests.report import EVERY_KIND_LOG
from tests.shared_data import REPO, SHARED

HERE = Path(__file__).parent
LOG = EVERY_KIND_LOG
SOURCE = "tests/report/data/every_kind.log"  # as the command is given it (run from the repository)
GUIDES = SHARED / "kong-guides"
NEXT_DAY_11H_MS = 1748862000000  # 2025-06-02T11:00:00Z


@pytest.fixture(autouse=True)
def in_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``aimw report SOURCE *args``; exit status, stdout, stderr."""
    status = main(["report", SOURCE, *args])
    out, err = capsys.readouterr()
    return status, out, err


def assert_golden(name: str, text: str) -> None:
    path = HERE / "golden" / name
    if os.environ.get("AIMW_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"output differs from {path} (AIMW_UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize(
    ("golden", "args"),
    [
        ("every_kind.hour.txt", ()),
        ("every_kind.day.txt", ("--by", "day")),
        ("every_kind.since.txt", ("--since", "2025-06-01T11:00")),
        ("every_kind.hour.json", ("--json",)),
    ],
)
def test_golden_output(capsys, golden, args):
    status, out, err = report(capsys, *args)
    assert status == 0
    assert err == "aimw report: 3 unreadable lines skipped\n"
    assert_golden(golden, out)


def test_relative_since_counts_back_from_now(capsys):
    """24h before 2025-06-02T11:00Z is the golden --since 2025-06-01T11:00."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args([SOURCE, "--since", "24h"]), now_ms=NEXT_DAY_11H_MS) == 0
    assert capsys.readouterr().out == (HERE / "golden" / "every_kind.since.txt").read_text()


def test_json_totals_add_up_to_the_groups(capsys):
    _, out, _ = report(capsys, "--json")
    document = json.loads(out)
    groups, total = document["groups"], document["total"]
    for field in ("requests", "failovers", "estimated_usage", "input_tokens", "cached_tokens", "output_tokens"):
        assert total[field] == sum(group[field] for group in groups), field
    errors: dict[str, int] = {}
    for group in groups:
        for error_type, count in group["errors"].items():
            errors[error_type] = errors.get(error_type, 0) + count
    assert (
        total["errors"]
        == errors
        == {
            "api_error": 2,
            "client_closed_request": 2,
            "rate_limit_error": 1,
            "request_too_large": 1,
        }
    )
    assert document["lines"] == {
        "read": 15,
        "exchanges": 11,
        "not_exchanges": 1,
        "unreadable": 3,
        "before_since": 0,
    }


def test_python_dash_m_aimw_report_runs():
    completed = subprocess.run(
        [sys.executable, "-m", "aimw", "report", SOURCE, "--by", "day"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == (HERE / "golden" / "every_kind.day.txt").read_text()


# ---------------------------------------------------------------- the Kong lines are the guides'


def guide_ai_block(name: str) -> dict:
    """The ``ai`` object of the sample file-log record in Kong's guide ``name`` (the guide
    elides fields with ``...`` lines, dropped here)."""
    text = (GUIDES / name).read_text()
    start = text.index("{", text.index('"ai": {'))
    depth = 0
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            break
    block = "\n".join(line for line in text[start : end + 1].splitlines() if line.strip() != "...")
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", block))


@pytest.mark.parametrize("guide", ["000_1d96dbea9ae6fd7c.txt", "002_2f27b64d9e5c6003.txt"])
def test_the_kong_lines_hold_the_guides_records(guide):
    """Hugging Face's (ai.proxy) and Azure's (meta and usage directly under ai)."""
    ai_blocks = []
    for line in LOG.read_text().splitlines():
        try:
            ai_blocks.append(json.loads(line).get("ai"))
        except (ValueError, AttributeError):
            continue  # the corrupt lines
    assert guide_ai_block(guide) in ai_blocks
