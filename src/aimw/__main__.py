"""``python -m aimw`` (and the ``aimw`` console script): aimw's commands.

``aimw report [LOG ...] [--by hour|day] [--since WHEN] [--json] [--png FILE]``: the log read
for a person (:mod:`aimw.report`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aimw.report import cli as report_cli


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (else ``sys.argv[1:]``), run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="aimw", description="aimw's commands")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    report = commands.add_parser(
        "report",
        help="the JSON-lines log read for a person: requests, errors, tokens, cost, latency",
        description=report_cli.DESCRIPTION,
    )
    report_cli.add_arguments(report)
    args = parser.parse_args(argv)
    return report_cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
