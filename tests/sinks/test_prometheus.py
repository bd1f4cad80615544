"""Prometheus metrics (AIMW_METRICS=1): exchanges through the real pass-through gateway and a
fake Anthropic API on loopback, then ``GET /metrics`` through the same app, read with
prometheus-client's own parser. Each exchange of a known set gets its own model name (the
pass-through sends the client's), so every counter and histogram count is checked exactly."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from aimw.exchange import Attempt, Usage, exchange_of
from aimw.gateway import passthrough_gateway
from aimw.middleware.metrics_endpoint import MetricsEndpoint
from aimw.middleware.observe import ObserveMiddleware
from aimw.providers.anthropic import ANTHROPIC
from aimw.settings import ConfigurationError, Settings
from aimw.sinks.prometheus import MAX_LABEL_VALUES, OTHER, PrometheusSink
from aimw.sinks.prometheus_files import prepare_directory
from tests.asgi_helpers import InnerApp, RecordingSend, ScriptedReceive, http_scope
from tests.e2e.harness import free_port
from tests.fakes.anthropic_server import (
    FakeAnthropicServer,
    anthropic_error,
    message_reply,
    stream_reply,
    text_events,
)

pytestmark = pytest.mark.anyio

KEY = "sk-ant-gateway-" + "metrics-0001"
GUARD = 10  # seconds: a hang guard only, never an assertion about speed
HEADERS = [(b"content-type", b"application/json"), (b"anthropic-version", b"2023-06-01")]
KONG_EMPTY = {"cache_status": "", "vector_db": "", "embeddings_provider": "", "embeddings_model": ""}


@pytest.fixture
def fake():
    with FakeAnthropicServer(KEY) as server:
        yield server
    assert not server.violations, server.violations


@pytest.fixture
async def gateway(fake, tmp_path, monkeypatch):
    """The pass-through gateway with AIMW_METRICS=1 (one process: no multiprocess directory),
    started and shut down through its lifespan."""
    monkeypatch.setenv("AIMW_METRICS", "1")
    app = build(fake, tmp_path)
    async with lifespan(app) as started:
        assert started["type"] == "lifespan.startup.complete", started
        yield app


@pytest.fixture(autouse=True)
def metrics_environment(monkeypatch):
    """No metrics setting but the test's own."""
    for name in ("AIMW_METRICS", "AIMW_METRICS_BIND", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(name, raising=False)


def build(fake, tmp_path, **settings_fields):
    settings = Settings(upstream_url=fake.url, log_path=str(tmp_path / "aimw.log"), **settings_fields)
    return passthrough_gateway(ANTHROPIC, settings, secret=KEY)


@asynccontextmanager
async def lifespan(app):
    """Run ``app``'s ASGI lifespan as Hypercorn does: yields the answer to startup; shuts down on exit."""
    to_app, inbox = anyio.create_memory_object_stream(4)
    outbox, from_app = anyio.create_memory_object_stream(4)
    async with to_app, inbox, outbox, from_app, anyio.create_task_group() as tasks:
        tasks.start_soon(app, {"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.receive, outbox.send)
        with anyio.fail_after(GUARD):
            await to_app.send({"type": "lifespan.startup"})
            started = await from_app.receive()
        yield started
        with anyio.fail_after(GUARD):
            await to_app.send({"type": "lifespan.shutdown"})
            assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"


def body(model: str, *, stream: bool = False) -> bytes:
    return json.dumps(
        {"model": model, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "1 + 1?"}]}
    ).encode()


async def post(app, raw: bytes, receive: ScriptedReceive | None = None, send: RecordingSend | None = None):
    """One Messages request; the client keeps its connection open unless ``receive`` releases it."""
    send = send or RecordingSend()
    with anyio.fail_after(GUARD):
        await app(
            http_scope("POST", "/v1/messages", headers=HEADERS, body=raw), receive or ScriptedReceive([raw]), send
        )
    return send


async def scrape(app, accept: bytes = b"text/plain") -> dict[str, list[tuple[dict[str, str], float]]]:
    """``GET /metrics``: each sample name -> its (labels, value) list."""
    send = RecordingSend()
    with anyio.fail_after(GUARD):
        await app(http_scope("GET", "/metrics", headers=[(b"accept", accept)]), ScriptedReceive(), send)
    assert send.status == 200, send.body
    assert send.header(b"content-type").startswith(b"text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(send.body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
    return sum(v for have, v in samples.get(name, []) if labels.items() <= have.items())


def count(samples, histogram: str, **labels: str) -> float:
    return value(samples, f"{histogram}_count", **labels)


def log_line(tmp_path, model: str) -> dict:
    lines = [json.loads(line) for line in (tmp_path / "aimw.log").read_text().splitlines()]
    (line,) = [line for line in lines if line["ai"]["proxy"]["meta"]["request_model"] == model]
    return line


async def test_a_known_set_of_exchanges_counts_exactly(gateway, fake, tmp_path):
    fake.enqueue(message_reply("2", input_tokens=20, output_tokens=5))
    await post(gateway, body("claude-oneshot"))
    fake.enqueue(stream_reply(text_events(start_usage={"input_tokens": 30, "output_tokens": 1}, output_tokens=7)))
    assert (await post(gateway, body("claude-stream", stream=True))).status == 200
    fake.enqueue(anthropic_error(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit"))
    assert (await post(gateway, body("claude-limited"))).status == 429
    # a client that leaves while the provider thinks: the provider holds its answer
    arrived, thinking = threading.Event(), threading.Event()

    def held(request):
        arrived.set()
        thinking.wait(GUARD)
        return message_reply("late")

    fake.responder = held
    raw = body("claude-left")
    receive = ScriptedReceive([raw])
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(post, gateway, raw, receive)
        assert await anyio.to_thread.run_sync(arrived.wait, GUARD)
        receive.release()
    thinking.set()

    samples = await scrape(gateway)
    kong = {"ai_provider": "anthropic", "workspace": "default", "consumer": "", **KONG_EMPTY}
    requests = "kong_ai_llm_requests_total"
    assert value(samples, requests, **kong, ai_model="claude-oneshot", request_mode="oneshot") == 1
    assert value(samples, requests, **kong, ai_model="claude-stream", request_mode="stream") == 1
    assert value(samples, requests, **kong, ai_model="claude-limited", request_mode="oneshot") == 1
    assert value(samples, requests, **kong, ai_model="claude-left", request_mode="oneshot") == 1
    assert value(samples, requests) == 4
    tokens = "kong_ai_llm_tokens_total"
    for model, prompt, completion in (("claude-oneshot", 20, 5), ("claude-stream", 30, 7)):
        assert value(samples, tokens, ai_model=model, token_type="prompt_tokens") == prompt
        assert value(samples, tokens, ai_model=model, token_type="completion_tokens") == completion
        assert value(samples, tokens, ai_model=model, token_type="total_tokens") == prompt + completion
        for histogram in ("provider_latency", "ttft_latency", "tpot_latency"):
            assert count(samples, f"kong_ai_llm_{histogram}_ms", ai_model=model) == 1, (model, histogram)
    # the rate-limited answer came whole (latency), with no content and no tokens
    assert count(samples, "kong_ai_llm_provider_latency_ms", ai_model="claude-limited") == 1
    assert count(samples, "kong_ai_llm_ttft_latency_ms", ai_model="claude-limited") == 0
    assert value(samples, tokens, ai_model="claude-limited") == 0
    # the client that left: counted once, as the log's 499 with its phase; no answer, no latency
    assert count(samples, "kong_ai_llm_provider_latency_ms", ai_model="claude-left") == 0
    left = log_line(tmp_path, "claude-left")
    assert left["response"]["status"] == 499
    assert (
        value(samples, tokens, ai_model="claude-left", token_type="total_tokens")
        == (left["ai"]["proxy"]["usage"]["total_tokens"])
    )
    assert samples["aimw_client_disconnects_total"] == [
        ({"ai_provider": "anthropic", "ai_model": "claude-left", "consumer": "", "phase": "waiting"}, 1)
    ]
    assert samples["aimw_errors_total"] == [
        (
            {
                "ai_provider": "anthropic",
                "ai_model": "claude-limited",
                "consumer": "",
                "error_type": "rate_limit_error",
            },
            1,
        )
    ]
    attempts = {(labels["ai_model"], labels["outcome"]): v for labels, v in samples["aimw_upstream_attempts_total"]}
    assert attempts == {
        ("claude-oneshot", "ok"): 1,
        ("claude-stream", "ok"): 1,
        ("claude-limited", "rate_limit_error"): 1,
        ("claude-left", "client_closed"): 1,
    }
    assert "aimw_failovers_total" not in samples  # one target: nothing to fail over to
    assert "kong_ai_llm_cost_total" not in samples  # no prices configured: the log's cost is 0 too
    assert samples["aimw_streams_in_flight"] == [({}, 0)]


async def test_a_stream_in_flight_is_counted_until_the_client_leaves(gateway, fake, tmp_path):
    gate = threading.Event()
    events = text_events(start_usage={"input_tokens": 12, "output_tokens": 1}, output_tokens=9)
    fake.enqueue(stream_reply([*events[:3], gate, *events[3:]]))
    raw = body("claude-held", stream=True)
    receive, send = ScriptedReceive([raw]), RecordingSend()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(post, gateway, raw, receive, send)
        with anyio.fail_after(GUARD):
            await send.first_body.wait()
        assert (await scrape(gateway))["aimw_streams_in_flight"] == [({}, 1)]
        receive.release()  # the client leaves mid-stream
    gate.set()
    samples = await scrape(gateway)
    assert samples["aimw_streams_in_flight"] == [({}, 0)]
    assert value(samples, "aimw_client_disconnects_total", phase="stream") == 1
    assert value(samples, "kong_ai_llm_requests_total", request_mode="stream") == 1
    usage = log_line(tmp_path, "claude-held")["ai"]["proxy"]["usage"]  # the tokens so far, as logged
    assert value(samples, "kong_ai_llm_tokens_total", token_type="prompt_tokens") == usage["prompt_tokens"] == 12
    assert value(samples, "kong_ai_llm_tokens_total", token_type="completion_tokens") == usage["completion_tokens"]
    assert "aimw_errors_total" not in samples  # a departure is not an error the client got


async def test_a_client_that_varies_the_model_cannot_grow_the_labels(gateway, fake):
    """The pass-through sends the client's model: past MAX_LABEL_VALUES names the rest is OTHER."""
    fake.responder = lambda request: message_reply("ok", input_tokens=3, output_tokens=2)
    chooser = random.Random(13)
    models = {f"claude-{chooser.getrandbits(64):016x}" for _ in range(MAX_LABEL_VALUES + 50)}
    sent = [*sorted(models), "claude-" + "x" * 300]  # and one name too long for a label
    for model in sent:
        assert (await post(gateway, body(model))).status == 200
    samples = await scrape(gateway)
    by_model = {labels["ai_model"]: v for labels, v in samples["kong_ai_llm_requests_total"]}
    assert len(by_model) == MAX_LABEL_VALUES + 1
    assert by_model[OTHER] == len(sent) - MAX_LABEL_VALUES
    assert sum(by_model.values()) == len(sent)
    assert value(samples, "kong_ai_llm_tokens_total", token_type="total_tokens") == 5 * len(sent)
    assert len(samples["kong_ai_llm_provider_latency_ms_count"]) == MAX_LABEL_VALUES + 1
    assert len(samples["aimw_upstream_attempts_total"]) == MAX_LABEL_VALUES + 1


async def test_consumers_are_labelled_by_username_and_keys_never_appear(fake, tmp_path, monkeypatch):
    keys = {"alice": "alice-key-" + "7f3a9c1e5b", "bob": "bob-key-" + "2d8e4f6a0c"}
    consumers = tmp_path / "consumers.yaml"
    consumers.write_text(
        "consumers:\n"
        + "".join(f"  - username: {name}\n    keyauth_credentials: [{{key: {key}}}]\n" for name, key in keys.items())
    )
    monkeypatch.setenv("AIMW_METRICS", "1")
    app = build(fake, tmp_path, consumers_path=str(consumers))
    fake.responder = lambda request: message_reply("ok")
    async with lifespan(app):
        for name, times in (("alice", 2), ("bob", 1), ("mallory", 1)):
            for _ in range(times):
                key = keys.get(name, "not-a-consumer-key").encode()
                scope = http_scope("POST", "/v1/messages", headers=[*HEADERS, (b"x-api-key", key)], body=body("m"))
                send = RecordingSend()
                await app(scope, ScriptedReceive([body("m")]), send)
                assert send.status == (401 if name == "mallory" else 200)
    exposition = RecordingSend()
    await app(http_scope("GET", "/metrics"), ScriptedReceive(), exposition)
    assert not any(key.encode() in exposition.body for key in [*keys.values(), "not-a-consumer-key"])
    samples = await scrape(app)
    by_consumer = {(labels["consumer"], labels["ai_model"]): v for labels, v in samples["kong_ai_llm_requests_total"]}
    assert by_consumer == {("alice", "m"): 2, ("bob", "m"): 1}
    assert value(samples, "kong_ai_llm_tokens_total", consumer="alice", token_type="total_tokens") == 2 * 25
    assert samples["aimw_errors_total"] == [
        ({"ai_provider": "", "ai_model": "", "consumer": "", "error_type": "authentication_error"}, 1)
    ]


async def test_openmetrics_is_served_when_asked(gateway, fake):
    fake.enqueue(message_reply("2"))
    await post(gateway, body("claude-om"))
    send = RecordingSend()
    accept = b"application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
    await gateway(http_scope("GET", "/metrics", headers=[(b"accept", accept)]), ScriptedReceive(), send)
    assert send.header(b"content-type").startswith(b"application/openmetrics-text")
    families = {family.name: family for family in openmetrics_families(send.body.decode())}  # ends with # EOF
    samples = families["kong_ai_llm_requests"].samples  # and prometheus-client's _created, in one process
    ((labels, requests),) = [(s.labels, s.value) for s in samples if s.name == "kong_ai_llm_requests_total"]
    assert (labels["ai_model"], labels["request_mode"], requests) == ("claude-om", "oneshot", 1)


async def test_metrics_off_add_no_layer_and_metrics_stays_unknown(fake, tmp_path):
    app = build(fake, tmp_path)
    assert not isinstance(app, MetricsEndpoint)
    send = RecordingSend()
    await app(http_scope("GET", "/metrics"), ScriptedReceive(), send)
    assert send.status == 404
    assert send.json()["error"]["type"] == "not_found_error"
    assert fake.requests == []  # never forwarded


async def test_a_listener_of_their_own_serves_them_for_the_lifespan(fake, tmp_path, monkeypatch):
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    monkeypatch.setenv("AIMW_METRICS_BIND", f"127.0.0.1:{port}")
    app = build(fake, tmp_path)
    async with lifespan(app) as started:
        assert started["type"] == "lifespan.startup.complete", started
        fake.enqueue(message_reply("2"))
        await post(app, body("claude-bound"))
        response = await anyio.to_thread.run_sync(lambda: httpx.get(url, timeout=GUARD, trust_env=False))
        assert response.status_code == 200
        assert 'ai_model="claude-bound"' in response.text
        send = RecordingSend()
        await app(http_scope("GET", "/metrics"), ScriptedReceive(), send)
        assert send.status == 404  # not on the gateway's port
        # a second worker without PROMETHEUS_MULTIPROC_DIR cannot open the port (its numbers would be its own)
        async with lifespan(build(fake, tmp_path)) as refused:
            assert refused["type"] == "lifespan.startup.failed"
            assert f"127.0.0.1:{port}" in refused["message"] and "PROMETHEUS_MULTIPROC_DIR" in refused["message"]
    with pytest.raises(httpx.ConnectError):  # closed at shutdown
        await anyio.to_thread.run_sync(lambda: httpx.get(url, timeout=GUARD, trust_env=False))


@pytest.mark.parametrize(
    ("name", "setting"), [("AIMW_METRICS", "yes"), ("AIMW_METRICS_BIND", "9464"), ("AIMW_METRICS_BIND", "host:99999")]
)
async def test_malformed_settings_stop_the_start(name, setting, tmp_path, monkeypatch):
    monkeypatch.setenv(name, setting)
    with pytest.raises(ConfigurationError, match=name):
        passthrough_gateway(ANTHROPIC, Settings(log_path=str(tmp_path / "a.log")), secret=KEY)


async def test_cost_counts_at_the_configured_prices():
    """The stacks pass no prices yet; ObserveMiddleware's prices reach kong_ai_llm_cost_total."""
    sink = PrometheusSink()

    def answered(scope) -> None:
        exchange = exchange_of(scope)
        exchange.provider_name, exchange.request_model, exchange.request_mode = "openai", "gpt-4.1", "oneshot"
        sent = exchange.received_ns + 1
        exchange.attempts.append(Attempt("openai", "gpt-4.1", "https", "api.openai.com", 443, "/v1/chat/completions"))
        exchange.attempts[-1].sent_ns, exchange.attempts[-1].last_byte_ns = sent, sent + 900_000_000
        exchange.usage = Usage(input_tokens=1_000_000, output_tokens=500_000)

    app = ObserveMiddleware(InnerApp(on_request=answered), sinks=[sink], input_cost=2.0, output_cost=8.0)
    for _ in range(2):
        send = RecordingSend()
        await app(http_scope(body=b"{}"), ScriptedReceive([b"{}"], disconnect_now=True), send)
    text, content_type = sink.encode("")
    costs = [
        s for f in text_string_to_metric_families(text.decode()) for s in f.samples if s.name.endswith("cost_total")
    ]
    assert [(s.labels["ai_model"], s.value) for s in costs] == [("gpt-4.1", 2 * (2.0 + 4.0))]
    assert content_type.startswith("text/plain")


def test_the_multiprocess_directory_is_cleaned_only_when_no_writer_runs(tmp_path):
    gone = _exited_pid()
    directory = tmp_path / "metrics"
    directory.mkdir()
    old = [directory / f"counter_{gone}.db", directory / f"histogram_{gone}.db", directory / f"gauge_livesum_{gone}.db"]
    for path in old:
        path.write_bytes(b"{}")
    (directory / "unrelated.txt").write_text("kept")
    prepare_directory(str(directory), os.getpid())  # a previous run's files: removed
    assert sorted(path.name for path in directory.iterdir()) == ["unrelated.txt"]

    for path in old:
        path.write_bytes(b"{}")
    running = os.getppid()  # a sibling still running
    (directory / f"counter_{running}.db").write_bytes(b"{}")
    prepare_directory(str(directory), os.getpid())  # a replacement worker: the dead one's counts stay
    names = sorted(path.name for path in directory.iterdir())
    assert names == sorted([f"counter_{gone}.db", f"histogram_{gone}.db", f"counter_{running}.db", "unrelated.txt"])


def test_multiprocess_mode_needs_the_directory_in_the_environment_from_the_start(tmp_path, monkeypatch):
    """This test process imported prometheus-client without PROMETHEUS_MULTIPROC_DIR: its values
    are in memory, so a sink here cannot count for a multiprocess scrape, and says so."""
    with pytest.raises(ValueError, match="PROMETHEUS_MULTIPROC_DIR must be set before"):
        PrometheusSink(multiprocess_directory=str(tmp_path))
    monkeypatch.setenv("AIMW_METRICS", "1")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(ConfigurationError, match="PROMETHEUS_MULTIPROC_DIR"):
        passthrough_gateway(ANTHROPIC, Settings(log_path=str(tmp_path / "a.log")), secret=KEY)


WORKER = """
import sys
from aimw.exchange import Exchange, Figures, ObservedExchange
from aimw.sinks.prometheus import PrometheusSink

sink = PrometheusSink(multiprocess_directory=sys.argv[1])
figures = Figures(900, 800, 100, 300, 100.0, 30, 8, 38, 0.0)
for number in range(int(sys.argv[2])):
    exchange = Exchange()
    exchange.provider_name, exchange.request_model = "anthropic", "claude-x"
    status = 529 if number == 0 else 200
    sink.emit(ObservedExchange({}, exchange, status, [], 10, 10, 0, False, figures))
for _ in range(int(sys.argv[3])):
    sink.stream_started()
print("ready", flush=True)
if sys.stdin.readline() == "scrape\\n":
    print(sink.encode("")[0].decode(), flush=True)
sink.close()
"""


def test_two_workers_are_summed_and_an_exited_workers_streams_drop_out(tmp_path):
    """Two processes in prometheus-client's multiprocess mode (the environment set before they
    start): the second's scrape sums both; the first, shut down, keeps its counts but not its
    streams in flight."""
    directory = tmp_path / "metrics"
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}

    def worker(requests: int, streams: int) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(directory), str(requests), str(streams)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment,
        )  # fmt: skip
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        return process

    first, second = worker(3, 5), worker(4, 2)
    first.communicate("exit\n", timeout=GUARD)
    exposition, _ = second.communicate("scrape\n", timeout=GUARD)
    assert first.returncode == second.returncode == 0
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            key = (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k in ("token_type", "error_type"))))
            samples[key] = samples.get(key, 0) + s.value
    assert samples[("kong_ai_llm_requests_total", ())] == 7  # both workers' counts (the exited one's stay)
    assert samples[("kong_ai_llm_tokens_total", (("token_type", "total_tokens"),))] == 7 * 38
    assert samples[("aimw_errors_total", (("error_type", "overloaded_error"),))] == 2
    assert ("kong_ai_llm_provider_latency_ms_count", ()) not in samples  # no attempt: no latency series
    assert samples[("aimw_streams_in_flight", ())] == 2  # the running worker's streams only


def _exited_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        try:
            os.kill(child.pid, 0)
        except ProcessLookupError:
            return child.pid
        time.sleep(0.01)
    raise AssertionError("the child process did not go away")
