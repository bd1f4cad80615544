"""FailoverMiddleware at the ASGI level: legs that answer as a real leg does (an Anthropic
answer or error after recording their Attempt), the real Balancer, a recording send."""

from __future__ import annotations

import json

import pytest

from aimw.balancer import Balancer
from aimw.exchange import Attempt, exchange_of
from aimw.middleware.failover import FailoverMiddleware, Leg, lifespan_of_all
from aimw.translators.anthropic.messages import decode_request
from tests.asgi_helpers import RecordingSend, ScriptedReceive, http_scope

pytestmark = pytest.mark.anyio

BODY = b'{"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}'
FAILOVER = ("error", "timeout", "http_429", "http_500", "http_503", "non_idempotent")


class ScriptedLeg:
    """A target's leg: records the body it got and the exchange it saw, appends an Attempt as
    UpstreamApp would, then answers ``status`` (an Anthropic message for 2xx, an Anthropic
    error otherwise) or, with ``kind``, fails as a transport failure of that kind would be
    answered by TranslateMiddleware (502/504)."""

    def __init__(self, name: str, status: int = 200, *, kind: str | None = None, stream: bool = False) -> None:
        self.name = name
        self.status = status
        self.kind = kind
        self.stream = stream
        self.bodies: list[bytes] = []
        self.seen_errors: list[str | None] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                phase = message["type"].removeprefix("lifespan.")
                await send({"type": f"lifespan.{phase}.complete"})
                if phase == "shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        exchange = exchange_of(scope)
        self.seen_errors.append(exchange.error)
        attempt = Attempt(self.name, "m", "http", "127.0.0.1", 9, "/v1/chat/completions", sent_ns=1, last_byte_ns=2)
        exchange.attempts.append(attempt)
        exchange.log_meta[f"{self.name}_meta"] = "x"
        if self.kind is not None:
            attempt.failure, attempt.failure_kind = f"{self.kind} at {self.name}", self.kind
            exchange.fail(f"api_error: {self.kind}")
            await self._answer(send, 504 if self.kind == "timeout" else 502, error="api_error")
            return
        attempt.status = self.status
        if self.status >= 400:
            exchange.fail(f"api_error: HTTP {self.status}")
            await self._answer(send, self.status, error="rate_limit_error" if self.status == 429 else "api_error")
            return
        exchange.usage.output_tokens = 3
        if self.stream:
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
            )
            await send({"type": "http.response.body", "body": b"event: message_start\n\n", "more_body": True})
            await send({"type": "http.response.body", "body": b"event: message_stop\n\n", "more_body": False})
            return
        await self._answer(send, 200, answer={"type": "message", "model": self.name})

    async def _answer(self, send, status: int, *, error: str | None = None, answer: dict | None = None) -> None:
        payload = answer or {"type": "error", "error": {"type": error, "message": f"{self.name} failed"}}
        body = json.dumps(payload).encode()
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": body[:10], "more_body": True})
        await send({"type": "http.response.body", "body": body[10:], "more_body": False})


def failover(*legs: ScriptedLeg, algorithm="priority", weights=None, aliases=None, **kwargs) -> FailoverMiddleware:
    weights = weights or [100 - 10 * n for n in range(len(legs))]  # priority: the first leg first
    aliases = aliases or [()] * len(legs)
    kwargs.setdefault("failover_criteria", FAILOVER)
    return FailoverMiddleware(
        [
            Leg(leg, f"targets[{n}] ({leg.name})", tuple(alias))
            for n, (leg, alias) in enumerate(zip(legs, aliases, strict=True))
        ],
        Balancer(weights, algorithm, max_fails=kwargs.pop("max_fails", 0), clock=kwargs.pop("clock", None) or _clock()),
        **kwargs,
    )


def _clock():
    now = [0.0]
    return lambda: now[0]


async def post(app, body: bytes = BODY, headers=()):
    scope = http_scope(body=body, headers=[(b"content-type", b"application/json"), *headers])
    exchange = exchange_of(scope)
    exchange.request_body = body
    exchange.messages_request = decode_request(body)
    send = RecordingSend()
    await app(scope, ScriptedReceive([body], disconnect_now=True), send)
    return scope, send


@pytest.mark.parametrize(
    ("failing", "tried_reason"),
    [
        (ScriptedLeg("down", kind="unreachable"), "unreachable at down"),
        (ScriptedLeg("slow", kind="timeout"), "timeout at slow"),
        (ScriptedLeg("busy", kind="busy"), "busy at busy"),
        (ScriptedLeg("limited", 429), None),
        (ScriptedLeg("broken", 500), None),
        (ScriptedLeg("loading", 503), None),
    ],
)
async def test_each_criterion_fails_over_to_the_next_target(failing, tried_reason):
    second = ScriptedLeg("second")
    scope, send = await post(failover(failing, second))

    assert send.status == 200, send.body
    assert send.json() == {"type": "message", "model": "second"}
    assert failing.bodies == second.bodies == [BODY]  # the same request replayed whole
    exchange = exchange_of(scope)
    assert [attempt.provider for attempt in exchange.attempts] == [failing.name, "second"]
    assert exchange.attempts[0].failure == tried_reason
    assert exchange.error is None  # the first try's failure is not the outcome
    assert second.seen_errors == [None]
    assert exchange.log_meta == {"second_meta": "x"}  # the answering target's meta only


async def test_a_client_error_never_fails_over():
    first, second = ScriptedLeg("first", 400), ScriptedLeg("second")
    _, send = await post(failover(first, second))
    assert send.status == 400
    assert send.json()["error"]["message"] == "first failed"
    assert second.bodies == []


async def test_a_criterion_not_listed_does_not_fail_over():
    first, second = ScriptedLeg("first", 503), ScriptedLeg("second")
    _, send = await post(failover(first, second, failover_criteria=("error", "timeout", "non_idempotent")))
    assert send.status == 503
    assert second.bodies == []


async def test_posts_fail_over_only_with_non_idempotent():
    """Kong and nginx (proxy_next_upstream) retry a POST only with non_idempotent listed."""
    first, second = ScriptedLeg("first", kind="unreachable"), ScriptedLeg("second")
    _, send = await post(failover(first, second, failover_criteria=("error", "timeout")))
    assert send.status == 502
    assert second.bodies == []


async def test_a_stream_that_started_is_never_switched():
    first, second = ScriptedLeg("first", stream=True), ScriptedLeg("second")
    _, send = await post(failover(first, second))
    assert send.status == 200
    assert send.body == b"event: message_start\n\nevent: message_stop\n\n"
    assert second.bodies == []


async def test_a_client_that_left_gets_no_further_try():
    """The first target answered 503 (a failover criterion), but the client left meanwhile
    (ObserveMiddleware recorded it): nobody is answered and no other target is asked."""

    class LeavingDuring(ScriptedLeg):
        async def __call__(self, scope, receive, send) -> None:
            await super().__call__(scope, receive, send)
            exchange_of(scope).client_closed = "waiting"

    first, second = LeavingDuring("first", 503), ScriptedLeg("second")
    scope, send = await post(failover(first, second))
    assert second.bodies == []
    assert send.messages == []  # the held 503 goes nowhere: nobody is there
    assert [attempt.provider for attempt in exchange_of(scope).attempts] == ["first"]


async def test_every_target_failing_is_529_naming_each_try():
    legs = [ScriptedLeg("a", 503), ScriptedLeg("b", kind="unreachable"), ScriptedLeg("c", 429)]
    scope, send = await post(failover(*legs))
    assert send.status == 529
    error = send.json()["error"]
    assert error["type"] == "overloaded_error"
    assert "targets[0] (a): HTTP 503" in error["message"]
    assert "targets[1] (b): unreachable at b" in error["message"]
    assert "targets[2] (c): HTTP 429" in error["message"]
    assert [attempt.provider for attempt in exchange_of(scope).attempts] == ["a", "b", "c"]
    assert exchange_of(scope).error.startswith("overloaded_error")


async def test_retries_bound_the_tries():
    legs = [ScriptedLeg(name, 500) for name in "abcd"]
    _, send = await post(failover(*legs, retries=1))
    assert send.status == 529
    assert [len(leg.bodies) for leg in legs] == [1, 1, 0, 0]


async def test_an_open_circuit_is_skipped_until_fail_timeout():
    now = [0.0]
    first, second = ScriptedLeg("first", 500), ScriptedLeg("second")
    app = failover(first, second, max_fails=1, clock=lambda: now[0])
    await post(app)
    assert (len(first.bodies), len(second.bodies)) == (1, 1)
    await post(app)  # first's circuit is open: straight to second
    assert (len(first.bodies), len(second.bodies)) == (1, 2)
    now[0] += 11  # past Kong's default fail_timeout (10 s)
    first.status = 200
    _, send = await post(app)
    assert send.json()["model"] == "first"


async def test_model_aliases_route_and_an_unserved_model_is_a_400():
    haiku, main = ScriptedLeg("small"), ScriptedLeg("strong")
    app = failover(haiku, main, aliases=[("claude-haiku-*",), ("claude-*-opus-*", "claude-sonnet-*")])
    _, send = await post(app)
    assert send.json()["model"] == "small"
    _, send = await post(app, BODY.replace(b"claude-haiku-4-5", b"claude-sonnet-4-5"))
    assert send.json()["model"] == "strong"
    _, send = await post(app, BODY.replace(b"claude-haiku-4-5", b"gpt-4o"))
    assert send.status == 400
    assert "gpt-4o" in send.json()["error"]["message"]
    assert len(haiku.bodies) == len(main.bodies) == 1


async def test_without_aliases_everywhere_any_model_goes_to_the_balancer():
    aliased, catch_all = ScriptedLeg("aliased"), ScriptedLeg("any")
    app = failover(aliased, catch_all, aliases=[("claude-haiku-*",), ()])
    _, send = await post(app, BODY.replace(b"claude-haiku-4-5", b"gpt-4o"))
    assert send.json()["model"] == "any"


async def test_consistent_hashing_keeps_a_session_on_one_target():
    legs = [ScriptedLeg(name) for name in "abc"]
    app = failover(*legs, algorithm="consistent-hashing", weights=[100, 100, 100])
    app.balancer = Balancer([100, 100, 100], "consistent-hashing", hash_on_header="x-claude-code-session-id")
    chosen = set()
    for _ in range(20):
        _, send = await post(app, headers=[(b"x-claude-code-session-id", b"session-1")])
        chosen.add(send.json()["model"])
    assert len(chosen) == 1


async def test_lifespan_reaches_every_leg_once():
    legs = [ScriptedLeg("a"), ScriptedLeg("b")]
    sent = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message["type"])

    await lifespan_of_all(legs, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_unknown_criteria_are_refused():
    with pytest.raises(ValueError, match="http_418"):
        failover(ScriptedLeg("a"), failover_criteria=("http_418",))
