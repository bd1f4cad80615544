"""RateLimitMiddleware at the ASGI level, counting in a LocalCounters on a fake clock: a
window fills and the next request is a 429 with a correct retry-after and Kong's headers,
nothing sent below; what an exchange used is added whatever its end; identifiers,
per-consumer limits, cost budgets, failing closed, and what is never limited."""

from __future__ import annotations

import anyio
import msgspec
import pytest

from aimw.config.consumers import AuthenticatedConsumer
from aimw.exchange import exchange_of
from aimw.middleware.rate_limit import RateLimitMiddleware
from aimw.rate_limiting import Limits, LocalCounters, Prices, RateLimiting
from aimw.rate_limiting.counters import CountersUnavailable
from tests.asgi_helpers import InnerApp, RecordingSend, ScriptedReceive, call, http_scope

pytestmark = pytest.mark.anyio

T0 = 1_700_000_040.0  # a minute boundary
KEY = b"sk-ant-client-" + b"0f3e9d2c1b4a5968"
ALICE = AuthenticatedConsumer("6f1c1d2e-0000-5000-8000-000000000001", "alice", None, "cred-alice")
BOB = AuthenticatedConsumer("6f1c1d2e-0000-5000-8000-000000000002", "bob", None, "cred-bob")


class Clock:
    def __init__(self) -> None:
        self.now = T0 + 10

    def __call__(self) -> float:
        return self.now


def section(**fields) -> RateLimiting:
    document = {"llm_providers": [{"name": "huggingface", "limit": [100], "window_size": [60]}], **fields}
    return msgspec.convert(document, RateLimiting)


def answering(provider: str = "huggingface", prompt: int = 30, completion: int = 10, model: str = "m") -> InnerApp:
    """The gateway below: it answers, and records the usage as the real layers would."""

    def record(scope) -> None:
        exchange = exchange_of(scope)
        exchange.provider_name, exchange.request_model = provider, model
        exchange.usage.input_tokens, exchange.usage.output_tokens = prompt, completion

    return InnerApp(on_request=record)


class Gateway:
    """The middleware over ``inner``, with its counters on ``clock``."""

    def __init__(self, rate_limiting: RateLimiting, inner: InnerApp, prices: Prices | None = None) -> None:
        self.clock = Clock()
        self.counters = LocalCounters(self.clock)
        self.inner = inner
        self.app = RateLimitMiddleware(
            inner, limits=Limits.of(rate_limiting, prices or Prices()), counters=self.counters
        )

    async def post(self, consumer: AuthenticatedConsumer | None = None, **scope_fields) -> RecordingSend:
        scope = http_scope(**scope_fields)
        if consumer is not None:
            exchange_of(scope).consumer = consumer
        return await call(self.app, scope)


async def test_a_full_window_refuses_the_next_request_with_retry_after_and_kongs_headers():
    gateway = Gateway(section(), answering(prompt=30, completion=10))
    for _ in range(3):  # 0, 40, 80 tokens used before each: under 100
        assert (await gateway.post()).status == 200
    refused = await gateway.post()  # 120 used: over

    assert refused.status == 429
    assert refused.json() == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "API rate limit exceeded for provider huggingface"},
    }
    assert gateway.inner.calls == 3  # nothing went below
    # 10 s into the minute: 50 s to its end, then 120 * (60 - t) / 60 < 100 needs t > 10 s
    assert refused.header(b"retry-after") == b"61"
    assert refused.header(b"x-ai-ratelimit-retry-after") == b"61"
    assert refused.header(b"x-ai-ratelimit-reset") == b"61"
    assert refused.header(b"x-ai-ratelimit-limit-minute-huggingface") == b"100"
    assert refused.header(b"x-ai-ratelimit-remaining-minute-huggingface") == b"0"
    assert refused.header(b"x-ai-ratelimit-reset-minute-huggingface") == b"61"
    assert refused.header(b"x-ai-ratelimit-retry-after-minute-huggingface") == b"61"


async def test_the_refusal_is_recorded_on_the_exchange():
    gateway = Gateway(section(), answering(prompt=100, completion=0))
    await gateway.post()
    scope = http_scope()
    await call(gateway.app, scope)
    assert exchange_of(scope).error == "rate_limit_error: API rate limit exceeded for provider huggingface"


async def test_the_request_is_admitted_again_once_retry_after_has_passed():
    gateway = Gateway(section(), answering(prompt=70, completion=50))
    await gateway.post()
    retry_after = int((await gateway.post()).header(b"retry-after"))
    gateway.clock.now += retry_after - 1
    assert (await gateway.post()).status == 429
    gateway.clock.now += 1
    assert (await gateway.post()).status == 200


async def test_a_fixed_window_is_admitted_again_at_its_end():
    gateway = Gateway(section(window_type="fixed"), answering(prompt=100, completion=0))
    await gateway.post()
    refused = await gateway.post()
    assert refused.header(b"retry-after") == b"51"  # 10 s into the minute: 50 s left, the first whole second after
    gateway.clock.now = T0 + 60
    assert (await gateway.post()).status == 200


async def test_admitted_responses_carry_the_limit_and_what_remained_before_them():
    gateway = Gateway(
        section(llm_providers=[{"name": "huggingface", "limit": [100, 1000], "window_size": [60, 3600]}]),
        answering(prompt=30, completion=10),
    )
    first, second = await gateway.post(), await gateway.post()
    assert first.header(b"x-ai-ratelimit-remaining-minute-huggingface") == b"100"
    assert second.header(b"x-ai-ratelimit-remaining-minute-huggingface") == b"60"
    assert second.header(b"x-ai-ratelimit-limit-hour-huggingface") == b"1000"
    assert second.header(b"x-ai-ratelimit-remaining-hour-huggingface") == b"960"
    assert second.header(b"retry-after") is None
    assert second.header(b"content-type") == b"application/json"  # the answer's own headers kept


async def test_hide_client_headers_leaves_only_the_retry_headers():
    gateway = Gateway(section(hide_client_headers=True), answering(prompt=100, completion=0))
    admitted, refused = await gateway.post(), await gateway.post()
    assert not [name for name, _ in admitted.header_list if name.startswith(b"x-ai-ratelimit")]
    names = {name for name, _ in refused.header_list if name.startswith((b"x-ai-", b"retry"))}
    assert names == {b"retry-after", b"x-ai-ratelimit-retry-after", b"x-ai-ratelimit-reset"}


async def test_error_message_and_error_hide_providers_shape_the_refusal():
    gateway = Gateway(
        section(error_message="Token budget spent", error_hide_providers=True), answering(prompt=100, completion=0)
    )
    await gateway.post()
    assert (await gateway.post()).json()["error"]["message"] == "Token budget spent"


async def test_only_the_answering_providers_windows_count():
    two = section(
        llm_providers=[
            {"name": "huggingface", "limit": [100], "window_size": [60]},
            {"name": "openai", "limit": [50], "window_size": [60]},
        ]
    )
    gateway = Gateway(two, answering(provider="openai", prompt=40, completion=0))
    await gateway.post()
    assert (await gateway.counters.read("ip:127.0.0.1", gateway.app.limits.windows))[1] == [(0, 0), (40, 0)]
    await gateway.post()
    refused = await gateway.post()  # Kong: any provider over its limit refuses the request
    assert refused.status == 429
    assert refused.json()["error"]["message"] == "API rate limit exceeded for provider openai"


async def test_usage_is_counted_when_the_exchange_fails_after_answering():
    inner = answering(prompt=60, completion=60)
    inner.error = RuntimeError("the stream broke")
    gateway = Gateway(section(), inner)
    with pytest.raises(RuntimeError):
        await gateway.post()
    assert (await gateway.post()).status == 429


async def test_usage_is_counted_when_the_client_leaves_mid_stream():
    """The request task is cancelled while the stream is held: what was generated (the
    usage on the exchange, measured or estimated) still counts."""
    release = anyio.Event()
    inner = answering(prompt=90, completion=30)
    gateway = Gateway(section(), inner)

    async def held_stream(scope, receive, send):
        await InnerApp.__call__(inner, scope, receive, send)
        await release.wait()  # never set: the client is gone first

    gateway.app.app = held_stream
    async with anyio.create_task_group() as group:
        send = RecordingSend()
        group.start_soon(gateway.app, http_scope(), ScriptedReceive(disconnect_now=True), send)
        await send.first_body.wait()
        group.cancel_scope.cancel()
    assert (await gateway.counters.read("ip:127.0.0.1", gateway.app.limits.windows))[1] == [(120, 0)]


async def test_each_consumer_counts_apart_and_may_have_its_own_limits():
    own = section(
        consumer_limits={"alice": {"llm_providers": [{"name": "huggingface", "limit": [300], "window_size": [60]}]}}
    )
    gateway = Gateway(own, answering(prompt=100, completion=0))
    assert [(await gateway.post(consumer=BOB)).status for _ in range(2)] == [200, 429]
    assert [(await gateway.post(consumer=ALICE)).status for _ in range(4)] == [200, 200, 200, 429]
    assert (await gateway.post(consumer=ALICE)).header(b"x-ai-ratelimit-limit-minute-huggingface") == b"300"
    keys = {identifier for identifier, _ in gateway.counters.counters}
    assert keys == {f"consumer:{BOB.id}", f"consumer:{ALICE.id}"}


async def test_without_a_consumer_the_client_address_is_counted():
    gateway = Gateway(section(), answering(prompt=100, completion=0))
    await gateway.post()
    assert {identifier for identifier, _ in gateway.counters.counters} == {"ip:127.0.0.1"}


async def test_the_credential_identifier_never_keeps_the_key():
    gateway = Gateway(section(identifier="credential"), answering(prompt=100, completion=0))
    await gateway.post(headers=[(b"x-api-key", KEY)])
    assert (await gateway.post(headers=[(b"authorization", b"Bearer " + KEY)])).status == 429  # the same key
    assert (await gateway.post(headers=[(b"x-api-key", KEY + b"2")])).status == 200  # another key
    identifiers = {identifier for identifier, _ in gateway.counters.counters}
    assert len(identifiers) == 2
    assert all(identifier.startswith("credential:") and len(identifier) == 11 + 32 for identifier in identifiers)
    assert not any(KEY.decode() in identifier for identifier in identifiers)
    await gateway.post(consumer=ALICE, headers=[(b"x-api-key", KEY)])
    assert "credential:cred-alice" in {identifier for identifier, _ in gateway.counters.counters}


async def test_the_header_identifier_counts_each_value_and_falls_back_to_the_address():
    gateway = Gateway(section(identifier="header", header_name="X-Team"), answering(prompt=100, completion=0))
    await gateway.post(headers=[(b"x-team", b"red")])
    assert (await gateway.post(headers=[(b"x-team", b"red")])).status == 429
    assert (await gateway.post(headers=[(b"x-team", b"blue")])).status == 200
    assert (await gateway.post()).status == 200
    identifiers = {identifier for identifier, _ in gateway.counters.counters}
    assert "ip:127.0.0.1" in identifiers and len(identifiers) == 3


async def test_a_cost_budget_caps_spend_at_the_models_prices():
    """Tokens a minute and spend a day in one section: the entry with its own strategy says
    it in its headers' names."""
    budget = section(
        llm_providers=[
            {"name": "huggingface", "limit": [100000], "window_size": [86400]},
            {"name": "huggingface", "limit": [0.01], "window_size": [86400], "tokens_count_strategy": "cost"},
        ]
    )
    # 1000 prompt tokens at 3 per million + 200 completion tokens at 15 per million: 0.006 a request
    gateway = Gateway(budget, answering(prompt=1000, completion=200, model="big"), Prices([("big", 3.0, 15.0)]))
    first, second = await gateway.post(), await gateway.post()
    assert first.header(b"x-ai-ratelimit-remaining-day-huggingface-cost") == b"0.01"
    assert second.header(b"x-ai-ratelimit-remaining-day-huggingface-cost") == b"0.004"
    assert second.header(b"x-ai-ratelimit-remaining-day-huggingface") == b"98800"
    refused = await gateway.post()
    assert refused.status == 429
    assert refused.header(b"x-ai-ratelimit-retry-after-day-huggingface-cost") is not None
    assert refused.header(b"x-ai-ratelimit-retry-after-day-huggingface") is None  # that window is not over


def test_a_window_is_given_once_per_provider_and_strategy():
    twice = [{"name": "huggingface", "limit": [1], "window_size": [60]}] * 2
    with pytest.raises(msgspec.ValidationError, match=r"60 s window of huggingface \(total_tokens\) is given twice"):
        section(llm_providers=twice)
    with pytest.raises(msgspec.ValidationError, match=r"consumer_limits \(alice\): the 60 s window"):
        section(consumer_limits={"alice": {"llm_providers": twice}})


async def test_failing_closed_answers_529_with_retry_after():
    class Unreachable(LocalCounters):
        async def read(self, identifier, windows):
            raise CountersUnavailable("the rate-limit counters (Redis at 10.0.0.9:6379) cannot be reached", 1)

    inner = answering()
    app = RateLimitMiddleware(inner, limits=Limits.of(section(), Prices()), counters=Unreachable())
    refused = await call(app, http_scope())
    assert refused.status == 529
    assert refused.json()["error"]["type"] == "overloaded_error"
    assert refused.header(b"retry-after") == b"1"
    assert inner.calls == 0


@pytest.mark.parametrize(
    ("method", "path"), [("HEAD", "/"), ("GET", "/v1/models"), ("POST", "/v1/messages/count_tokens")]
)
async def test_what_spends_no_tokens_is_never_refused(method, path):
    gateway = Gateway(section(), answering(prompt=500, completion=0))
    await gateway.post()
    assert (await gateway.post()).status == 429
    assert (await gateway.post(method=method, path=path)).status == 200


async def test_the_lifespan_opens_and_closes_the_counters():
    events: list[str] = []

    class Recorded(LocalCounters):
        async def open(self) -> None:
            events.append("open")

        async def close(self) -> None:
            events.append("close")

    async def inner(scope, receive, send):
        while True:
            message = await receive()
            events.append(message["type"])
            kind = "startup" if message["type"] == "lifespan.startup" else "shutdown"
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return

    app = RateLimitMiddleware(inner, limits=Limits.of(section(), Prices()), counters=Recorded())
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert events == ["open", "lifespan.startup", "lifespan.shutdown", "close"]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
