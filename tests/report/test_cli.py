"""``aimw report``'s command line: its errors (exit status 2 and a message), compressed logs
and standard input, ``--png`` with and without matplotlib, the cap on distinct groups."""

from __future__ import annotations

import gzip
import io
import json
import sys

import pytest

from aimw.__main__ import main
from aimw.report import aggregate
from aimw.report.aggregate import Report
from aimw.report.records import Record
from tests.report import EVERY_KIND_LOG as LOG

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_a_missing_log_is_named(capsys, tmp_path):
    assert main(["report", str(tmp_path / "nowhere.log")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"aimw report: cannot read {tmp_path / 'nowhere.log'}: No such file or directory\n"


@pytest.mark.parametrize("since", ["yesterday", "24x", "2025-13-01"])
def test_a_since_that_is_no_time_is_refused(capsys, since):
    assert main(["report", str(LOG), "--since", since]) == 2
    assert "expected an ISO date or time (2025-06-01T09:30) or a time ago (24h, 7d)" in capsys.readouterr().err


def test_an_iso_time_with_an_offset_is_that_moment(capsys):
    assert main(["report", str(LOG), "--json", "--since", "2025-06-01T13:00+02:00"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["since"] == "2025-06-01T11:00:00Z"
    assert document["lines"]["before_since"] == 4


def test_gzip_and_standard_input_read_the_same(capsys, tmp_path, monkeypatch):
    assert main(["report", "--json", str(LOG)]) == 0
    plain = json.loads(capsys.readouterr().out)
    compressed = tmp_path / "aimw.log.1.gz"
    compressed.write_bytes(gzip.compress(LOG.read_bytes()))
    assert main(["report", "--json", str(compressed)]) == 0
    assert json.loads(capsys.readouterr().out)["groups"] == plain["groups"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(LOG.read_bytes())))
    assert main(["report", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"] == plain["groups"]


def test_several_logs_are_read_as_one(capsys):
    assert main(["report", "--json", str(LOG), str(LOG)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["total"]["requests"], document["lines"]["unreadable"]) == (22, 6)


def test_png_without_matplotlib_says_how_to_install_it_before_reading(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert main(["report", str(tmp_path / "not-read.log"), "--png", str(tmp_path / "chart.png")]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", "aimw report: --png needs matplotlib: pip install 'aimw[report]'\n")
    assert not (tmp_path / "chart.png").exists()


def test_png_draws_the_chart(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    chart = tmp_path / "chart.png"
    assert main(["report", str(LOG), "--png", str(chart)]) == 0
    assert chart.read_bytes().startswith(PNG_SIGNATURE)
    assert capsys.readouterr().err.endswith(f"aimw report: chart written to {chart}\n")


def test_past_the_cap_further_groups_are_counted_together(monkeypatch):
    monkeypatch.setattr(aggregate, "MAX_GROUPS", 2)
    report = Report("day")
    for model in ("a", "b", "c", "d"):
        report.add(Record(0, "openai", model, "-", None, 10, 0, 1, 0.0, 100.0, 10.0, 1, False))
    assert [(key.model, stats.requests, stats.prompt_tokens) for key, stats in report.rows()] == [
        ("(other)", 2, 20),
        ("a", 1, 10),
        ("b", 1, 10),
    ]
