"""FailoverMiddleware: one request, many targets (Kong's ai-proxy-advanced balancer).

Above one leg per target (Translate > SSERewrite > ProviderAuth > Upstream, each for its own
provider), it picks a target (aimw.balancer), replays the request to that target's leg and
holds back an error answer's ``http.response.start`` until it knows whether the answer goes
to the client or another target is tried. An answer that started well (status < 400) goes
through at once: failover only ever happens before the first byte reached the client, so a
stream is never switched mid-way.

When another target is tried (Kong's ``failover_criteria``, nginx's proxy_next_upstream):

- ``error``: the provider could not be reached, its pool stayed busy, or its answer broke off
  before it began; ``timeout``: it sent nothing in time; ``http_429``, ``http_500``,
  ``http_502``, ``http_503``, ``http_504``, ``http_403``, ``http_404``: it answered that status;
  ``invalid_header``: accepted, and treated as ``error`` (aimw's transport reports a
  malformed head as an unreachable provider).
- Every Messages request is a POST, which nginx and Kong retry only with ``non_idempotent``
  listed: aimw does the same, so a failover configuration lists it.
- A client error (the provider's 400, or a request no target can take) never fails over.
- A client that left (``Exchange.client_closed``) gets no further try.
- At most ``retries`` more tries, each on a target not yet tried in this request whose circuit
  is closed. When no target is left: 529 overloaded_error naming each try (Claude Code backs
  off and retries a 529; Kong answers the last provider's error, or 502 when none answered).

Each try re-translates the parsed request for its target: the exchange's per-try fields are
reset to what the layers above left (parsed request, body) before every try; the attempts list
keeps every try, for Kong's ``ai.proxy.tried_targets``. Model routing: a target with
``aliases`` (fnmatch patterns, Kong's ``model_alias``) takes only client models matching one of
them; with every target aliased, a model none matches is a 400 naming it.

Balancer and circuit-breaker state lives on the Balancer, per worker process.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from aimw.asgi import answer_error, header_value, replay_body
from aimw.balancer import AttemptFigures, Balancer
from aimw.errors import GatewayError, redact
from aimw.exchange import Attempt, Exchange, Usage, exchange_of
from aimw.types import ASGIApp, Message, Receive, Scope, Send

FailoverCriterion = Literal[
    "error",
    "timeout",
    "invalid_header",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "http_403",
    "http_404",
    "http_429",
    "non_idempotent",
]
"""Kong's failover_criteria (nginx's proxy_next_upstream names)."""
FAILOVER_CRITERIA = frozenset(get_args(FailoverCriterion))
DEFAULT_RETRIES = 5
MAX_HELD_ERROR_SIZE = 1024 * 1024  # bytes: an error answer held back is an Anthropic error JSON
_KIND_CRITERION = {"unreachable": "error", "busy": "error", "broke_off": "error", "timeout": "timeout"}


@dataclass(frozen=True, slots=True)
class Leg:
    """One target: ``app`` is its leg (Translate > SSERewrite > ProviderAuth > Upstream),
    ``name`` says which target it is in messages (``targets[1] (azure/gpt-4o)``), ``aliases``
    the client models it takes (fnmatch patterns; empty: any), ``input_cost`` /
    ``output_cost`` its prices per million tokens (for the ``cost`` usage strategy)."""

    app: ASGIApp
    name: str
    aliases: tuple[str, ...] = ()
    input_cost: float = 0.0
    output_cost: float = 0.0

    def serves(self, model: str | None) -> bool:
        """Whether this target takes a request for the client's ``model``."""
        if not self.aliases:
            return True
        return model is not None and any(fnmatch.fnmatchcase(model, pattern) for pattern in self.aliases)


class FailoverMiddleware:
    """Send each Messages request to one target's leg, trying others on a failover criterion.

    Args:
        legs: one per target, in the configuration's order (the balancer's indices).
        balancer: picks a target among the eligible ones; keeps in-flight counts, latencies,
            usage and circuit breakers (per process).
        retries: how many more targets one request may try (Kong's ``balancer.retries``).
        failover_criteria: Kong's names (FAILOVER_CRITERIA); ValueError for others.

    Errors (Anthropic shape, before any byte reached the client): 400 invalid_request_error
    for a client model no target serves (only when every target has aliases); 529
    overloaded_error when every target tried failed, or none is available.
    """

    def __init__(
        self,
        legs: Sequence[Leg],
        balancer: Balancer,
        *,
        retries: int = DEFAULT_RETRIES,
        failover_criteria: Iterable[str] = ("error", "timeout"),
    ) -> None:
        if not legs:
            raise ValueError("FailoverMiddleware needs at least one leg")
        criteria = frozenset(failover_criteria)
        if unknown := criteria - FAILOVER_CRITERIA:
            raise ValueError(f"unknown failover criteria: {', '.join(sorted(unknown))}")
        self.legs = tuple(legs)
        self.balancer = balancer
        self.retries = retries
        self.criteria = criteria | ({"error"} if "invalid_header" in criteria else set())
        self.routed = all(leg.aliases for leg in legs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan_of_all([leg.app for leg in self.legs], receive, send)
            return
        if scope["type"] != "http":
            await self.legs[0].app(scope, receive, send)
            return
        exchange = exchange_of(scope)
        try:
            eligible = self._eligible(exchange)
        except GatewayError as error:
            await answer_error(scope, send, error)
            return
        tries = _Tries(exchange)
        hash_value = header_value(scope["headers"], self.balancer.hash_header)
        for _ in range(self.retries + 1):
            if exchange.client_closed is not None:
                return  # nobody to answer: no further target is asked (ObserveMiddleware logs why)
            candidates = [index for index in eligible if index not in tries.tried and self.balancer.available(index)]
            if not candidates:
                break
            index = self.balancer.pick(candidates, hash_value)
            held = _HeldAnswer(send)
            attempts_before = tries.start(index)
            self.balancer.started(index)
            try:
                await self.legs[index].app(scope, replay_body(tries.body, receive), held.send)
            finally:
                attempt = exchange.attempts[-1] if len(exchange.attempts) > attempts_before else None
                criterion = self._criterion(attempt, held)
                self.balancer.finished(index, self._figures(index, exchange, attempt, criterion))
                tries.note(f"{self.legs[index].name}: {_outcome(attempt, held)}")
            if criterion is None or not self._fails_over(criterion, scope):
                await held.release()
                return
        if tries.outcomes:
            message = f"no target answered ({'; '.join(tries.outcomes)})"
        else:
            message = "every target of this gateway is down (circuit open); try again later"
        exchange.error = f"overloaded_error: {message}"  # the outcome, whatever the last try recorded
        await answer_error(scope, send, GatewayError(529, message, "overloaded_error"))

    def _eligible(self, exchange: Exchange) -> list[int]:
        request = exchange.messages_request
        model = request.model if request is not None and isinstance(request.model, str) else exchange.request_model
        eligible = [index for index, leg in enumerate(self.legs) if leg.serves(model)]
        if not eligible:
            if self.routed:
                raise GatewayError(400, f"no target of this gateway serves the model {model!r}")
            eligible = list(range(len(self.legs)))
        return eligible

    def _criterion(self, attempt: Attempt | None, held: _HeldAnswer) -> str | None:
        """The failover criterion the try met (Kong's name), None for an answer that stands."""
        if held.passing or attempt is None:
            return None
        if attempt.failure_kind is not None:
            return _KIND_CRITERION.get(attempt.failure_kind)
        if held.status is not None and attempt.status is not None and attempt.status >= 400:
            return f"http_{attempt.status}"
        return None

    def _fails_over(self, criterion: str, scope: Scope) -> bool:
        return criterion in self.criteria and (scope["method"] != "POST" or "non_idempotent" in self.criteria)

    def _figures(
        self, index: int, exchange: Exchange, attempt: Attempt | None, criterion: str | None
    ) -> AttemptFigures:
        e2e_ms = 0.0
        if attempt is not None and attempt.sent_ns and attempt.last_byte_ns:
            e2e_ms = (attempt.last_byte_ns - attempt.sent_ns) / 1e6
        usage = exchange.usage
        prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        completion = usage.output_tokens
        leg = self.legs[index]
        return AttemptFigures(
            success=criterion is None or criterion not in self.criteria,
            e2e_ms=e2e_ms,
            tpot_ms=e2e_ms / completion if completion else None,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=(prompt * leg.input_cost + completion * leg.output_cost) / 1e6,
        )


class _Tries:
    """The tries of one request: which targets were tried, and the exchange's per-try fields
    as the layers above left them (restored before each try)."""

    __slots__ = ("body", "exchange", "outcomes", "request", "tried")

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.request = exchange.messages_request
        self.body = exchange.request_body or b""
        self.tried: list[int] = []
        self.outcomes: list[str] = []

    def note(self, outcome: str) -> None:
        """Keep how a try ended (``targets[0] (gemini/…): HTTP 503``), redacted."""
        self.outcomes.append(redact(outcome))

    def start(self, index: int) -> int:
        """Reset the exchange for a try of target ``index``; the attempts recorded so far."""
        exchange = self.exchange
        self.tried.append(index)
        exchange.messages_request = self.request
        exchange.request_body = self.body
        exchange.error = exchange.response_model = None
        exchange.usage = Usage()
        exchange.usage_estimated = False
        exchange.log_meta = {}
        exchange.first_token_ns = 0
        return len(exchange.attempts)


def _outcome(attempt: Attempt | None, held: _HeldAnswer) -> str:
    if attempt is not None and attempt.failure:
        return attempt.failure
    if held.status is not None:
        return f"HTTP {held.status}"
    return "no answer"


class _HeldAnswer:
    """One try's answer: passed on at once when its status is below 400, else held (with its
    body, at most MAX_HELD_ERROR_SIZE bytes) until :meth:`release` or dropped for another try."""

    __slots__ = ("client_send", "messages", "passing", "size", "status")

    def __init__(self, send: Send) -> None:
        self.client_send = send
        self.passing = False
        self.status: int | None = None
        self.messages: list[Message] = []
        self.size = 0

    async def send(self, message: Message) -> None:
        if self.passing:
            await self.client_send(message)
            return
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if message["status"] < 400:
                self.passing = True
                await self.client_send(message)
                return
        self.size += len(message.get("body", b""))
        if self.size > MAX_HELD_ERROR_SIZE:
            raise GatewayError(502, "the upstream error answer is larger than the gateway's limit", "api_error")
        self.messages.append(message)

    async def release(self) -> None:
        """Send what was held (the try's answer stands)."""
        if self.passing:
            return
        self.passing = True
        for message in self.messages:
            await self.client_send(message)


async def lifespan_of_all(apps: Sequence[ASGIApp], receive: Receive, send: Send) -> None:
    """Run one ASGI lifespan conversation for several apps: each gets startup, and later
    shutdown; the server hears ``complete`` once all did (or ``failed`` with the first
    failure's message). An app that does not speak lifespan (returns at once) is left out."""
    inboxes: list[asyncio.Queue[Message]] = [asyncio.Queue() for _ in apps]
    outboxes: list[asyncio.Queue[Message]] = [asyncio.Queue() for _ in apps]

    async def run(app: ASGIApp, inbox: asyncio.Queue[Message], outbox: asyncio.Queue[Message]) -> None:
        try:
            await app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
        finally:
            await outbox.put({"type": "lifespan.app.returned"})

    tasks = [asyncio.create_task(run(app, i, o)) for app, i, o in zip(apps, inboxes, outboxes, strict=True)]
    returned: set[int] = set()
    try:
        while True:
            message = await receive()
            phase = "startup" if message["type"] == "lifespan.startup" else "shutdown"
            failures = []
            for index, (inbox, outbox) in enumerate(zip(inboxes, outboxes, strict=True)):
                if index in returned:
                    continue
                await inbox.put(message)
                answer = await outbox.get()
                if answer["type"] == "lifespan.app.returned":
                    returned.add(index)
                elif answer["type"].endswith(".failed"):
                    failures.append(answer.get("message", ""))
            if failures:
                await send({"type": f"lifespan.{phase}.failed", "message": failures[0]})
                return
            await send({"type": f"lifespan.{phase}.complete"})
            if phase == "shutdown":
                return
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
