"""``python -m bench``: measure aimw side by side with a direct call, a plain Python
pass-through and LiteLLM, on loopback, and write a Markdown table and a PNG chart.

Exits 1 when any response failed validation, any request failed, or a target could not
be measured; the numbers themselves are never judged (no thresholds).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from bench.baseline import Baseline, BaselineError, resolve_baseline
from bench.report import render
from bench.runner import Run, RunOptions
from bench.scenarios import SCENARIOS
from bench.targets import REPO, TARGETS, RunContext

BENCH_VENV_PYTHON = REPO / "bench" / ".venv" / "bin" / "python"
QUICK = {"duration": 1.0, "warmup": 0.5}
DEFAULTS = {"duration": 10.0, "warmup": 2.0}


def _names(known: dict, kind: str):
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}"
            )
        return names

    return parse


def _baseline(ref: str) -> Baseline:
    try:
        return resolve_baseline(ref, REPO)
    except BaselineError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def with_baseline(targets: list[str], baseline: Baseline | None) -> list[str]:
    """``targets`` with the baseline's right after aimw (last when aimw is not measured)."""
    if baseline is None:
        return targets
    at = targets.index("aimw") + 1 if "aimw" in targets else len(targets)
    return [*targets[:at], baseline.name, *targets[at:]]


def parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    options.add_argument(
        "--targets",
        type=_names(TARGETS, "target"),
        help=f"comma-separated, from {','.join(TARGETS)} (default: all; litellm when installed)",
    )
    options.add_argument(
        "--scenarios",
        type=_names(SCENARIOS, "scenario"),
        default=list(SCENARIOS),
        help=f"comma-separated, from {','.join(SCENARIOS)} (default: all)",
    )
    options.add_argument(
        "--duration",
        type=float,
        help=f"seconds measured per target and scenario "
        f"(default {DEFAULTS['duration']:g}; --quick {QUICK['duration']:g})",
    )
    options.add_argument(
        "--warmup",
        type=float,
        help=f"seconds of load before measuring (default {DEFAULTS['warmup']:g}; --quick {QUICK['warmup']:g})",
    )
    options.add_argument("--quick", action="store_true", help="short measurements, for a smoke run")
    options.add_argument("--chunks", type=int, default=200, help="text chunks per streamed answer (default 200)")
    options.add_argument(
        "--rounds", type=int, default=1, help="repeat the interleaved run, report the median (default 1)"
    )
    options.add_argument(
        "--validate-every", type=int, default=10, help="fully validate one response in N (default 10; 1: all)"
    )
    options.add_argument("--timeout", type=float, default=30.0, help="seconds one request may take (default 30)")
    options.add_argument(
        "--hypercorn-args",
        default="-k uvloop",
        help="Hypercorn arguments for aimw and passthrough (default: '-k uvloop'; '' for asyncio's own loop)",
    )
    options.add_argument(
        "--baseline",
        metavar="REF",
        type=_baseline,
        help="also measure aimw as of git revision REF, as target aimw@<commit> next to aimw",
    )
    options.add_argument(
        "--output",
        type=Path,
        default=REPO / "bench" / "results",
        help="where results.md, results.png and raw/ go (default bench/results)",
    )
    options.add_argument(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="event loop of the fake upstream and the load generator (default auto: uvloop when installed)",
    )
    options.add_argument("--no-pin", action="store_true", help="do not pin the server and the drivers to separate CPUs")
    options.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    options.add_argument("--list", action="store_true", help="list targets and scenarios, then exit")
    return options


def options_from(args: argparse.Namespace) -> RunOptions:
    times = QUICK if args.quick else DEFAULTS
    probe = RunContext(python=sys.executable, raw_dir=args.output, upstream_url="", chunks=args.chunks)
    if args.targets is None:
        targets = [name for name, target in TARGETS.items() if target.available(probe) is None]
        for name in TARGETS.keys() - set(targets):
            sys.stderr.write(f"note: {name} skipped: {TARGETS[name].available(probe)}\n")
    else:
        targets = args.targets
    return RunOptions(
        targets=with_baseline(targets, args.baseline),
        scenarios=args.scenarios,
        duration=args.duration if args.duration is not None else times["duration"],
        warmup=args.warmup if args.warmup is not None else times["warmup"],
        chunks=args.chunks,
        rounds=args.rounds,
        validate_every=args.validate_every,
        timeout=args.timeout,
        hypercorn_args=shlex.split(args.hypercorn_args),
        output_dir=args.output,
        pin=not args.no_pin,
        chart=not args.no_chart,
        progress=sys.stderr.isatty(),
        loop=args.loop,
        baseline=args.baseline,
    )


def write_chart(results_path: Path, png_path: Path) -> str:
    """Draw the chart here when matplotlib is importable, else with bench/.venv's Python."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if not BENCH_VENV_PYTHON.exists():
            return "chart skipped: matplotlib is not installed (run bench/setup.sh)"
        subprocess.run(
            [str(BENCH_VENV_PYTHON), "-m", "bench.chart", str(results_path), str(png_path)], cwd=REPO, check=True
        )
        return f"chart: {png_path}"
    from bench.chart import draw

    draw(json.loads(results_path.read_text()), png_path)
    return f"chart: {png_path}"


def problems_of(results: dict) -> list[str]:
    """Measurements that failed, or had invalid responses or failed requests."""
    problems = []
    for record in results["measurements"]:
        if "failed" in record:
            problems.append(f"{record['label']}: {record['failed'].splitlines()[0]}")
        elif "req_per_s" in record and (record["invalid"] or record["error_counts"]):
            failed_requests = sum(record["error_counts"].values())
            examples = record["invalid_examples"][:1] or list(record["error_counts"])[:1]
            problems.append(
                f"{record['label']}: {record['invalid']} invalid, {failed_requests} failed requests; e.g. {examples}"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        for name, target in TARGETS.items():
            print(f"target   {name:<18} {target.summary}")
        for name, scenario in SCENARIOS.items():
            print(f"scenario {name:<18} {scenario.summary}")
        return 0
    options = options_from(args)
    if min(args.chunks, args.rounds, args.validate_every) < 1:
        sys.exit("--chunks, --rounds and --validate-every must be at least 1")
    run = Run(options)
    sys.stderr.write(
        f"bench: targets {','.join(options.targets)}; scenarios {','.join(options.scenarios)}; "
        f"raw output in {run.raw_dir}\n"
    )
    try:
        results = run.execute()
    except BaselineError as exc:
        sys.exit(f"bench: --baseline: {exc}")
    report = render(results)
    options.output_dir.mkdir(parents=True, exist_ok=True)
    report_path = options.output_dir / "results.md"
    report_path.write_text(report)
    (run.raw_dir / "results.md").write_text(report)
    print(report)
    sys.stderr.write(f"report: {report_path}\nraw results: {run.raw_dir / 'results.json'}\n")
    if options.chart:
        sys.stderr.write(write_chart(run.raw_dir / "results.json", options.output_dir / "results.png") + "\n")
    problems = problems_of(results)
    for problem in problems:
        sys.stderr.write(f"PROBLEM {problem}\n")
    return 1 if problems else 0
