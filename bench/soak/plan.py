"""What one soak exchange is: its kind (a normal stream, a provider fault or a client
departure), its numbers, and what the gateway must answer and log for it.

The load client picks every exchange's plan and tells the fake upstream through one
request header, forwarded by the gateway (``AIMW_FORWARD_HEADERS=x-soak-exchange``)::

    x-soak-exchange: <id> <kind> <tokens> <at> <prompt_tokens>

``tokens`` is the length of the answer (one token per streamed chunk), ``at`` the point
where the fault or the departure happens (a token index, or a per cent of the request body
for ``depart_upload``), ``prompt_tokens`` what the fake reports as the prompt's usage. The
log line keeps the header (``request.headers``), so every line is matched to its exchange.

Kinds (the fake's behaviour; what the client must get):

- ``normal``: a whole slow stream; a valid Anthropic stream, ``end_turn``, every token once.
- ``hold``: as ``normal``, but it goes on until the fake is told to release its held streams
  (``GET /soak/stats?release=holds``), at most ``tokens``; its usage is the tokens it sent.
  Each client's first exchange of a round, so that all of them are held at once. ``at``, when
  not 0, is the mean gap between its tokens in ms (a slower model) instead of 20-50 ms.
- ``reset``: ``at`` tokens, then a TCP reset; the stream ends with ``event: error``.
- ``stall_stream``: ``at`` tokens, then silence past the gateway's read timeout; ``event: error``.
- ``stall_head``: no answer at all past the read timeout; ``504 timeout_error``.
- ``truncated``: ``at`` tokens, then an event whose JSON is cut off, then the body ends; ``event: error``.
- ``http_429`` / ``http_500`` / ``http_503``: the router's error answer; ``429 rate_limit_error``,
  ``500 api_error``, ``529 overloaded_error`` (aimw maps a provider's 503 to 529).
- ``depart_upload``: the client leaves after sending ``at`` % of the body (the fake never sees it).
- ``depart_head``: the fake holds its answer's head; the client leaves before it comes.
- ``depart_stream``: after ``at`` tokens the fake pauses (``HEAD_HOLD_S``, below the read
  timeout), and the client leaves once it got ``at`` text deltas: always mid-stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

HEADER = "x-soak-exchange"
DEPARTURE_STATUS = 499  # nginx's "client closed request", what aimw logs for a client that left

STREAM_FAULTS = ("reset", "stall_stream", "truncated")
HTTP_FAULTS = {
    "http_429": (429, 429, "rate_limit_error"),
    "http_500": (500, 500, "api_error"),
    "http_503": (503, 529, "overloaded_error"),
}
DEPARTURES = ("depart_upload", "depart_head", "depart_stream")
KINDS = ("normal", "hold", *STREAM_FAULTS, "stall_head", *HTTP_FAULTS, *DEPARTURES)

# The fault mix after each client's first (normal) stream: weights in per cent. About 30 %
# of the exchanges end with the client leaving early, as in issue 11's first soak.
MIX: dict[str, int] = {
    "normal": 40,
    "reset": 7,
    "stall_stream": 4,
    "stall_head": 3,
    "truncated": 5,
    "http_429": 4,
    "http_500": 3,
    "http_503": 4,
    "depart_upload": 7,
    "depart_head": 8,
    "depart_stream": 15,
}
MIX_TOKENS = (20, 90)  # tokens of a stream in the mix (at 20-50 ms each: about 0.7-3.2 s)
TOKEN_GAP_MS = (20, 50)  # ms between two tokens, drawn per token by the fake
FIRST_TOKEN_MS = (30, 200)  # ms the fake "thinks" before its answer's head
HEAD_HOLD_S = 1.5  # seconds the fake pauses where a client leaves (below the read timeout)
HOLD_MAX_TOKENS = 20_000  # a held stream ends by itself after this many tokens (about 12 minutes)
PROMPT_TOKENS = 10_000  # + id % 5000: what the fake reports, distinct per exchange


@dataclass(frozen=True, slots=True)
class Plan:
    """One exchange: ``id`` (unique in a run), ``kind``, ``tokens`` in the answer, ``at``
    (token index or body per cent, see the module), ``prompt_tokens`` the fake reports, and
    for departures the client's own numbers: ``leave_after_s`` (depart_head: seconds after
    the request was sent; depart_upload: seconds after the part of the body) and ``abort``
    (leave with a TCP reset instead of a FIN)."""

    id: int
    kind: str
    tokens: int
    at: int = 0
    prompt_tokens: int = PROMPT_TOKENS
    leave_after_s: float = 0.0
    abort: bool = False

    def header(self) -> str:
        return f"{self.id} {self.kind} {self.tokens} {self.at} {self.prompt_tokens}"

    @property
    def departs(self) -> bool:
        return self.kind in DEPARTURES

    @property
    def reaches_provider(self) -> bool:
        """Whether the request gets to the fake (all but a departure during the upload)."""
        return self.kind != "depart_upload"


def parse_header(value: str) -> Plan:
    """The plan a header value names (the fake's side). Raises ValueError if malformed."""
    exchange_id, kind, tokens, at, prompt = value.split(" ")
    if kind not in KINDS:
        raise ValueError(f"unknown soak exchange kind {kind!r}")
    return Plan(int(exchange_id), kind, int(tokens), int(at), int(prompt))


def exchange_id(value: str | None) -> int | None:
    """The exchange id of a header value, None when there is none."""
    if not value:
        return None
    head = value.split(" ", 1)[0]
    return int(head) if head.isdigit() else None


class Planner:
    """Draws plans from :data:`MIX` with its own seeded RNG (two runs with one seed draw the
    same kinds and numbers in the same order for each client). Ids are unique per planner."""

    def __init__(self, seed: int, first_id: int = 1) -> None:
        self.seed = seed
        self.next_id = first_id

    def _id(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value

    def client_rng(self, client: int) -> random.Random:
        """The RNG of client number ``client`` (its sequence of kinds, the same every round)."""
        return random.Random(self.seed * 1_000_003 + client)

    def normal(self, tokens: int) -> Plan:
        """A ``normal`` stream of ``tokens`` tokens."""
        plan_id = self._id()
        return Plan(plan_id, "normal", tokens, prompt_tokens=PROMPT_TOKENS + plan_id % 5000)

    def hold(self, gap_ms: int = 0) -> Plan:
        """A ``hold`` stream, a token every ``gap_ms`` (0: every 20-50 ms)."""
        plan_id = self._id()
        return Plan(plan_id, "hold", HOLD_MAX_TOKENS, gap_ms, PROMPT_TOKENS + plan_id % 5000)

    def draw(self, rng: random.Random) -> Plan:
        """One exchange of the mix."""
        kind = rng.choices(tuple(MIX), weights=tuple(MIX.values()))[0]
        tokens = rng.randint(*MIX_TOKENS)
        at = 0
        leave_after = 0.0
        if kind in STREAM_FAULTS:
            at = rng.randint(1, tokens - 1)
        elif kind == "depart_stream":
            at = rng.randint(1, tokens // 2)
        elif kind == "depart_upload":
            at = rng.randint(5, 95)
            leave_after = rng.uniform(0.05, 0.3)
        elif kind == "depart_head":
            leave_after = rng.uniform(0.05, HEAD_HOLD_S * 0.6)
        plan_id = self._id()
        return Plan(
            plan_id,
            kind,
            tokens,
            at,
            PROMPT_TOKENS + plan_id % 5000,
            leave_after,
            abort=kind != "depart_upload" and rng.random() < 0.5,
        )
