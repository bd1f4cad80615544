"""The report reads a log in constant memory: the peak of Python allocations (tracemalloc)
while reading 40,000 generated lines is that of reading 2,000 (the lines are made on the
fly, never held; what the report keeps grows with its groups, which both logs fill)."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator

from aimw.report.aggregate import Report
from aimw.report.records import LineCounts, read_records

START_MS = 1748772000000  # 2025-06-01T10:00:00Z
PROVIDERS = (b"huggingface", b"openai")
MODELS = (b"meta-llama/Llama-3.3-70B-Instruct", b"gpt-4.1", b"qwen-plus")
CONSUMERS = (b"alice", b"bob", b"carol", b"dave")
LINE = (
    b'{"request":{"method":"POST","uri":"/v1/messages","url":"http://gateway.example:8000/v1/messages",'
    b'"querystring":{},"headers":{"host":"gateway.example:8000","user-agent":"claude-cli/2.1.329 (external, cli)",'
    b'"x-api-key":"REDACTED","content-type":"application/json","content-length":"48211"},"size":48211},'
    b'"response":{"status":%d,"headers":{"content-type":"text/event-stream; charset=utf-8"},"size":5120},'
    b'"upstream_uri":"/v1/chat/completions","latencies":{"request":%d,"proxy":%d,"gateway":1},'
    b'"client_ip":"127.0.0.1","started_at":%d,"consumer":{"id":"c0ffee00","username":"%s"},'
    b'"ai":{"proxy":{"meta":{"plugin_id":"3c0d8d1e-4a6f-5b8e-9a1c-2f6e8d7b5a41","provider_name":"%s",'
    b'"request_model":"%s","response_model":"%s","llm_latency":%d,"request_mode":"stream"},'
    b'"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"time_to_first_token":%d,'
    b'"time_per_token":%.3f,"cost":0.0,"prompt_tokens_details":{"cached_tokens":%d},'
    b'"completion_tokens_details":{"reasoning_tokens":0}},"tried_targets":[{"provider":"%s","model":"%s",'
    b'"host":"router.huggingface.co","port":443,"ip":null,"upstream_scheme":"https",'
    b'"upstream_uri":"/v1/chat/completions","route_type":"llm/v1/chat"}]}}}\n'
)


class GeneratedLog:
    """``count`` aimw log lines over 6 hours, made as they are read (``readline`` like a file)."""

    def __init__(self, count: int) -> None:
        self.lines = self._lines(count)

    def readline(self, limit: int = -1) -> bytes:
        return next(self.lines, b"")

    @staticmethod
    def _lines(count: int) -> Iterator[bytes]:
        rng = random.Random(7)
        for i in range(count):
            provider, model = rng.choice(PROVIDERS), rng.choice(MODELS)
            latency, prompt, completion = rng.choice((800, 1500, 4000)), rng.choice((900, 30000)), rng.choice((20, 400))
            yield LINE % (
                rng.choice((200, 200, 200, 429, 499)),
                latency + 1,
                latency,
                START_MS + i * 6 * 3_600_000 // count,
                rng.choice(CONSUMERS),
                provider,
                model,
                model,
                latency,
                prompt,
                completion,
                prompt + completion,
                rng.choice((250, 400, 900)),
                latency / completion,
                prompt // 2,
                provider,
                model,
            )


def peak_bytes(lines: int) -> int:
    """Peak Python allocations (bytes) while the report reads ``lines`` generated lines."""
    tracemalloc.start()
    try:
        counts = LineCounts()
        report = Report("hour", counts).add_all(read_records([GeneratedLog(lines)], counts))  # type: ignore[list-item]
        assert (counts.exchanges, counts.unreadable) == (lines, 0)
        assert len(report.groups) == 6 * len(PROVIDERS) * len(MODELS) * len(CONSUMERS)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_peak_does_not_grow_with_the_log():
    small, large = peak_bytes(2_000), peak_bytes(40_000)
    assert large <= small * 1.25, (small, large)
    assert large < 4 * 1024 * 1024, large
