"""The PNG chart of a run (needs matplotlib, installed into bench/.venv by bench/setup.sh).

Three panels, scenarios along x and one bar per target: throughput (req/s), median
latency (ms) and server CPU per request (ms), each on a log scale since the direct
floor and the proxies differ by orders of magnitude.

    python -m bench.chart bench/results/raw/<run id>/results.json bench/results/results.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.report import pick

COLOURS = {
    "direct": "#9e9e9e",
    "passthrough": "#5c6bc0",
    "aimw": "#2e7d32",
    "aimw-gemini": "#1a73e8",
    "aimw-vertex": "#00897b",
    "aimw-config": "#1b5e20",
    "litellm": "#ef6c00",
}
BASELINE_COLOUR = "#81c784"  # aimw@<commit>: aimw's green, lighter
PANELS = (
    ("throughput (req/s, higher is better)", lambda record: record["req_per_s"]),
    ("latency p50 (ms, lower is better)", lambda record: record["latency_ms"]["p50"]),
    ("server CPU per request (ms, lower is better)", lambda record: record["server_cpu_ms_per_request"]),
)


def draw(results: dict, path: Path) -> Path:
    """Write the chart of ``results`` to ``path`` (PNG); returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = pick(results)
    scenarios = [name for name in results["options"]["scenarios"] if any(key[0] == name for key in chosen)]
    targets = [name for name in results["options"]["targets"] if any(key[1] == name for key in chosen)]
    width = 0.8 / max(1, len(targets))
    figure, axes = plt.subplots(len(PANELS), 1, figsize=(12, 4 * len(PANELS)), constrained_layout=True)
    for axis, (title, metric) in zip(axes, PANELS, strict=True):
        for offset, target in enumerate(targets):
            xs, heights = [], []
            for position, scenario in enumerate(scenarios):
                record = chosen.get((scenario, target))
                value = metric(record) if record and "req_per_s" in record else None
                if value:
                    xs.append(position + (offset - (len(targets) - 1) / 2) * width)
                    heights.append(value)
            bars = axis.bar(xs, heights, width, label=target, color=_colour(target))
            axis.bar_label(bars, labels=[_short(value) for value in heights], fontsize=7, padding=2)
        axis.set_yscale("log")
        axis.set_title(title)
        axis.set_xticks(range(len(scenarios)), scenarios)
        axis.grid(axis="y", which="major", alpha=0.3)
    axes[0].legend(ncols=len(targets), loc="upper right")
    figure.suptitle(f"aimw benchmark {results['run_id']} ({results['options']['duration']:g} s per measurement)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _colour(target: str) -> str | None:
    return COLOURS.get(target, BASELINE_COLOUR if target.startswith("aimw@") else None)


def _short(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.2f}"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.exit("usage: python -m bench.chart RESULTS.json OUT.png")
    draw(json.loads(Path(argv[0]).read_text()), Path(argv[1]))


if __name__ == "__main__":
    main()
