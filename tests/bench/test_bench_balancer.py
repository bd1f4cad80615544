"""bench.balancer: the cost of picking a target, per algorithm (a tiny run)."""

from __future__ import annotations

from bench import balancer


def test_the_table_has_every_algorithm_with_both_costs(capsys):
    assert balancer.main(["--number", "200", "--repeat", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "µs" not in line]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == list(balancer.MEASURED)
    for row in rows:
        off, on = (float(cell) for cell in row.strip(" |").split(" | ")[1:])
        assert off > 0 and on > 0
