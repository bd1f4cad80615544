"""The Markdown report of a run: one table per scenario, the ratios between targets (and,
with ``--baseline``, between aimw and its baseline revision; with the Gemini targets, between
them and aimw on OpenAI, and what the Vertex AI token cost; with aimw-config, what its
balancer and failover layer cost against aimw), aimw's tuning goals against what was
measured, and how the run was made.

``render(results)`` is a pure function of the results dict the runner writes
(``raw/<run id>/results.json``); ``python -m bench.report results.json`` prints it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from statistics import median_low

from bench.baseline import Baseline
from bench.scenarios import SCENARIOS
from bench.targets import TARGETS

MB = 1024 * 1024
OTHERS_CPU_WARNING = 15.0  # percent: above it, something else on the machine competed with the run


def pick(results: dict) -> dict[tuple[str, str], dict]:
    """The measurement kept per (scenario, target): the median by req/s over the rounds."""
    grouped: dict[tuple[str, str], list[dict]] = {}
    for record in results["measurements"]:
        grouped.setdefault((record["scenario"], record["target"]), []).append(record)
    chosen = {}
    for key, records in grouped.items():
        measured = [record for record in records if "req_per_s" in record]
        if not measured:
            chosen[key] = records[0]
            continue
        middle = median_low(record["req_per_s"] for record in measured)
        chosen[key] = next(record for record in measured if record["req_per_s"] == middle)
    return chosen


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _ms(stats: dict | None, key: str = "p50") -> str:
    return _number(stats[key], 2) if stats else "–"


def _mb(value: int | None) -> str:
    return _number(value / MB, 1) if value else "–"


def _checked(record: dict) -> str:
    text = (
        f"{record['validated']:,} ok"
        if not record["invalid"]
        else f"**{record['invalid']:,}/{record['validated']:,} invalid**"
    )
    if record["errors"]:
        text += f", **{record['errors']:,} errors**"
    return text


def _server_cpu(record: dict, per_process: bool) -> str:
    total = _number(record["server_cpu_percent"])
    shares = [share for share in record.get("server_cpu_percent_by_process") or () if share >= 0.5]
    return f"{total} ({' / '.join(f'{share:.0f}' for share in shares)})" if per_process and shares else total


def contended(chosen: dict) -> list[str]:
    """Labels of the measurements during which other processes took more than OTHERS_CPU_WARNING % CPU."""
    return [
        record["label"] for record in chosen.values() if (record.get("others_cpu_percent") or 0.0) > OTHERS_CPU_WARNING
    ]


def _drivers(record: dict) -> str:
    loadgen = record.get("loadgen_cpu_percent")
    upstream = record.get("upstream_cpu_percent")
    text = f"{loadgen:.0f}" + (f" + {upstream:.0f}" if upstream is not None else "")
    others = record.get("others_cpu_percent") or 0.0
    if others > OTHERS_CPU_WARNING:
        text += f" (others {others:.0f} ⚠)"
    return text


def scenario_table(scenario_name: str, rows: list[dict]) -> list[str]:
    """The table of one scenario, one row per target."""
    stream = SCENARIOS[scenario_name].stream
    header = ["target", "req/s", "p50 ms", "p99 ms", "first byte p50 ms"]
    if stream:
        header += ["first text p50 ms", "events/s"]
    header += ["server CPU %" + (" (per process)" if SCENARIOS[scenario_name].workers > 1 else ""), "CPU ms/req"]
    if stream:
        header += ["CPU µs/event"]
    header += ["RSS idle MB", "RSS peak MB", "loadgen + upstream CPU %", "checked"]
    lines = [
        f"### {scenario_name} ({SCENARIOS[scenario_name].summary})",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for record in rows:
        if "req_per_s" not in record:
            reason = record.get("skipped") or record.get("failed", "").splitlines()[0]
            lines.append(f"| {record['target']} | {reason} |" + " |" * (len(header) - 2))
            continue
        cells = [
            record["target"],
            _number(record["req_per_s"], 1),
            _ms(record["latency_ms"]),
            _ms(record["latency_ms"], "p99"),
            _ms(record["first_byte_ms"]),
        ]
        if stream:
            cells += [_ms(record["first_text_ms"]), _number(record["events_per_s"])]
        cells += [
            _server_cpu(record, SCENARIOS[scenario_name].workers > 1),
            _number(record["server_cpu_ms_per_request"], 3),
        ]
        if stream:
            cells += [_number(record["server_cpu_us_per_event"], 2)]
        cells += [
            _mb(record.get("rss_idle_bytes")),
            _mb(record.get("server_rss_peak_bytes")),
            _drivers(record),
            _checked(record),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if not numerator or not denominator:
        return "–"
    return f"{numerator / denominator:.2f}×"


def _difference(left: float | None, right: float | None) -> str:
    if left is None or right is None:
        return "–"
    return f"{left - right:+.2f}"


def _get(chosen: dict, scenario: str, target: str, metric: Callable[[dict], float | None]) -> float | None:
    record = chosen.get((scenario, target))
    if record is None or "req_per_s" not in record:
        return None
    try:
        return metric(record)
    except (KeyError, TypeError):
        return None


def _req_per_s(record: dict) -> float:
    return record["req_per_s"]


def _p50(record: dict) -> float:
    return record["latency_ms"]["p50"]


def _first_byte(record: dict) -> float:
    return record["first_byte_ms"]["p50"]


def _cpu_per_request(record: dict) -> float:
    return record["server_cpu_ms_per_request"]


def ratio_table(chosen: dict, scenarios: list[str]) -> list[str]:
    """aimw against LiteLLM, the pass-through and the direct floor, per scenario. The last
    column is the drivers' headroom: how many times aimw's rate the fake upstream and the
    load generator sustain when nothing stands between them."""
    lines = [
        "| scenario | req/s aimw / LiteLLM | req/s aimw / pass-through | CPU per req LiteLLM / aimw "
        "| p50 aimw − direct ms | first byte aimw − direct ms | drivers' ceiling: direct / aimw req/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        of = partial(_get, chosen, scenario)
        lines.append(
            f"| {scenario} | {_ratio(of('aimw', _req_per_s), of('litellm', _req_per_s))} "
            f"| {_ratio(of('aimw', _req_per_s), of('passthrough', _req_per_s))} "
            f"| {_ratio(of('litellm', _cpu_per_request), of('aimw', _cpu_per_request))} "
            f"| {_difference(of('aimw', _p50), of('direct', _p50))} "
            f"| {_difference(of('aimw', _first_byte), of('direct', _first_byte))} "
            f"| {_ratio(of('direct', _req_per_s), of('aimw', _req_per_s))} |"
        )
    return [*lines, ""]


def _events_per_s(record: dict) -> float:
    return record["events_per_s"]


def _token_fetches(record: dict) -> str:
    if "token_requests" not in record:
        return "–"
    return f"{record['token_requests']} / {record.get('workers', 1)}"


GEMINI_TARGETS = ("aimw-gemini", "aimw-vertex")
CONFIG_TARGET = "aimw-config"
CONFIG_WITHIN = 0.05  # aimw-config's stream events/s at C=32 within 5 % of aimw's


def gemini_table(chosen: dict, scenarios: list[str]) -> list[str]:
    """aimw translating to Gemini against aimw translating to OpenAI Chat Completions (the
    aimw target), and Vertex AI (a google-auth token per request) against the Gemini API
    (a fixed key), per scenario; the token fetches of the Vertex AI measurement per worker."""
    lines = [
        "| scenario | aimw-gemini req/s | aimw-gemini events/s | req/s aimw-gemini / aimw "
        "| CPU per req aimw-gemini / aimw | req/s aimw-vertex / aimw-gemini "
        "| CPU per req aimw-vertex / aimw-gemini | aimw-vertex token fetches / workers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        of = partial(_get, chosen, scenario)
        events = of("aimw-gemini", _events_per_s) if SCENARIOS[scenario].stream else None
        vertex = chosen.get((scenario, "aimw-vertex"), {})
        lines.append(
            f"| {scenario} | {_number(of('aimw-gemini', _req_per_s), 1)} | {_number(events)} "
            f"| {_ratio(of('aimw-gemini', _req_per_s), of('aimw', _req_per_s))} "
            f"| {_ratio(of('aimw-gemini', _cpu_per_request), of('aimw', _cpu_per_request))} "
            f"| {_ratio(of('aimw-vertex', _req_per_s), of('aimw-gemini', _req_per_s))} "
            f"| {_ratio(of('aimw-vertex', _cpu_per_request), of('aimw-gemini', _cpu_per_request))} "
            f"| {_token_fetches(vertex)} |"
        )
    return [*lines, ""]


def _gemini_section(chosen: dict, scenarios: list[str], targets: list[str]) -> list[str]:
    if not any(target in targets for target in GEMINI_TARGETS):
        return []
    return [
        "## aimw on Gemini",
        "",
        "`aimw-gemini` translates the same Anthropic requests to the Gemini API "
        "(`:streamGenerateContent?alt=sse`, one upstream event per text chunk, as many as the OpenAI "
        "stream's), `aimw-vertex` to Vertex AI with a google-auth service-account token taken from the "
        "fake's token endpoint. CPU ratios above 1× cost more than the reference. A token cached per "
        "worker shows as one fetch per worker and a Vertex AI CPU per request close to the Gemini API's.",
        "",
        *gemini_table(chosen, scenarios),
    ]


def config_table(chosen: dict, scenarios: list[str]) -> list[str]:
    """aimw-config (recipes.config:app, two round-robin targets at the same fake) against aimw
    (recipes.huggingface:app, the same provider and upstream), per scenario: what the balancer
    and failover layer costs."""
    lines = [
        "| scenario | aimw-config req/s | aimw-config events/s | req/s aimw-config / aimw "
        "| CPU per req aimw-config / aimw | p50 aimw-config − aimw ms | first byte aimw-config − aimw ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        of = partial(_get, chosen, scenario)
        events = of(CONFIG_TARGET, _events_per_s) if SCENARIOS[scenario].stream else None
        lines.append(
            f"| {scenario} | {_number(of(CONFIG_TARGET, _req_per_s), 1)} | {_number(events)} "
            f"| {_ratio(of(CONFIG_TARGET, _req_per_s), of('aimw', _req_per_s))} "
            f"| {_ratio(of(CONFIG_TARGET, _cpu_per_request), of('aimw', _cpu_per_request))} "
            f"| {_difference(of(CONFIG_TARGET, _p50), of('aimw', _p50))} "
            f"| {_difference(of(CONFIG_TARGET, _first_byte), of('aimw', _first_byte))} |"
        )
    return [*lines, ""]


def _config_section(chosen: dict, scenarios: list[str], targets: list[str]) -> list[str]:
    if CONFIG_TARGET not in targets:
        return []
    return [
        "## aimw from a config file",
        "",
        "`aimw-config` serves `recipes.config:app` with a file in Kong's ai-proxy-advanced schema: two "
        "huggingface targets, round-robin with equal weights, both at the one fake upstream the run has. "
        "Every request passes the balancer and the failover layer and is translated as `aimw`'s is, so "
        "against `aimw` the ratios are what that layer costs (about 1× when it costs little; CPU above 1× "
        "costs more).",
        "",
        *config_table(chosen, scenarios),
    ]


def _rss_peak_mb(record: dict) -> float:
    return record["server_rss_peak_bytes"] / MB


def baseline_table(chosen: dict, scenarios: list[str], baseline: str) -> list[str]:
    """aimw (the working tree) against ``baseline`` (the target of its baseline revision), per
    scenario, each ratio turned so that above 1× the working tree does better."""
    lines = [
        f"| scenario | req/s aimw / {baseline} | CPU per req {baseline} / aimw | p50 aimw − {baseline} ms "
        f"| first byte aimw − {baseline} ms | RSS peak aimw − {baseline} MB |",
        "|---|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        of = partial(_get, chosen, scenario)
        lines.append(
            f"| {scenario} | {_ratio(of('aimw', _req_per_s), of(baseline, _req_per_s))} "
            f"| {_ratio(of(baseline, _cpu_per_request), of('aimw', _cpu_per_request))} "
            f"| {_difference(of('aimw', _p50), of(baseline, _p50))} "
            f"| {_difference(of('aimw', _first_byte), of(baseline, _first_byte))} "
            f"| {_difference(of('aimw', _rss_peak_mb), of(baseline, _rss_peak_mb))} |"
        )
    return [*lines, ""]


def _baseline_section(chosen: dict, scenarios: list[str], baseline: Baseline | None, commit: str | None) -> list[str]:
    if baseline is None:
        return []
    return [
        f"## aimw against {baseline.name}",
        "",
        f"The working tree (`aimw`, {commit}) against git {baseline.commit} (`{baseline.ref}`), "
        "measured in the same run, one after the other in each scenario: above 1× and below 0, the "
        "working tree does better.",
        "",
        *baseline_table(chosen, scenarios, baseline.name),
    ]


def _summary(target: str, baseline: Baseline | None) -> str:
    if baseline is None:
        return TARGETS[target].summary
    if target == baseline.name:
        return baseline.summary
    return TARGETS[target].summary + (" (the working tree)" if target == "aimw" else "")


def _above_direct(chosen: dict, scenario: str, metric: Callable[[dict], float]) -> float | None:
    """aimw's ``metric`` minus direct's in ``scenario`` (None when either was not measured)."""
    direct, aimw = _get(chosen, scenario, "direct", metric), _get(chosen, scenario, "aimw", metric)
    return None if direct is None or aimw is None else aimw - direct


def goal_rows(chosen: dict) -> list[tuple[str, str, bool | None]]:
    """aimw's tuning goals: (goal, what was measured, met? — None when not measured)."""
    rows: list[tuple[str, str, bool | None]] = []

    def add(goal: str, value: float | None, text: Callable[[float], str], met: Callable[[float], bool]) -> None:
        rows.append((goal, "not measured" if value is None else text(value), None if value is None else met(value)))

    aimw = lambda scenario, metric: _get(chosen, scenario, "aimw", metric)  # noqa: E731
    add("stream ≥ 100,000 translated events/s at C=32", aimw("stream-c32", lambda r: r["events_per_s"]),
        lambda v: f"{v:,.0f} events/s", lambda v: v >= 100_000)  # fmt: skip
    add("Gemini stream ≥ 100,000 translated events/s at C=32", _get(chosen, "stream-c32", "aimw-gemini", _events_per_s),
        lambda v: f"{v:,.0f} events/s", lambda v: v >= 100_000)  # fmt: skip
    config_events = _get(chosen, "stream-c32", CONFIG_TARGET, _events_per_s)
    aimw_events = aimw("stream-c32", _events_per_s)
    add(
        f"config (two targets, round-robin) stream events/s within {CONFIG_WITHIN * 100:g} % of aimw's at C=32",
        config_events / aimw_events if config_events and aimw_events else None,
        lambda v: f"{config_events:,.0f} events/s, {v:.2f}× aimw's",
        lambda v: v >= 1 - CONFIG_WITHIN,
    )
    add(
        "non-stream ≥ 1,500 req/s at C=32",
        aimw("nonstream-c32", _req_per_s),
        lambda v: f"{v:,.0f} req/s",
        lambda v: v >= 1500,
    )
    for scenario in ("nonstream-c1", "stream-c1"):
        p50 = _above_direct(chosen, scenario, _p50)
        add(f"p50 at C=1 within 1 ms of direct ({scenario})", p50, lambda v: f"+{v:.2f} ms", lambda v: v <= 1.0)
        first = _above_direct(chosen, scenario, _first_byte)
        add(
            f"first byte at C=1 within 1.5 ms of direct ({scenario})",
            first,
            lambda v: f"+{v:.2f} ms",
            lambda v: v <= 1.5,
        )
    idle = [record["rss_idle_bytes"] for (scenario, target), record in chosen.items()
            if target == "aimw" and SCENARIOS[scenario].workers == 1 and record.get("rss_idle_bytes")]  # fmt: skip
    add(
        "RSS < 100 MB idle (1 worker, largest seen)",
        max(idle) / MB if idle else None,
        lambda v: f"{v:.1f} MB",
        lambda v: v < 100,
    )
    peak = aimw("nonstream-c128", lambda r: r["server_rss_peak_bytes"])
    add("RSS < 150 MB at C=128", peak / MB if peak else None, lambda v: f"{v:.1f} MB", lambda v: v < 150)
    for one, two in (("nonstream-c32", "nonstream-c32-w2"), ("stream-c32", "stream-c32-w2")):
        single, double = aimw(one, _req_per_s), aimw(two, _req_per_s)
        add(
            f"2 workers ≥ 1.7× one worker ({one})",
            double / single if single and double else None,
            lambda v: f"{v:.2f}×",
            lambda v: v >= 1.7,
        )
    fetched = [(record["token_requests"], record.get("workers", 1)) for (_, target), record in chosen.items()
               if target == "aimw-vertex" and "token_requests" in record and record.get("requests")]  # fmt: skip
    rows.append((
        "Vertex AI token fetched once per worker (cached, every measurement)",
        f"{sum(f for f, _ in fetched)} fetches for {sum(w for _, w in fetched)} workers in {len(fetched)} measurements"
        if fetched else "not measured",
        all(1 <= f <= w for f, w in fetched) if fetched else None,
    ))  # fmt: skip
    return rows


def render(results: dict) -> str:
    """The whole Markdown report."""
    chosen = pick(results)
    options, machine = results["options"], results["machine"]
    scenarios = [name for name in options["scenarios"] if any(key[0] == name for key in chosen)]
    targets = options["targets"]
    baseline = Baseline(**options["baseline"]) if options.get("baseline") else None
    lines = [
        "# aimw benchmark",
        "",
        f"Run `{results['run_id']}`: {len(results['measurements'])} measurements in {results['seconds']:.0f} s. "
        f"{options['duration']:g} s measured after {options['warmup']:g} s of warm-up per target and scenario, "
        f"{options['chunks']} chunks per streamed answer, one response in {options['validate_every']} fully validated"
        + (f", median of {options['rounds']} rounds" if options["rounds"] > 1 else "")
        + ".",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpus']} CPUs, Linux {machine['kernel']}, "
        f"Python {machine['python']}; "
        + (
            f"server under test pinned to CPU {machine['server_cpus']}, "
            f"fake upstream and load generator to CPU {machine['driver_cpus']} "
            "(2-worker scenarios unpinned)"
            if machine["server_cpus"]
            else "nothing pinned"
        )
        + f"; load generator and fake upstream on {machine['event_loop']}. aimw {machine['aimw_commit']}; "
        + ", ".join(f"{name} {version}" for name, version in machine["versions"].items() if version)
        + (f"; Hypercorn args `{' '.join(options['hypercorn_args'])}`" if options["hypercorn_args"] else "")
        + ".",
        "",
        "Targets: " + "; ".join(f"**{name}**: {_summary(name, baseline)}" for name in targets) + ".",
        "",
        *_contention_warning(chosen),
        *_code_change_warning(results),
        *_baseline_section(chosen, scenarios, baseline, machine["aimw_commit"]),
        "## aimw against the others",
        "",
        *ratio_table(chosen, scenarios),
        *_gemini_section(chosen, scenarios, targets),
        *_config_section(chosen, scenarios, targets),
        "## aimw's tuning goals",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        *(
            f"| {goal} | {value} | {'–' if met is None else ('yes' if met else '**no**')} |"
            for goal, value, met in goal_rows(chosen)
        ),
        "",
        "## Per scenario",
        "",
        "Latencies from the request's first byte written to the answer's last byte read (first byte: the "
        "answer's first byte; first text: the first text delta). CPU: the server's whole process tree "
        "over the measured window, from /proc/<pid>/stat. RSS: summed VmRSS of the tree, idle after start "
        "and peak during the run. `loadgen + upstream CPU %`: the drivers' own load (100 = one CPU), which "
        "must stay under 100 for the server under test to be the bottleneck; `others` is CPU taken by "
        "processes outside the run. `checked`: responses fully validated (SSE invariants, text, stop "
        "reason, usage); every response is also checked for status 200 and a complete end.",
        "",
    ]
    for scenario in scenarios:
        rows = [chosen[(scenario, target)] for target in targets if (scenario, target) in chosen]
        lines += scenario_table(scenario, rows)
    return "\n".join(lines)


def _code_change_warning(results: dict) -> list[str]:
    versions = {record["aimw_code"] for record in results["measurements"] if record.get("aimw_code")}
    if len(versions) <= 1:
        return []
    return [f"⚠ aimw's code (src/, recipes/) changed during the run: {len(versions)} versions were measured.", ""]


def _contention_warning(chosen: dict) -> list[str]:
    busy = contended(chosen)
    if not busy:
        return []
    return [
        f"⚠ Other processes took more than {OTHERS_CPU_WARNING:g} % of a CPU during {len(busy)} of {len(chosen)} "
        "measurements (`others` below): their numbers are lower than this machine can do. Rerun on an idle "
        "machine, or with `--rounds 3`.",
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit("usage: python -m bench.report RESULTS.json")
    sys.stdout.write(render(json.loads(Path(argv[0]).read_text())))


if __name__ == "__main__":
    main()
