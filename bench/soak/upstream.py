"""The soak's fake Hugging Face router: a raw asyncio HTTP/1.1 server on loopback that
streams OpenAI Chat Completions slowly and injects the faults each request's plan names.

It checks what the router checks (``POST /v1/chat/completions``, no query string,
``Authorization: Bearer <token>``, a JSON body with the model, non-empty ``messages``,
``"stream": true`` with ``stream_options.include_usage``) and what no OpenAI provider may
get (Anthropic's headers, the client's ``x-api-key``): anything else is answered 400 and
counted as rejected, which fails the soak. Then it follows the ``x-soak-exchange`` header
(:mod:`bench.soak.plan`): a token every 20-50 ms (one ``chat.completion.chunk`` per chunk of
the chunked body, as the router flushes them), resets, stalls, cut JSON, error answers.

Each token's text carries its index and the moment the fake wrote it
(``<word>~<index>~<monotonic ns>~ ``), so the client measures every token's trip through the
gateway. One timer per stream (``loop.call_later``), no task: thousands of slow streams cost
little. ``GET /soak/stats`` answers its accounting as JSON: connections and streams open now
and at their peak, requests, rejections, and the fate of every exchange id (``answered``,
``reset``, ``closed_mid_stream`` …); ``?reset=peaks`` starts new peaks (a new round),
``?release=holds`` ends the held streams (kind ``hold``) at their next token.

    python -m bench.soak.upstream --port 0 --token hf_x --model m --max-stall 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter

from bench.http11 import HEAD_END, MAX_HEAD_SIZE, ChunkedDecoder, ProtocolError, body_framing
from bench.http11 import parse_head as parse_http_head
from bench.net import LOOPBACK_HOST, require_loopback, run
from bench.soak.chat import ERROR_BODIES, STREAM_HEAD, Chunks, response
from bench.soak.plan import FIRST_TOKEN_MS, HEAD_HOLD_S, HEADER, TOKEN_GAP_MS, Plan, parse_header

CHAT_PATH = b"/v1/chat/completions"
STATS_PATH = b"/soak/stats"
_FORBIDDEN_HEADERS = (b"anthropic-version", b"anthropic-beta", b"x-api-key")
_MAX_PROBLEMS_KEPT = 20


class Accounting:
    """What the fake saw: connections and streams open now and at their peak, requests,
    rejections (with the first problems), and each exchange id's fate."""

    def __init__(self) -> None:
        self.connections = self.peak_connections = 0
        self.streams = self.peak_streams = 0
        self.requests = self.rejected = 0
        self.problems: list[str] = []
        self.fates: dict[int, str] = {}
        self.answered_ns: dict[int, int] = {}  # departures whose answer the fake ended: when

    def open_connection(self) -> None:
        self.connections += 1
        self.peak_connections = max(self.peak_connections, self.connections)

    def open_stream(self) -> None:
        self.streams += 1
        self.peak_streams = max(self.peak_streams, self.streams)

    def reject(self, problems: list[str]) -> None:
        self.rejected += 1
        room = _MAX_PROBLEMS_KEPT - len(self.problems)
        if room > 0:
            self.problems.extend(problems[:room])

    def as_json(self, reset_peaks: bool, fates: bool) -> bytes:
        """The accounting as JSON; ``fates``: with each exchange's fate, and when the fake
        ended each departure's answer (``answered_ns``, monotonic ns), both growing with the run."""
        value: dict = {
            "connections": self.connections - 1,  # not the one asking
            "peak_connections": self.peak_connections,
            "streams": self.streams,
            "peak_streams": self.peak_streams,
            "requests": self.requests,
            "rejected": self.rejected,
            "problems": self.problems,
            "fate_counts": dict(Counter(self.fates.values())),
        }
        if fates:
            value["fates"] = {str(key): fate for key, fate in self.fates.items()}
            value["answered_ns"] = {str(key): ns for key, ns in self.answered_ns.items()}
        if reset_peaks:
            self.peak_connections, self.peak_streams = self.connections, self.streams
        return json.dumps(value).encode()


class Router:
    """The settings every connection shares: the token and model it expects, how long it
    stalls before giving up on a gateway that never abandons a stall and how long it pauses
    where a client leaves (seconds: the longer, the later a busy client may leave)."""

    def __init__(self, token: str, model: str, max_stall: float, pause: float = HEAD_HOLD_S) -> None:
        self.authorization = b"Bearer " + token.encode()
        self.model = model
        self.max_stall = max_stall
        self.pause = pause  # seconds the answer waits where a client leaves
        self.accounting = Accounting()
        self.rng = random.Random(1)
        self.released = False  # the held streams end at their next token

    def problems(self, start: list[bytes], fields: dict[bytes, bytes], body: bytes) -> list[str]:
        """What the router (and any OpenAI provider) would refuse in this request."""
        problems = []
        if start[0] != b"POST" or start[1] != CHAT_PATH:
            problems.append(f"unexpected request {start[0]!r} {start[1][:80]!r}")
        if fields.get(b"authorization") != self.authorization:
            problems.append("missing or wrong Authorization: Bearer <token>")
        problems += [
            f"header {name!r} must not reach an OpenAI provider" for name in _FORBIDDEN_HEADERS if name in fields
        ]
        if not fields.get(b"content-type", b"").startswith(b"application/json"):
            problems.append("content-type is not application/json")
        try:
            request = json.loads(body)
        except ValueError:
            return [*problems, f"body is not JSON ({len(body)} bytes)"]
        if not isinstance(request, dict):
            return [*problems, "body is not a JSON object"]
        if request.get("model") != self.model:
            problems.append(f"model {request.get('model')!r}, expected {self.model!r}")
        if not isinstance(request.get("messages"), list) or not request["messages"]:
            problems.append("messages must be a non-empty list")
        if request.get("stream") is not True or request.get("stream_options") != {"include_usage": True}:
            problems.append("not a stream with stream_options.include_usage")
        return problems


class RequestReader(asyncio.Protocol):
    """A connection's requests, one at a time (keep-alive), read whole (``Content-Length`` or
    chunked); ``GET /soak/stats`` answered here, any other ``POST`` handed to :meth:`answer`
    (while :attr:`answering`, later bytes wait in the buffer)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.accounting = router.accounting
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.accounting.open_connection()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.answering:
            try:
                self._next_request()
            except ProtocolError as exc:
                self.accounting.reject([f"malformed HTTP: {exc}"])
                self.transport.write(response(400, b'{"error":"malformed HTTP request"}'))
                self.transport.close()

    def _next_request(self) -> None:
        end = self.buffer.find(HEAD_END)
        if end < 0:
            if len(self.buffer) > MAX_HEAD_SIZE:
                raise ProtocolError("request head too large")
            return
        start, fields = parse_http_head(self.buffer[:end])
        length = body_framing(fields)
        rest = self.buffer[end + 4 :]
        if length is None:
            decoder = ChunkedDecoder()
            pieces = decoder.feed(rest)
            if not decoder.done:
                return
            body, self.buffer = b"".join(pieces), decoder.rest
        else:
            length = max(length, 0)
            if len(rest) < length:
                return
            body, self.buffer = rest[:length], rest[length:]
        path, _, query = start[1].partition(b"?")
        if start[0] == b"GET" and path == STATS_PATH:
            if query == b"release=holds":
                self.router.released = True
            elif query == b"reset=peaks":
                self.router.released = False
            answer = self.accounting.as_json(query == b"reset=peaks", query == b"fates=1")
            self.transport.write(response(200, answer))
            self.transport.close()
        elif start[0] != b"POST":  # a readiness probe (HEAD /): not a request the soak made
            self.transport.write(response(404, b'{"error":"Not Found"}'))
        else:
            self.answer(start, fields, body)

    @property
    def answering(self) -> bool:
        return False

    def answer(self, start: list[bytes], fields: dict[bytes, bytes], body: bytes) -> None:
        raise NotImplementedError


class Connection(RequestReader):
    """One connection from the gateway: each request answered as its plan says, driven by
    one timer."""

    def __init__(self, router: Router) -> None:
        super().__init__(router)
        self.plan: Plan | None = None  # the exchange being answered
        self.chunks: Chunks | None = None
        self.streaming = False
        self.sent = 0  # tokens written
        self.timer: asyncio.TimerHandle | None = None

    @property
    def answering(self) -> bool:
        return self.plan is not None

    def answer(self, start: list[bytes], fields: dict[bytes, bytes], body: bytes) -> None:
        self.accounting.requests += 1
        problems = self.router.problems(start, fields, body)
        try:
            plan = parse_header(fields.get(HEADER.encode(), b"").decode())
        except ValueError:
            problems.append(f"no valid {HEADER} header")
        if problems:
            self.accounting.reject(problems)
            refusal = json.dumps({"error": "; ".join(problems), "error_type": "validation"}).encode()
            self.transport.write(response(400, refusal))
            return
        self.plan, self.chunks, self.sent, self.streaming = plan, Chunks(self.router.model, plan.id), 0, False
        self.accounting.fates[plan.id] = "received"
        rng = self.router.rng
        if plan.kind.startswith("http_"):
            self._later(rng.uniform(*FIRST_TOKEN_MS) / 1000, self._error_answer)
        elif plan.kind == "stall_head":
            self._later(self.router.max_stall, self._give_up_stall)
        elif plan.kind == "depart_head":
            self._later(self.router.pause, self._start_stream)
        else:
            self._later(rng.uniform(*FIRST_TOKEN_MS) / 1000, self._start_stream)

    def _later(self, seconds: float, callback) -> None:
        self.timer = asyncio.get_running_loop().call_later(seconds, callback)

    def _error_answer(self) -> None:
        status = int(self.plan.kind.removeprefix("http_"))
        self.transport.write(response(status, ERROR_BODIES[status]))
        self._done("error_answered")

    def _start_stream(self) -> None:
        self.streaming = True
        self.accounting.open_stream()
        self.transport.write(STREAM_HEAD + self.chunks.role)
        self._later(self.router.rng.uniform(*TOKEN_GAP_MS) / 1000, self._next_token)

    def _next_token(self) -> None:
        plan, index = self.plan, self.sent
        if index == plan.at and plan.kind in ("reset", "stall_stream", "truncated"):
            if plan.kind == "reset":
                self.accounting.fates[plan.id] = "reset"
                self.transport.abort()  # RST: connection_lost does the rest
            elif plan.kind == "stall_stream":
                self._later(self.router.max_stall, self._give_up_stall)
            else:
                self.transport.write(self.chunks.cut())
                self._done("truncated")
            return
        if index == plan.tokens or (plan.kind == "hold" and self.router.released):
            self.transport.write(self.chunks.finish + self.chunks.usage(plan.prompt_tokens, index))
            self._done("answered")
            return
        self.transport.write(self.chunks.token(index))
        self.sent = index + 1
        self._later(self._gap(plan), self._next_token)

    def _gap(self, plan: Plan) -> float:
        """Seconds until the next token: 20-50 ms; a held stream's own gap (0.5-1.5 times
        ``at`` ms); a pause where a depart_stream client leaves."""
        rng = self.router.rng
        if plan.kind == "hold" and plan.at:
            return rng.uniform(0.5, 1.5) * plan.at / 1000
        gap = rng.uniform(*TOKEN_GAP_MS) / 1000
        return gap + self.router.pause if plan.kind == "depart_stream" and self.sent == plan.at else gap

    def _give_up_stall(self) -> None:
        """The gateway kept a stalled exchange past ``max_stall``: that is a hang; cut it."""
        self.accounting.fates[self.plan.id] = "stall_unabandoned"
        self.transport.abort()  # connection_lost does the rest

    def _done(self, fate: str) -> None:
        self.accounting.fates[self.plan.id] = fate
        if self.plan.departs:
            self.accounting.answered_ns[self.plan.id] = time.monotonic_ns()
        if self.streaming:
            self.accounting.streams -= 1
        self.plan, self.chunks, self.streaming, self.timer = None, None, False, None
        if self.buffer and self.transport is not None and not self.transport.is_closing():
            self.data_received(b"")

    def connection_lost(self, exc: Exception | None) -> None:
        self.accounting.connections -= 1
        if self.timer is not None:
            self.timer.cancel()
        plan = self.plan
        if plan is not None:
            fates = self.accounting.fates
            if fates.get(plan.id) == "received":
                if plan.kind in ("stall_head", "stall_stream") and (plan.kind == "stall_head" or self.sent == plan.at):
                    fates[plan.id] = "stall_abandoned"
                else:
                    fates[plan.id] = "closed_mid_stream" if self.streaming else "closed_before_head"
            if self.streaming:
                self.accounting.streams -= 1
        self.plan, self.transport = None, None


async def start_router(
    token: str,
    model: str,
    *,
    host: str = LOOPBACK_HOST,
    port: int = 0,
    max_stall: float = 15.0,
    pause: float = HEAD_HOLD_S,
) -> tuple[asyncio.Server, Router]:
    """Listen on ``host:port`` (0: a free port); returns the server and its Router."""
    router = Router(token, model, max_stall, pause)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(router), require_loopback(host), port, backlog=4096)
    return server, router


async def _serve(args: argparse.Namespace) -> None:
    server, _ = await start_router(
        args.token, args.model, host=args.host, port=args.port, max_stall=args.max_stall, pause=args.pause
    )
    print(f"listening on http://{args.host}:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak.upstream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=LOOPBACK_HOST)
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: a free one, printed at start)")
    parser.add_argument("--token", required=True, help="the router token it accepts (Authorization: Bearer)")
    parser.add_argument("--model", required=True, help="the model the body must name")
    parser.add_argument("--max-stall", type=float, default=15.0, help="seconds a stall lasts at most (then: a hang)")
    parser.add_argument(
        "--pause", type=float, default=HEAD_HOLD_S, help="seconds an answer waits where a client leaves"
    )
    args = parser.parse_args(argv)
    try:
        run(_serve(args), "auto")
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
