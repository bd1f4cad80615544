"""Token rate limits end to end (issue 12): Hypercorn serving recipes.huggingface:app (real
processes) with AIMW_RATE_LIMITING, in front of the fake Hugging Face router, whose answers
report known usage (60 + 20 tokens a request; 150 + 100 a stream), and a real redis-server
on a free loopback port.

- One gateway counting locally: a window fills, the next request is a 429 with Kong's
  headers and a retry-after, and nothing reaches the router; the real Claude Code CLI gets
  the 429 and comes back after retry-after.
- Two Hypercorn workers, and two gateway processes, sharing one Redis enforce one limit:
  the tokens admitted in all stay within one request's worth of it (the same requests to
  two workers counting locally get twice through: each worker counts alone).
- Redis killed mid-run: requests are still served (fail open), and counted in Redis again
  once it is back.

Each test's requests carry its own ``x-e2e-case``, which the sections take as their
identifier (``identifier: header``), so tests sharing a gateway share no counter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.harness import CLIENT_KEY, HF_TOKEN, GatewayProcess, checked_fake, run_claude
from tests.fakes.openai_chat_server import Chunks, FakeChatServer, completion, json_reply, sse_reply, text_stream
from tests.fakes.scripted_server import RecordedRequest, Reply
from tests.rate_limiting.redis_server import RedisServer

pytestmark = pytest.mark.e2e

REQUEST_TOKENS = 60 + 20  # what the router reports for each non-streamed answer
STREAM_USAGE = (150, 100)  # and for each stream (Claude Code's requests)
SHARED_LIMIT = 1000  # tokens an hour, in the sharing tests: 13 requests of 80 get in
RECOVERY_TIMEOUT = 10.0  # seconds for a gateway to count in a restarted Redis again (it retries each second)
MESSAGE = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "What is 1 + 1?"}]}


def section(limit: float, window: int, strategy: str = "local") -> str:
    return (
        "rate_limiting:\n"
        "  identifier: header\n"
        "  header_name: x-e2e-case\n"
        f"  strategy: {strategy}\n"
        "  llm_providers:\n"
        f"    - {{name: huggingface, limit: [{limit}], window_size: [{window}]}}\n"
    )


def answer(request: RecordedRequest) -> Reply:
    if isinstance(request.body, dict) and request.body.get("stream"):
        return text_stream(("Hello ", "from the router."), usage=STREAM_USAGE)
    return json_reply(completion(usage=(60, 20)))


@pytest.fixture(scope="module")
def router() -> Iterator[FakeChatServer]:
    with FakeChatServer(HF_TOKEN) as server:
        yield server


@pytest.fixture
def fake(router: FakeChatServer, request: pytest.FixtureRequest) -> Iterator[FakeChatServer]:
    with checked_fake(router, [], request) as server:
        server.responder = answer
        yield server


@contextmanager
def gateway(router: FakeChatServer, workdir: Path, text: str, *args: str, **env: str) -> Iterator[GatewayProcess]:
    """recipes.huggingface:app with the rate_limiting section ``text`` and a consumer whose key
    is CLIENT_KEY (AIMW_CONSUMERS); ``args``: more Hypercorn options."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "limits.yaml").write_text(text)
    (workdir / "consumers.yaml").write_text(
        f"consumers:\n  - username: alice\n    keyauth_credentials: [{{key: {CLIENT_KEY}}}]\n"
    )
    environ = {
        "HUGGINGFACE_API_TOKEN": HF_TOKEN,
        "AIMW_UPSTREAM_URL": router.url,
        "AIMW_RATE_LIMITING": str(workdir / "limits.yaml"),
        "AIMW_CONSUMERS": str(workdir / "consumers.yaml"),
        **env,
    }
    process = GatewayProcess("recipes.huggingface:app", environ, workdir, args)
    try:
        yield process.start()
    finally:
        process.stop()


def post(gateway: GatewayProcess, case: str) -> httpx.Response:
    """One Messages request on a connection of its own (a new one may reach another worker)."""
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "x-e2e-case": case}
    return httpx.post(f"{gateway.url}/v1/messages", json=MESSAGE, headers=headers, timeout=30, trust_env=False)


def admitted_tokens(gateways: list[GatewayProcess], case: str, requests: int) -> int:
    """Send ``requests`` requests of ``case`` to ``gateways`` in turn; the tokens of those
    admitted (each answer used REQUEST_TOKENS), checking every refusal is a 429."""
    statuses = [post(gateways[index % len(gateways)], case).status_code for index in range(requests)]
    assert set(statuses) <= {200, 429}, statuses
    return statuses.count(200) * REQUEST_TOKENS


# ---------------------------------------------------------------- one gateway, counting locally


@pytest.fixture(scope="module")
def local_gateway(router, tmp_path_factory) -> Iterator[GatewayProcess]:
    """100 tokens per sliding 10 s window: the second 80-token answer fills it."""
    with gateway(router, tmp_path_factory.mktemp("local"), section(100, 10)) as process:
        yield process


def test_a_full_window_is_refused_with_retry_after_and_nothing_reaches_the_router(local_gateway, fake, case):
    first, second, refused = post(local_gateway, case), post(local_gateway, case), post(local_gateway, case)

    assert (first.status_code, second.status_code, refused.status_code) == (200, 200, 429)
    assert first.headers["x-ai-ratelimit-limit-10-huggingface"] == "100"
    assert first.headers["x-ai-ratelimit-remaining-10-huggingface"] == "100"
    assert refused.json()["error"] == {
        "type": "rate_limit_error",
        "message": "API rate limit exceeded for provider huggingface",
    }
    retry_after = int(refused.headers["retry-after"])
    # 160 used in the window, or less once a boundary passed: (10 - elapsed) + 10 * (1 - 100 / 160) at most
    assert 1 <= retry_after <= 10 + 4 + 1
    assert refused.headers["x-ai-ratelimit-retry-after"] == str(retry_after)
    assert refused.headers["x-ai-ratelimit-remaining-10-huggingface"] == "0"
    assert refused.headers["x-ai-ratelimit-reset-10-huggingface"] == str(retry_after)
    assert len(fake.requests_for(case)) == 2  # the refused request never left the gateway
    lines = local_gateway.wait_log_lines(3, case)
    assert [line["response"]["status"] for line in lines] == [200, 200, 429]


def test_claude_code_gets_the_429_and_comes_back_after_retry_after(claude_bin, local_gateway, fake, case, tmp_path):
    """The CLI honours retry-after (../shared/CLAUDE-CODE.md: up to about 40 s): its request
    comes back no sooner, and then gets through. The window is 10 s and one stream uses 250
    tokens, so the second run starts refused and the wait is at most 16 s."""
    headers = {"x-e2e-case": case}
    filled, _ = run_claude(claude_bin, local_gateway.url, "Say hello.", tmp_path / "one", headers=headers)
    assert filled.returncode == 0, filled.stderr[-2000:]

    completed, output = run_claude(
        claude_bin, local_gateway.url, "Say hello.", tmp_path / "two", headers=headers, max_retries=3
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert output is not None and output["is_error"] is False
    assert output["result"] == "Hello from the router."
    lines = local_gateway.wait_log_lines(3, case)
    assert [line["response"]["status"] for line in lines] == [200, 429, 200]
    refused, retried = lines[1], lines[2]
    retry_after = int(refused["response"]["headers"]["retry-after"])
    assert retried["started_at"] - refused["started_at"] >= retry_after * 1000 - 500  # ms
    assert len(fake.requests_for(case)) == 2


def test_a_client_that_leaves_mid_stream_is_charged_for_what_was_generated(local_gateway, fake, case):
    """The router's stream is held after its first words and the client leaves: the usage
    aimw estimates for what was generated (the router never reported any) is counted."""
    gate = threading.Event()
    chunks = Chunks()
    fake.enqueue(
        sse_reply([chunks.chunk({"content": "", "role": "assistant"}), chunks.chunk({"content": "Half of it"}), gate])
    )
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "x-e2e-case": case}
    try:
        with (
            httpx.Client(trust_env=False, timeout=30) as client,
            client.stream(
                "POST", f"{local_gateway.url}/v1/messages", json={**MESSAGE, "stream": True}, headers=headers
            ) as stream,
        ):
            assert stream.status_code == 200
            next(line for line in stream.iter_lines() if "Half of it" in line)
        # the router holds the rest until the gateway logged the departure: the stream cannot
        # complete first on a loaded machine
        (left,) = local_gateway.wait_log_lines(1, case)  # logged once the usage was counted
    finally:
        gate.set()
    assert left["response"]["status"] == 499

    after = post(local_gateway, case)

    estimated = left["ai"]["proxy"]["usage"]["total_tokens"]
    assert estimated > 0
    assert int(after.headers["x-ai-ratelimit-remaining-10-huggingface"]) < 100


# ---------------------------------------------------------------- sharing one Redis


@pytest.fixture(scope="module")
def shared_gateways(router, redis_server, tmp_path_factory) -> Iterator[list[GatewayProcess]]:
    """Two gateway processes on one Redis, the first with two Hypercorn workers."""
    text = section(SHARED_LIMIT, 3600, "redis")
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                gateway(router, tmp_path_factory.mktemp(name), text, *args, AIMW_REDIS_URL=redis_server.url)
            )
            for name, args in (("two-workers", ("--workers", "2")), ("second-instance", ()))
        ]


def test_two_workers_sharing_redis_enforce_one_limit(shared_gateways, fake, tmp_path, case):
    admitted = admitted_tokens(shared_gateways[:1], case, 30)

    assert SHARED_LIMIT <= admitted < SHARED_LIMIT + REQUEST_TOKENS
    # the control: the same requests to two workers counting locally, each alone, get further
    with gateway(fake, tmp_path, section(SHARED_LIMIT, 3600), "--workers", "2") as alone:
        assert admitted_tokens([alone], case, 30) >= SHARED_LIMIT + REQUEST_TOKENS


def test_two_gateway_processes_sharing_redis_enforce_one_limit(shared_gateways, fake, case):
    admitted = admitted_tokens(shared_gateways, case, 30)

    assert SHARED_LIMIT <= admitted < SHARED_LIMIT + REQUEST_TOKENS


# ---------------------------------------------------------------- Redis lost and back


def counted_in(server: RedisServer) -> float:
    """The sum of the gateway's counters in ``server``."""
    with redis.Redis.from_url(server.url) as client:
        return sum(float(client.get(key) or 0) for key in client.keys("aimw:rl:*"))


def test_requests_are_served_while_redis_is_down_and_counted_there_again_after(router, tmp_path, fake, case):
    own_redis = RedisServer(tmp_path).start()
    try:
        with gateway(router, tmp_path / "gw", section(10**9, 3600, "redis"), AIMW_REDIS_URL=own_redis.url) as process:
            assert [post(process, case).status_code for _ in range(3)] == [200] * 3
            assert counted_in(own_redis) == 3 * REQUEST_TOKENS

            own_redis.kill()
            assert [post(process, case).status_code for _ in range(5)] == [200] * 5  # fails open
            own_redis.start()  # empty, on the same port

            deadline = time.monotonic() + RECOVERY_TIMEOUT
            sent = 0
            while counted_in(own_redis) == 0:
                assert time.monotonic() < deadline, "the gateway never counted in Redis again"
                assert post(process, case).status_code == 200
                sent += 1
                time.sleep(0.2)
            assert [post(process, case).status_code for _ in range(2)] == [200] * 2
            assert counted_in(own_redis) == 3 * REQUEST_TOKENS  # the one that found it back, and these two
            output = process.output()
    finally:
        own_redis.stop()
    assert output.count("unreachable") == 1, output  # one line for the outage, not one per request
    assert "reachable again" in output
    assert "Traceback" not in output
    assert len(fake.requests_for(case)) == 3 + 5 + sent + 2
