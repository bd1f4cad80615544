"""``python -m bench.balancer``: what picking a target costs (issue 10), per algorithm.

One pick() + started() + finished() of aimw.balancer.Balancer over three targets of weights
70 / 25 / 5, all eligible, with the circuit breaker off (``max_fails`` 0) and on (3); the
best of ``--repeat`` timeit runs of ``--number`` calls, in µs per call. Runs in this process:
no server, no network. The figures go to stdout as a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import timeit

from aimw.balancer import AttemptFigures, Balancer
from aimw.balancer.balancer import ALGORITHMS

WEIGHTS = (70, 25, 5)
ELIGIBLE = (0, 1, 2)
FIGURES = AttemptFigures(
    success=True, e2e_ms=1200.0, tpot_ms=12.0, prompt_tokens=900, completion_tokens=100, cost=0.002
)
SESSION = b"5f0c6a2e-9d1b-4c7e-8a3f-claude-code-session"  # what x-claude-code-session-id looks like
MEASURED = ALGORITHMS


def cost_of_a_pick(algorithm: str, max_fails: int, number: int, repeat: int) -> float:
    """µs for one pick() + started() + finished() with ``algorithm`` (best of ``repeat``)."""
    balancer = Balancer(list(WEIGHTS), algorithm, max_fails=max_fails)
    hash_value = SESSION if algorithm == "consistent-hashing" else None

    def one() -> None:
        index = balancer.pick(ELIGIBLE, hash_value)
        balancer.started(index)
        balancer.finished(index, FIGURES)

    return min(timeit.repeat(one, number=number, repeat=repeat)) / number * 1e6


def table(number: int, repeat: int) -> str:
    """The Markdown table: one row per algorithm, µs without and with the circuit breaker."""
    lines = ["| algorithm | µs per pick, breaker off | µs per pick, max_fails 3 |", "|---|---|---|"]
    for algorithm in MEASURED:
        off = cost_of_a_pick(algorithm, 0, number, repeat)
        on = cost_of_a_pick(algorithm, 3, number, repeat)
        lines.append(f"| {algorithm} | {off:.2f} | {on:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.balancer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=200_000, help="calls per timeit run (default 200000)")
    parser.add_argument("--repeat", type=int, default=5, help="timeit runs, the best is kept (default 5)")
    args = parser.parse_args(argv)
    sys.stdout.write(table(args.number, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
