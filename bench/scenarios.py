"""The load shapes of a run: streaming or not, how many connections, how many workers.

One-worker scenarios pin the server under test to CPU 0 and the fake upstream and the
load generator to CPU 1; the two-worker ones pin nothing (both workers need both CPUs).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    """One load shape. ``concurrency``: connections in the closed loop; ``workers``: server processes."""

    name: str
    stream: bool
    concurrency: int
    workers: int = 1

    @property
    def pinned(self) -> bool:
        return self.workers == 1

    @property
    def summary(self) -> str:
        mode = "stream" if self.stream else "non-stream"
        workers = f", {self.workers} workers, unpinned" if self.workers > 1 else ""
        return f"{mode}, C={self.concurrency}{workers}"


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("nonstream-c1", stream=False, concurrency=1),
        Scenario("nonstream-c32", stream=False, concurrency=32),
        Scenario("nonstream-c128", stream=False, concurrency=128),
        Scenario("stream-c1", stream=True, concurrency=1),
        Scenario("stream-c32", stream=True, concurrency=32),
        Scenario("nonstream-c32-w2", stream=False, concurrency=32, workers=2),
        Scenario("stream-c32-w2", stream=True, concurrency=32, workers=2),
    )
}
