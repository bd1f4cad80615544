"""``python -m bench.soak``: one soak run; prints the report, writes ``summary.json`` and
``report.txt`` beside the servers' output, exits 1 when a rule was broken."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.net import run
from bench.soak.corpus import REPO
from bench.soak.report import failures, text
from bench.soak.run import SoakConfig, soak


def main(argv: list[str] | None = None) -> int:
    defaults = SoakConfig(output=Path())
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=defaults.streams, help="clients per round, all held at once")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="Hypercorn workers")
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="identical rounds (RSS compared)")
    parser.add_argument("--recipe", choices=("huggingface", "config"), default=defaults.recipe)
    parser.add_argument("--hold", type=float, default=defaults.hold, help="seconds all streams are held at once")
    parser.add_argument("--hold-gap", type=int, default=0, help="held streams' token gap in ms (0: 20-50 ms)")
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds of fault mix after that")
    parser.add_argument("--mix-clients", type=int, help="clients that run the fault mix (default: all)")
    parser.add_argument(
        "--pending", type=int, default=defaults.pending, help="ramp: streams waiting for a head at once"
    )
    parser.add_argument(
        "--upstream-timeout", type=float, default=defaults.upstream_timeout, help="AIMW_UPSTREAM_TIMEOUT"
    )
    parser.add_argument("--hang-after", type=float, help="seconds without a byte: a hang (default: timeout + 3)")
    parser.add_argument("--graceful-streams", type=int, default=defaults.graceful_streams, help="in flight at SIGTERM")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--output", type=Path, help="directory for the run (default bench/results/raw/soak-<time>)")
    args = parser.parse_args(argv)
    output = args.output or REPO / "bench" / "results" / "raw" / time.strftime("soak-%Y%m%d-%H%M%S")
    config = SoakConfig(
        output=output, streams=args.streams, workers=args.workers, rounds=args.rounds, recipe=args.recipe,
        hold=args.hold, hold_gap_ms=args.hold_gap, duration=args.duration, mix_clients=args.mix_clients,
        pending=args.pending, upstream_timeout=args.upstream_timeout, hang_after=args.hang_after,
        graceful_streams=min(args.graceful_streams, args.streams), seed=args.seed,
    )  # fmt: skip
    summary = run(soak(config), "auto")
    (output / "summary.json").write_text(json.dumps(summary, indent=1))
    report = text(summary)
    (output / "report.txt").write_text(report + "\n")
    print(report)
    print(f"(summary: {output / 'summary.json'})", file=sys.stderr)
    return 1 if failures(summary) else 0


if __name__ == "__main__":
    sys.exit(main())
