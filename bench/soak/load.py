"""Rounds of load: ``streams`` clients, each opening with a held stream (so that all of them
are held at once), then, once those are released, drawing exchanges from the fault mix, a
short think time apart, until the round's time is up. A watchdog aborts any exchange that
waited too long for its answer or for its next byte (a hang); a probe measures this process's
own event-loop lag, which the token trips include.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.soak.checks import answer_problems
from bench.soak.client import ClientConnection, Latencies, Outcome, connect
from bench.soak.corpus import Requests
from bench.soak.plan import Plan, Planner

_now = time.monotonic_ns
_FOREVER = 2**63 - 1
THINK_S = 1.0  # a client waits up to this long (uniform) between two exchanges: a tool runs, a user reads
_WATCH_INTERVAL = 0.25  # seconds between two hang checks
_LAG_INTERVAL = 0.05  # seconds the lag probe sleeps
_PROBLEMS_KEPT = 30
_CHECKED_INLINE = 256 * 1024  # bytes: a longer answer is checked by the checking task, between reads


@dataclass(frozen=True)
class Limits:
    """hang_after: seconds without a byte once an answer began; head_timeout: seconds without
    an answer's head; pending: held streams waiting for their head at once during the ramp;
    ramp_timeout: seconds for all held streams to be in."""

    hang_after: float = 5.0
    head_timeout: float = 30.0
    pending: int = 64
    ramp_timeout: float = 600.0


@dataclass(frozen=True)
class Ended:
    """An exchange made: its plan, the text deltas (tokens) its client got, the status it
    got (0: none), whether the gateway answered it with its own upstream timeout, when its
    client left (monotonic ns; 0: it did not)."""

    plan: Plan
    tokens: int
    status: int
    timed_out: bool
    left_ns: int = 0


@dataclass(frozen=True)
class RoundShape:
    """streams: clients, each first holding a stream (all at once); hold_gap_ms: the held
    streams' token gap (0: 20-50 ms); mix_clients: how many of the clients then run the fault
    mix (None: all), for ``duration`` seconds."""

    streams: int
    duration: float
    hold_gap_ms: int = 0
    mix_clients: int | None = None


@dataclass
class Tally:
    """What one round (or phase) of exchanges got. Times in ms unless named otherwise."""

    exchanges: int = 0
    kinds: Counter = field(default_factory=Counter)  # plan kind -> exchanges
    ends: Counter = field(default_factory=Counter)  # "kind end" -> exchanges
    statuses: Counter = field(default_factory=Counter)  # "kind status" -> exchanges answered
    problems: list[str] = field(default_factory=list)  # the first ones
    problem_count: int = 0
    timed_out: int = 0  # answered with the gateway's own upstream timeout (see checks.answer_problems)
    timed_out_kinds: Counter = field(default_factory=Counter)
    hangs: int = 0
    keepalive_retries: int = 0  # requests sent again: the gateway had closed the idle connection
    peak_in_flight: int = 0
    held_at_plateau: int = 0  # streams open at the fake once every client's held stream was in
    ramp_s: float = 0.0  # seconds until then
    max_head_wait_ms: int = 0  # longest wait for an answer's head
    max_silence_ms: int = 0  # longest wait for a byte once an answer began
    latency_ms: dict = field(default_factory=dict)  # token trips fake -> client, percentiles
    first_token_ms: dict = field(default_factory=dict)
    loop_lag_ms: dict = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, outcome: Outcome, problems: list[str], timed_out: bool) -> None:
        plan = outcome.plan
        self.exchanges += 1
        if timed_out:
            self.timed_out += 1
            self.timed_out_kinds[plan.kind] += 1
        self.kinds[plan.kind] += 1
        self.ends[f"{plan.kind} {outcome.end}"] += 1
        if outcome.status:
            self.statuses[f"{plan.kind} {outcome.status}"] += 1
        if outcome.end == "hang":
            self.hangs += 1
        if problems:
            self.note(f"exchange {plan.id} ({plan.kind}): {'; '.join(problems)[:400]}")

    def note(self, problem: str) -> None:
        self.problem_count += 1
        if len(self.problems) < _PROBLEMS_KEPT:
            self.problems.append(problem)

    def as_dict(self) -> dict:
        value = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in ("kinds", "ends", "statuses", "timed_out_kinds"):
            value[name] = dict(sorted(value[name].items()))  # (dataclasses.asdict would count a Counter's pairs)
        return value


class Exchanges:
    """Exchanges against the gateway at ``host:port``; every outcome is checked
    (:func:`bench.soak.checks.answer_problems`), tallied, and its plan and the tokens its
    client got kept in ``ended``."""

    def __init__(self, host: str, port: int, requests: Requests, planner: Planner, limits: Limits) -> None:
        self.host, self.port = host, port
        self.requests = requests
        self.planner = planner
        self.limits = limits
        self.latencies = Latencies()
        self.active: dict[Outcome, ClientConnection] = {}
        self.ended: dict[int, Ended] = {}
        self.unsent: set[int] = set()  # plans whose connection could not be made
        self.tally = Tally()
        self.lags = array("q")
        self.released = asyncio.Event()  # a round's held streams were released (a new one per round)
        self._checks: asyncio.Queue[Outcome] = asyncio.Queue()
        self._checker: asyncio.Task[None] | None = None

    async def exchange(
        self, connection: ClientConnection | None, plan: Plan, on_answer: Callable[[], None] | None = None
    ) -> tuple[ClientConnection | None, Outcome]:
        """Run ``plan`` on ``connection`` (a new one unless it is reusable); returns the
        connection (None when it closed) and the outcome. ``on_answer`` is called when the
        answer's head came or the exchange ended. Raises OSError when it cannot connect."""
        reused = connection is not None and connection.reusable
        if not reused:
            if connection is not None and connection.transport is not None:
                connection.transport.close()
            connection = await connect(self.host, self.port, self.latencies)
        outcome = Outcome(plan)
        head, body = self.requests.build(plan)
        connection.begin(outcome)
        if on_answer is not None:
            outcome.head.add_done_callback(lambda _: on_answer())
            outcome.done.add_done_callback(lambda _: on_answer())
        self.active[outcome] = connection
        self.tally.peak_in_flight = max(self.tally.peak_in_flight, len(self.active))
        try:
            await self._drive(connection, outcome, head, body)
        finally:
            del self.active[outcome]
        if reused and outcome.end == "connection_error" and outcome.last_ns == outcome.sent_ns:
            # not a byte back: the gateway closed the idle connection as the request went (its
            # keep_alive_timeout), so nothing reached it; HTTP clients send it again on a new one
            self.tally.keepalive_retries += 1
            return await self.exchange(None, plan, on_answer)
        if len(outcome.body) <= _CHECKED_INLINE:
            self._record(outcome)
        else:
            self._checks.put_nowait(outcome)
            if self._checker is None:
                self._checker = asyncio.create_task(self._check_queued())
        return (connection if connection.reusable else None), outcome

    def _record(self, outcome: Outcome) -> None:
        plan = outcome.plan
        problems, timed_out = answer_problems(plan, outcome.end, outcome.status, outcome.body)
        self.tally.add(outcome, problems, timed_out)
        self.ended[plan.id] = Ended(plan, outcome.deltas, outcome.status, timed_out, outcome.left_ns)
        outcome.body = b""

    async def _check_queued(self) -> None:
        """Check the long answers one at a time, letting the connections be read in between
        (thousands of held streams released at once would stop this client for seconds)."""
        while True:
            outcome = await self._checks.get()
            self._record(outcome)
            self._checks.task_done()
            await asyncio.sleep(0)

    async def checked(self) -> None:
        """Wait until every exchange that ended was checked and tallied."""
        await self._checks.join()

    async def _drive(self, connection: ClientConnection, outcome: Outcome, head: bytes, body: bytes) -> None:
        plan = outcome.plan
        if plan.kind == "depart_upload":
            connection.write(head + body[: len(body) * plan.at // 100])
            await asyncio.sleep(plan.leave_after_s)
            connection.leave("left_upload", abort=False)
        else:
            connection.write(head + body)
            if plan.kind == "depart_head":
                await asyncio.wait(
                    (outcome.head, outcome.done), timeout=plan.leave_after_s, return_when="FIRST_COMPLETED"
                )
                connection.leave("left_after_head" if outcome.head_ns else "left_before_head", abort=plan.abort)
        await outcome.done

    async def watch(self) -> None:
        """Hangs: no head ``head_timeout`` seconds after the request went, or no byte for
        ``hang_after`` seconds once the answer began."""
        tally, hang_after, head_timeout = self.tally, self.limits.hang_after * 1e9, self.limits.head_timeout * 1e9
        while True:
            await asyncio.sleep(_WATCH_INTERVAL)
            now = _now()
            for outcome, connection in list(self.active.items()):
                if outcome.head_ns:
                    silence = now - outcome.last_ns
                    tally.max_silence_ms = max(tally.max_silence_ms, round(silence / 1e6))
                    hung = silence > hang_after
                else:
                    waited = now - outcome.sent_ns
                    tally.max_head_wait_ms = max(tally.max_head_wait_ms, round(waited / 1e6))
                    hung = waited > head_timeout
                if hung:
                    connection.leave("hang", abort=True)

    async def probe_lag(self) -> None:
        while True:
            before = _now()
            await asyncio.sleep(_LAG_INTERVAL)
            self.lags.append(_now() - before - int(_LAG_INTERVAL * 1e9))


class Load(Exchanges):
    """:class:`Exchanges` in rounds of held streams, then the fault mix."""

    deadline_ns = _FOREVER

    async def round(
        self, shape: RoundShape, held: Callable[[], Awaitable[int]], plateau: Callable[[], Awaitable[None]]
    ) -> Tally:
        """``shape.streams`` clients, each opening with a held stream; at most
        ``limits.pending`` of those wait for their answer's head at once (the ramp goes as
        fast as the gateway answers). Once ``held()`` (the fake's count of open streams)
        reaches ``streams``, ``plateau()`` runs (it measures, then releases the held streams);
        then the first ``shape.mix_clients`` clients draw from the mix until
        ``shape.duration`` seconds later."""
        streams = shape.streams
        self.tally = tally = Tally()
        self.latencies, self.lags, self.deadline_ns = Latencies(), array("q"), _FOREVER
        started = time.monotonic()
        helpers = [asyncio.create_task(self.watch()), asyncio.create_task(self.probe_lag())]
        ramp = asyncio.Semaphore(self.limits.pending)
        firsts = [self.planner.hold(shape.hold_gap_ms) for _ in range(streams)]
        self.released = asyncio.Event()
        mixing = streams if shape.mix_clients is None else shape.mix_clients
        clients = [asyncio.create_task(self._client(i, first, ramp, i < mixing)) for i, first in enumerate(firsts)]
        try:
            count = await held()
            # until every held stream is in (or ended early: the gateway's timeout on a saturated worker)
            while count + sum(first.id in self.ended or first.id in self.unsent for first in firsts) < streams:
                if time.monotonic() - started > self.limits.ramp_timeout:
                    break
                await asyncio.sleep(0.2)
                count = await held()
            tally.ramp_s, tally.held_at_plateau = round(time.monotonic() - started, 2), count
            await plateau()
            self.deadline_ns = _now() + int(shape.duration * 1e9)
            self.released.set()
            await asyncio.gather(*clients)
            await self.checked()
        finally:
            for task in (*clients, *helpers):
                task.cancel()
        tally.seconds = round(time.monotonic() - started, 2)
        tally.latency_ms = percentiles(self.latencies.tokens)
        tally.first_token_ms = percentiles(self.latencies.first_tokens)
        tally.loop_lag_ms = percentiles(self.lags)
        return tally

    async def _client(self, index: int, first: Plan, ramp: asyncio.Semaphore, mixes: bool) -> None:
        await ramp.acquire()
        rng = self.planner.client_rng(index)
        connection, plan = None, first
        on_answer: Callable[[], None] | None = _once(ramp.release)
        while True:
            try:
                connection, _ = await self.exchange(connection, plan, on_answer)
            except OSError as exc:
                if on_answer is not None:
                    on_answer()
                self.tally.note(f"exchange {plan.id} ({plan.kind}): could not connect: {exc}")
                self.unsent.add(plan.id)
                connection = None
            on_answer = None
            await self.released.wait()  # a held stream the gateway ended early waits for the others
            await asyncio.sleep(rng.uniform(0, THINK_S))
            if not mixes or _now() >= self.deadline_ns:
                break
            plan = self.planner.draw(rng)
        if connection is not None and connection.transport is not None:
            connection.transport.close()


def _once(callback: Callable[[], None]) -> Callable[[], None]:
    """``callback``, called at most once however often the result is."""
    called = False

    def call() -> None:
        nonlocal called
        if not called:
            called = True
            callback()

    return call


def percentiles(values: array) -> dict:
    """p50, p90, p99 and max of ``values`` (ns) in ms, 0.01 ms steps; {} when empty."""
    if not values:
        return {}
    ordered = sorted(values)

    def pick(share: float) -> float:
        return round(ordered[min(int(share * len(ordered)), len(ordered) - 1)] / 1e6, 2)

    return {"count": len(ordered), "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": pick(1.0)}
