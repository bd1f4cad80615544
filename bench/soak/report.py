"""The soak's verdict and its plain-text report, both read from the run's summary
(:func:`bench.soak.run.soak`; also written as ``summary.json``).

:func:`failures` lists every rule of issue 11 the run broke (empty: it passed): streams held,
every answer valid or an Anthropic error, no hang, nothing leaked after each round, RSS of each
round within 5 % of the first after it settled, one whole log line per exchange with its status,
reason and usage, a normal answer right after, a graceful stop, no listen-queue overflow.
"""

from __future__ import annotations

RSS_ROUND_TOLERANCE = 0.05  # a later round's settled RSS may exceed the first's by this share
EXIT_SLACK_S = 5.0  # seconds past the streams' end (and below graceful_timeout) Hypercorn may take to exit


def failures(summary: dict) -> list[str]:
    """Every rule the run broke, in words."""
    config, found = summary["config"], []
    for number, round_ in enumerate(summary.get("rounds", []), 1):
        where, tally = f"round {number}", round_["tally"]
        if round_["held_streams"] < config["streams"]:
            found.append(f"{where}: {round_['held_streams']} streams held at once, fewer than {config['streams']}")
        found += _tally_failures(where, tally)
        for name, value in round_["settled"]["leaks"].items():
            found.append(f"{where}: leaked after settling: {name} {value}")
    rounds = summary.get("rounds", [])
    if len(rounds) > 1:
        first = rounds[0]["settled"]["gateway"]["rss_mb"]
        for number, round_ in enumerate(rounds[1:], 2):
            rss = round_["settled"]["gateway"]["rss_mb"]
            if rss > first * (1 + RSS_ROUND_TOLERANCE):
                found.append(f"round {number}: settled RSS {rss} MB, more than 5 % above round 1's {first} MB")
    found += _tally_failures("warm-up", summary.get("warm_up", {}))
    after = summary.get("after", {})
    if after.get("exchanges") != 1 or after.get("problem_count"):
        found.append(f"the normal request after the rounds failed: {after.get('problems')}")
    found += _graceful_failures(summary.get("graceful"))
    log = summary.get("log", {})
    for check, count in sorted(log.get("problem_counts", {}).items()):
        found.append(f"log: {count} problems with {check}: {log['problems'].get(check, [])[:3]}")
    fake = summary.get("fake_router", {})
    if fake.get("rejected"):
        found.append(f"the fake router rejected {fake['rejected']} requests: {fake.get('problems')}")
    if fake.get("fate_counts", {}).get("stall_unabandoned"):
        found.append(f"the gateway never gave up {fake['fate_counts']['stall_unabandoned']} stalled exchanges")
    for name, grown in summary.get("listen_overflows", {}).items():
        if grown:
            found.append(f"listen queue: {name} grew by {grown} (connections the kernel dropped)")
    if summary.get("gateway_output", {}).get("tracebacks"):
        found.append(f"the gateway printed {summary['gateway_output']['tracebacks']} tracebacks")
    return found


def _tally_failures(where: str, tally: dict) -> list[str]:
    found = []
    if tally.get("problem_count"):
        found.append(f"{where}: {tally['problem_count']} exchanges got a wrong answer: {tally['problems'][:5]}")
    if tally.get("hangs"):
        found.append(f"{where}: {tally['hangs']} exchanges hung")
    return found


def _graceful_failures(graceful: dict | None) -> list[str]:
    if graceful is None:
        return ["no graceful stop was tried"]
    found = _tally_failures("graceful stop", graceful["tally"])
    if graceful["in_flight_at_sigterm"] != graceful["streams"]:
        found.append(
            f"graceful stop: only {graceful['in_flight_at_sigterm']} of {graceful['streams']} streams in flight"
        )
    if graceful["tally"]["exchanges"] != graceful["streams"]:
        found.append(f"graceful stop: {graceful['tally']['exchanges']} of {graceful['streams']} streams ended")
    if graceful["exit_code"] != 0:
        found.append(f"graceful stop: Hypercorn exited with {graceful['exit_code']}")
    elif graceful["exit_s"] > min(
        graceful["streams_done_s"] + EXIT_SLACK_S, graceful["graceful_timeout_s"] + EXIT_SLACK_S
    ):
        found.append(
            f"graceful stop: exit {graceful['exit_s']} s after SIGTERM, streams done at {graceful['streams_done_s']} s"
        )
    return found


def text(summary: dict) -> str:
    """The figures, one per line, for a person."""
    config = summary["config"]
    baseline = summary.get("baseline", {})
    lines = [
        f"aimw soak: recipes.{config['recipe']}, {config['streams']} streams, {config['workers']} worker(s), "
        f"{config['rounds']} rounds (all held {config['hold']} s, then the fault mix {config['duration']} s; "
        f"AIMW_UPSTREAM_TIMEOUT {config['upstream_timeout']} s); bodies {min(summary.get('body_bytes', [0]))}-"
        f"{max(summary.get('body_bytes', [0]))} bytes",
        f"idle baseline: {_snapshot(baseline)}",
    ]
    for number, round_ in enumerate(summary.get("rounds", []), 1):
        tally, settled, plateau = round_["tally"], round_["settled"], round_["plateau"]
        held = plateau.get("held_streams", 0)
        per_stream = (plateau["rss_mb"] - baseline["rss_mb"]) * 1024 / held if held else 0
        lines += [
            f"round {number} ({tally['seconds']} s): {round_['held_streams']} streams held at once "
            f"(all {tally['held_at_plateau']} in after {tally['ramp_s']} s; client peak in flight "
            f"{tally['peak_in_flight']}), {tally['exchanges']} exchanges, {tally['problem_count']} wrong, "
            f"{tally['hangs']} hung, {tally['timed_out']} answered with the gateway's timeout "
            f"{tally['timed_out_kinds'] or ''}, {tally['keepalive_retries']} sent again (keep-alive closed); "
            f"longest wait for a head {tally['max_head_wait_ms']} ms, "
            f"for a byte mid-answer {tally['max_silence_ms']} ms",
            f"  kinds: {_counts(tally['kinds'])}",
            f"  statuses: {_counts(tally['statuses'])}",
            f"  token trip fake->client (ms): {_percentiles(tally['latency_ms'])}; first tokens: "
            f"{_percentiles(tally['first_token_ms'])}; client loop lag: {_percentiles(tally['loop_lag_ms'])}",
            f"  with all held: {_snapshot(plateau)} ({per_stream:.0f} KB per held stream over idle); "
            f"round's peak RSS {round_['peak_rss_mb']} MB",
            f"  CPU seconds: {_counts(round_['cpu_s'])}",
            f"  after settling ({settled['seconds']} s): {_snapshot(settled['gateway'])}, upstream connections "
            f"{settled['upstream_connections']} (tcp {settled['tcp_to_upstream']}); "
            f"leaks: {settled['leaks'] or 'none'}",
        ]
        lines += [f"  ! {problem}" for problem in tally["problems"][:5]]
    graceful = summary.get("graceful")
    if graceful:
        lines.append(
            f"graceful stop: {graceful['in_flight_at_sigterm']} streams in flight at SIGTERM, "
            f"{graceful['tally']['exchanges'] - graceful['tally']['problem_count']} ended whole by "
            f"{graceful['streams_done_s']} s; Hypercorn exited {graceful['exit_code']} after {graceful['exit_s']} s "
            f"(graceful_timeout {graceful['graceful_timeout_s']} s)"
        )
    log = summary.get("log", {})
    lines.append(
        f"log: {log.get('lines')} lines for {log.get('exchanges')} exchanges; problems: "
        f"{log.get('problem_counts') or 'none'}; broken streams' usage: {log.get('stream_fault_usage')}; "
        f"clients that left after their answer ended (a busy client): {log.get('late_departures')}"
    )
    lines.append(f"log statuses: {_counts(log.get('statuses', {}))}")
    lines.append(f"listen-queue overflows during the run: {summary.get('listen_overflows')}")
    broken = failures(summary)
    lines.append("PASSED" if not broken else "FAILED:\n" + "\n".join(f"- {failure}" for failure in broken))
    return "\n".join(lines)


def _snapshot(snap: dict) -> str:
    if not snap:
        return "-"
    return (
        f"RSS {snap['rss_mb']} MB (peak {snap['peak_rss_mb']}), {snap['tasks']} tasks, {snap['fds']} fds, "
        f"pool {snap['pool_idle']} idle / {snap['pool_in_use']} in use"
    )


def _counts(counts: dict) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def _percentiles(values: dict) -> str:
    if not values:
        return "-"
    return f"p50 {values['p50']}, p99 {values['p99']}, max {values['max']}"
