"""A fast fake OpenAI-compatible upstream: a raw asyncio HTTP/1.1 server on loopback.

``POST .../chat/completions`` answers :class:`bench.answer.Answer`: with ``"stream": true``
in the body, a ``text/event-stream`` of one role chunk, one chunk per text piece, a
finish chunk, a usage chunk and ``data: [DONE]`` (chunked transfer coding, one write
per chunk unless ``coalesce``); otherwise one ``chat.completion`` JSON. Anything else
gets an OpenAI-shaped 404. Keep-alive, chunked request bodies (what httpx sends for a
streamed body) and pipelining are handled; every response is encoded once at start.

    python -m bench.fake_upstream --port 0 --chunks 200     # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from dataclasses import dataclass

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
    return _response(status, b"application/json", _json({"error": {"message": message, "type": "invalid_request_error", "code": None}}))


@dataclass(frozen=True, slots=True)
class EncodedResponses:
    """Every response the fake sends, encoded once (bytes on the wire)."""

    stream_writes: tuple[bytes, ...]  # the head, then one chunked-coded frame per SSE event, then the last chunk
    completion: bytes
    not_found: bytes
    not_found_head: bytes  # for HEAD: the same head, no body
    bad_request: bytes

    @classmethod
    def of(cls, answer: Answer) -> EncodedResponses:
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        frames = tuple(encode_chunk(event) for event in stream_events(answer))
        not_found = _error(b"404 Not Found", "Unknown request URL: only POST /v1/chat/completions is served")
        return cls(
            stream_writes=(head, *frames[:-1], frames[-1] + LAST_CHUNK),
            completion=_response(b"200 OK", b"application/json", completion_body(answer)),
            not_found=not_found,
            not_found_head=not_found[: not_found.index(HEAD_END) + 4],
            bad_request=_error(b"400 Bad Request", "malformed HTTP request"),
        )


@dataclass(slots=True)
class UpstreamStats:
    """What the fake answered since it started (counts of requests)."""

    streams: int = 0
    completions: int = 0
    not_found: int = 0
    bad_requests: int = 0


class FakeUpstreamProtocol(asyncio.Protocol):
    """One client connection: parse requests as they arrive, answer each from ``responses``."""

    def __init__(self, responses: EncodedResponses, stats: UpstreamStats, coalesce: bool) -> None:
        self.responses = responses
        self.stats = stats
        self.coalesce = coalesce
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
        path = target.split(b"?", 1)[0]
        transport = self.transport
        if method != b"POST" or not path.endswith(b"/chat/completions"):
            self.stats.not_found += 1
            transport.write(self.responses.not_found_head if method == b"HEAD" else self.responses.not_found)
        elif _STREAM_FLAG.search(body):
            self.stats.streams += 1
            if self.coalesce:
                transport.write(b"".join(self.responses.stream_writes))
            else:
                for frame in self.responses.stream_writes:
                    transport.write(frame)
        else:
            self.stats.completions += 1
            transport.write(self.responses.completion)
        if fields.get(b"connection", b"").lower() == b"close":
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def start_fake_upstream(
    host: str = LOOPBACK_HOST, port: int = 0, *, chunks: int = DEFAULT_CHUNKS, coalesce: bool = False
) -> tuple[asyncio.Server, UpstreamStats]:
    """Listen on ``host:port`` (0 picks a free port); returns the server and its live stats."""
    responses = EncodedResponses.of(Answer.of(chunks))
    stats = UpstreamStats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: FakeUpstreamProtocol(responses, stats, coalesce), require_loopback(host), port, backlog=4096
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
    parser.add_argument("--coalesce", action="store_true", help="write a whole stream at once instead of one write per chunk")
    parser.add_argument("--loop", default="auto", choices=("auto", "uvloop", "asyncio"), help="event loop")
    args = parser.parse_args(argv)
    try:
        run(_serve(args), args.loop)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
