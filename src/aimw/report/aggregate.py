"""The report's figures: exchanges summed per time bucket (UTC hour or day) and per
provider / model / consumer, in memory that grows with the number of groups, never with
the number of lines (percentiles come from :class:`~aimw.report.histogram.LogHistogram`).

A log whose clients choose the model freely (``recipes.anthropic`` without ``AIMW_MODEL``)
could name any number of models: past ``MAX_GROUPS`` distinct provider / model / consumer
triples, the further ones are counted together as ``(other)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from aimw.report.histogram import LogHistogram
from aimw.report.records import LineCounts, Record

Period = Literal["hour", "day"]
PERIOD_MS: dict[Period, int] = {"hour": 3_600_000, "day": 86_400_000}
MAX_GROUPS = 1000  # distinct (provider, model, consumer) triples kept apart
OTHER = "(other)"


@dataclass(slots=True)
class GroupStats:
    """The sums of one group: ``requests``, ``errors`` per Anthropic error type, ``failovers``
    (exchanges that tried more than one target), ``estimated`` (usage estimated by aimw),
    tokens (``prompt_tokens`` includes ``cached_tokens``), ``cost``, and the histograms of
    time to first token (ms) and of tokens per second."""

    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    failovers: int = 0
    estimated: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    time_to_first_token_ms: LogHistogram = field(default_factory=LogHistogram)
    tokens_per_second: LogHistogram = field(default_factory=LogHistogram)

    def add(self, record: Record) -> None:
        self.requests += 1
        if record.error_type is not None:
            self.errors[record.error_type] = self.errors.get(record.error_type, 0) + 1
        if record.tried_targets > 1:
            self.failovers += 1
        if record.estimated:
            self.estimated += 1
        self.prompt_tokens += record.prompt_tokens
        self.cached_tokens += record.cached_tokens
        self.completion_tokens += record.completion_tokens
        self.cost += record.cost
        if record.time_to_first_token_ms > 0:
            self.time_to_first_token_ms.add(record.time_to_first_token_ms)
        if record.tokens_per_second > 0:
            self.tokens_per_second.add(record.tokens_per_second)

    def merge(self, other: GroupStats) -> None:
        self.requests += other.requests
        for error_type, count in other.errors.items():
            self.errors[error_type] = self.errors.get(error_type, 0) + count
        self.failovers += other.failovers
        self.estimated += other.estimated
        self.prompt_tokens += other.prompt_tokens
        self.cached_tokens += other.cached_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost
        self.time_to_first_token_ms.merge(other.time_to_first_token_ms)
        self.tokens_per_second.merge(other.tokens_per_second)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True, slots=True, order=True)
class GroupKey:
    """A group: the bucket's start (ms since the epoch, UTC) and who served whom."""

    bucket_ms: int
    provider: str
    model: str
    consumer: str


@dataclass(slots=True)
class Report:
    """Exchanges summed per :class:`GroupKey` (``period`` long buckets); ``counts`` says what
    was read. ``add`` every record, then read ``rows``, ``total`` and ``per_bucket``."""

    period: Period
    counts: LineCounts = field(default_factory=LineCounts)
    groups: dict[GroupKey, GroupStats] = field(default_factory=dict)
    triples: set[tuple[str, str, str]] = field(default_factory=set)

    def add_all(self, records: Iterable[Record]) -> Report:
        for record in records:
            self.add(record)
        return self

    def add(self, record: Record) -> None:
        triple = (record.provider, record.model, record.consumer)
        if triple not in self.triples:
            if len(self.triples) < MAX_GROUPS:
                self.triples.add(triple)
            else:
                triple = (OTHER, OTHER, OTHER)
        size = PERIOD_MS[self.period]
        key = GroupKey(int(record.started_at_ms // size) * size, *triple)
        stats = self.groups.get(key)
        if stats is None:
            stats = self.groups[key] = GroupStats()
        stats.add(record)

    def rows(self) -> list[tuple[GroupKey, GroupStats]]:
        """The groups by bucket, then provider, model, consumer."""
        return sorted(self.groups.items())

    def total(self) -> GroupStats:
        """Every group summed."""
        total = GroupStats()
        for stats in self.groups.values():
            total.merge(stats)
        return total

    def per_bucket(self) -> list[tuple[int, GroupStats]]:
        """Each bucket's groups summed, by bucket start (ms)."""
        buckets: dict[int, GroupStats] = {}
        for key, stats in self.groups.items():
            buckets.setdefault(key.bucket_ms, GroupStats()).merge(stats)
        return sorted(buckets.items())
