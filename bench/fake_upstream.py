"""A fast fake upstream: a raw asyncio HTTP/1.1 server on loopback speaking OpenAI Chat
Completions and Google's Gemini (the Gemini API and Vertex AI), with a token endpoint.

``POST .../chat/completions`` answers :class:`bench.answer.Answer`: with ``"stream": true``
in the body, a ``text/event-stream`` of one role chunk, one chunk per text piece, a
finish chunk, a usage chunk and ``data: [DONE]`` (chunked transfer coding, one write
per chunk unless ``coalesce``); otherwise one ``chat.completion`` JSON.

``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` (the Gemini API, with the
``x-goog-api-key`` :data:`bench.gemini.API_KEY`) and ``POST /v1/projects/{p}/locations/{l}/
publishers/google/models/{model}:streamGenerateContent?alt=sse`` (Vertex AI, with
``Authorization: Bearer`` and a token this fake issued) answer the same text as Gemini
streams it, one event per text piece (:mod:`bench.gemini`); ``:generateContent`` as one
GenerateContentResponse. A wrong credential gets Google's 401, a stream without
``alt=sse`` a 400. ``POST /oauth2/token`` is the service account's token endpoint
(JWT-bearer grant); ``GET /bench/stats`` returns the counts of :class:`UpstreamStats` as JSON.

Anything else gets an OpenAI-shaped 404. Keep-alive, chunked request bodies (what httpx
sends for a streamed body) and pipelining are handled; every response to a model request
is encoded once at start.

    python -m bench.fake_upstream --port 0 --chunks 200     # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from dataclasses import asdict, dataclass, field

from bench import gemini
from bench.answer import DEFAULT_CHUNKS, MODEL, Answer
from bench.http11 import (
    HEAD_END,
    LAST_CHUNK,
    MAX_HEAD_SIZE,
    ChunkedDecoder,
    ProtocolError,
    body_framing,
    encode_chunk,
    parse_head,
)
from bench.net import LOOPBACK_HOST, require_loopback, run

COMPLETION_ID = "chatcmpl-bench0000000000000000000000"
CREATED = 1_760_000_000  # seconds since the epoch, fixed so every response is pre-encoded
_STREAM_FLAG = re.compile(rb'"stream"\s*:\s*true')
_MAX_BODY_SIZE = 16 * 1024 * 1024  # bytes
_TOKEN_PATH = gemini.TOKEN_PATH.encode()
_STATS_PATH = b"/bench/stats"
_ALT_SSE = re.compile(rb"(?:^|&)alt=sse(?:&|$)")


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _chunk(choices: list, usage: dict | None = None) -> dict:
    chunk = {
        "id": COMPLETION_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": choices,
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def _choice(delta: dict, finish_reason: str | None = None) -> dict:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _usage(answer: Answer) -> dict:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.total_tokens,
    }


def stream_events(answer: Answer) -> list[bytes]:
    """The SSE events of the streamed answer, each ``data: ...\\n\\n``, as OpenAI sends them."""
    chunks = [_chunk([_choice({"role": "assistant", "content": ""})])]
    chunks += [_chunk([_choice({"content": text})]) for text in answer.chunks]
    chunks.append(_chunk([_choice({}, answer.finish_reason)]))
    chunks.append(_chunk([], _usage(answer)))
    return [b"data: " + _json(chunk) + b"\n\n" for chunk in chunks] + [b"data: [DONE]\n\n"]


def completion_body(answer: Answer) -> bytes:
    """The non-streaming ``chat.completion`` JSON of the answer."""
    return _json(
        {
            "id": COMPLETION_ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": answer.finish_reason,
                }
            ],
            "usage": _usage(answer),
        }
    )


def _response(status: bytes, content_type: bytes, body: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s" % (status, content_type, len(body), body)


def _error(status: bytes, message: str) -> bytes:
    return _response(
        status,
        b"application/json",
        _json({"error": {"message": message, "type": "invalid_request_error", "code": None}}),
    )


@dataclass(frozen=True, slots=True)
class EncodedResponses:
    """Every response the fake sends, encoded once (bytes on the wire)."""

    stream_writes: tuple[bytes, ...]  # the head, then one chunked-coded frame per SSE event, then the last chunk
    completion: bytes
    gemini_stream_writes: tuple[bytes, ...]  # as stream_writes, Gemini's alt=sse events
    gemini_response: bytes
    google_unauthenticated: bytes
    gemini_needs_sse: bytes
    not_found: bytes
    not_found_head: bytes  # for HEAD: the same head, no body
    bad_request: bytes

    @classmethod
    def of(cls, answer: Answer) -> EncodedResponses:
        not_found = _error(
            b"404 Not Found",
            "Unknown request URL: POST /v1/chat/completions, Gemini's :generateContent and "
            ":streamGenerateContent?alt=sse are served",
        )
        return cls(
            stream_writes=_sse_writes(stream_events(answer)),
            completion=_response(b"200 OK", b"application/json", completion_body(answer)),
            gemini_stream_writes=_sse_writes(gemini.stream_events(answer)),
            gemini_response=_response(b"200 OK", b"application/json; charset=UTF-8", gemini.response_body(answer)),
            google_unauthenticated=_google_error(
                401,
                "UNAUTHENTICATED",
                "Request is missing the bench's API key (x-goog-api-key) or an access token it issued.",
            ),
            gemini_needs_sse=_google_error(400, "INVALID_ARGUMENT", "the bench's fake streams only with ?alt=sse"),
            not_found=not_found,
            not_found_head=not_found[: not_found.index(HEAD_END) + 4],
            bad_request=_error(b"400 Bad Request", "malformed HTTP request"),
        )


def _sse_writes(events: list[bytes]) -> tuple[bytes, ...]:
    """The head, one chunked-coded frame per event, the last one followed by the last chunk."""
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    frames = [encode_chunk(event) for event in events]
    return (head, *frames[:-1], frames[-1] + LAST_CHUNK)


def _google_error(code: int, status: str, message: str) -> bytes:
    reason = {400: b"Bad Request", 401: b"Unauthorized"}[code]
    return _response(
        b"%d %s" % (code, reason), b"application/json; charset=UTF-8", gemini.error_body(code, status, message)
    )


@dataclass(slots=True)
class UpstreamStats:
    """What the fake answered since it started (counts of requests)."""

    streams: int = 0
    completions: int = 0
    gemini_streams: int = 0
    gemini_responses: int = 0
    unauthenticated: int = 0  # Gemini requests refused for their credential
    token_requests: int = 0  # grants the token endpoint answered with a token
    token_refusals: int = 0
    not_found: int = 0
    bad_requests: int = 0


@dataclass(slots=True)
class GoogleCredentials:
    """What Google's paths accept: the Gemini API key, and the access tokens the token
    endpoint issued (each kept as the whole ``authorization`` value, for one dict lookup)."""

    api_key: bytes = gemini.API_KEY.encode()
    bearer_values: set[bytes] = field(default_factory=set)

    def issue(self) -> str:
        token = f"ya29.bench-{len(self.bearer_values) + 1}"
        self.bearer_values.add(b"Bearer " + token.encode())
        return token


class FakeUpstreamProtocol(asyncio.Protocol):
    """One client connection: parse requests as they arrive, answer each from ``responses``."""

    def __init__(
        self, responses: EncodedResponses, stats: UpstreamStats, coalesce: bool, google: GoogleCredentials | None = None
    ) -> None:
        self.responses = responses
        self.stats = stats
        self.coalesce = coalesce
        self.google = google or GoogleCredentials()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.head: tuple[list[bytes], dict[bytes, bytes]] | None = None
        self.length: int | None = 0
        self.chunked: ChunkedDecoder | None = None
        self.chunked_body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer = self.buffer + data if self.buffer else data
        try:
            self._answer_complete_requests()
        except ProtocolError:
            self.stats.bad_requests += 1
            self.transport.write(self.responses.bad_request)
            self.transport.close()

    def _answer_complete_requests(self) -> None:
        while self.transport is not None and not self.transport.is_closing():
            if self.head is None:
                end = self.buffer.find(HEAD_END)
                if end < 0:
                    if len(self.buffer) > MAX_HEAD_SIZE:
                        raise ProtocolError("request head too large")
                    return
                self.head = parse_head(self.buffer[:end])
                self.buffer = self.buffer[end + 4 :]
                self.length = body_framing(self.head[1])
                if self.length is None:
                    self.chunked, self.chunked_body = ChunkedDecoder(), []
                elif self.length < 0:
                    self.length = 0
                elif self.length > _MAX_BODY_SIZE:
                    raise ProtocolError("request body too large")
            if self.chunked is not None:
                self.chunked_body += self.chunked.feed(self.buffer)
                if not self.chunked.done:
                    self.buffer = b""
                    return
                body, self.buffer, self.chunked = b"".join(self.chunked_body), self.chunked.rest, None
            else:
                if len(self.buffer) < self.length:
                    return
                body, self.buffer = self.buffer[: self.length], self.buffer[self.length :]
            (start, fields), self.head = self.head, None
            self._answer(start, fields, body)

    def _answer(self, start: list[bytes], fields: dict[bytes, bytes], body: bytes) -> None:
        method, target = start[0], start[1]
        path, _, query = target.partition(b"?")
        transport = self.transport
        if method == b"POST" and path.endswith(b"/chat/completions"):
            if _STREAM_FLAG.search(body):
                self.stats.streams += 1
                self._write_stream(self.responses.stream_writes)
            else:
                self.stats.completions += 1
                transport.write(self.responses.completion)
        elif method == b"POST" and (google := gemini.gemini_method(path)) is not None:
            self._answer_gemini(google, query, fields)
        elif method == b"POST" and path == _TOKEN_PATH:
            self._answer_token(body)
        elif method == b"GET" and path == _STATS_PATH:
            transport.write(_response(b"200 OK", b"application/json", _json(asdict(self.stats))))
        else:
            self.stats.not_found += 1
            transport.write(self.responses.not_found_head if method == b"HEAD" else self.responses.not_found)
        if fields.get(b"connection", b"").lower() == b"close":
            transport.close()

    def _write_stream(self, writes: tuple[bytes, ...]) -> None:
        if self.coalesce:
            self.transport.write(b"".join(writes))
        else:
            for frame in writes:
                self.transport.write(frame)

    def _answer_gemini(self, method: tuple[bool, bool], query: bytes, fields: dict[bytes, bytes]) -> None:
        streams, gemini_api = method
        if gemini_api:
            authenticated = fields.get(b"x-goog-api-key") == self.google.api_key
        else:
            authenticated = fields.get(b"authorization") in self.google.bearer_values
        if not authenticated:
            self.stats.unauthenticated += 1
            self.transport.write(self.responses.google_unauthenticated)
        elif not streams:
            self.stats.gemini_responses += 1
            self.transport.write(self.responses.gemini_response)
        elif _ALT_SSE.search(query) is None:
            self.stats.bad_requests += 1
            self.transport.write(self.responses.gemini_needs_sse)
        else:
            self.stats.gemini_streams += 1
            self._write_stream(self.responses.gemini_stream_writes)

    def _answer_token(self, body: bytes) -> None:
        problem = gemini.token_grant_problem(body)
        if problem is not None:
            self.stats.token_refusals += 1
            refusal = _json({"error": "invalid_grant", "error_description": problem})
            self.transport.write(_response(b"400 Bad Request", b"application/json", refusal))
            return
        self.stats.token_requests += 1
        self.transport.write(_response(b"200 OK", b"application/json", gemini.token_body(self.google.issue())))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def start_fake_upstream(
    host: str = LOOPBACK_HOST, port: int = 0, *, chunks: int = DEFAULT_CHUNKS, coalesce: bool = False
) -> tuple[asyncio.Server, UpstreamStats]:
    """Listen on ``host:port`` (0 picks a free port); returns the server and its live stats."""
    responses = EncodedResponses.of(Answer.of(chunks))
    stats = UpstreamStats()
    google = GoogleCredentials()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: FakeUpstreamProtocol(responses, stats, coalesce, google), require_loopback(host), port, backlog=4096
    )
    return server, stats


async def _serve(args: argparse.Namespace) -> None:
    server, _ = await start_fake_upstream(args.host, args.port, chunks=args.chunks, coalesce=args.coalesce)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on http://{args.host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_upstream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=LOOPBACK_HOST, help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: a free one, printed at start)")
    parser.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS, help="text chunks per streamed answer")
    parser.add_argument(
        "--coalesce", action="store_true", help="write a whole stream at once instead of one write per chunk"
    )
    parser.add_argument("--loop", default="auto", choices=("auto", "uvloop", "asyncio"), help="event loop")
    args = parser.parse_args(argv)
    try:
        run(_serve(args), args.loop)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
