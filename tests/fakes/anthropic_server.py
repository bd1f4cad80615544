"""A fake Anthropic API (api.anthropic.com) on a real loopback HTTP server.

It checks what the real API checks: ``POST /v1/messages`` and ``POST
/v1/messages/count_tokens`` (with no query or the ``?beta=true`` the beta clients add),
the key in ``x-api-key`` (or ``Authorization: Bearer``; 401 with the captured body
otherwise), an ``anthropic-version`` header, a JSON body with ``model`` and ``messages``
(and ``max_tokens`` for messages). ``HEAD /`` and ``HEAD /api/hello`` (Claude Code's
pre-flights) are answered 200. Every request is recorded with its raw body, so tests can
check that a pass-through gateway forwarded the client's bytes unchanged.

Answers come from a scripted queue of :class:`Reply` (the same type as the fake Chat
Completions server's): the captured stream (anthropic/stream-captures/messages-stream-text.sse)
served in several flushed chunks cut at arbitrary byte offsets, the captured JSON answer
(anthropic/llm-v1-chat/responses/good.aigw-393.json), captured errors (unauthorized.json,
bad_request.json), hand-built streams (tool_use, cache usage) in Anthropic's wire format
(Anthropic API reference, "Streaming Messages"), count_tokens answers, and streams cut
mid-way.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Sequence

from tests.fakes.openai_chat_server import fragments
from tests.fakes.scripted_server import RecordedRequest, Reply, ScriptedServer, error_reply, json_reply
from tests.shared_data import KONG

ANTHROPIC_RESPONSES = KONG / "anthropic" / "llm-v1-chat" / "responses"
STREAM_CAPTURE = KONG / "anthropic" / "stream-captures" / "messages-stream-text.sse"
MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
ALLOWED_QUERIES = ("", "beta=true")
PREFLIGHT_PATHS = ("/", "/api/hello")
MODEL = "claude-sonnet-4-5-20250929"
STREAM_HEADERS = (("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache"))

# ---------------------------------------------------------------- replies


def request_id() -> str:
    return "req_" + uuid.uuid4().hex


def anthropic_error(status: int, error_type: str, message: str, headers: Iterable[tuple[str, str]] = ()) -> Reply:
    """An error in Anthropic's shape (Anthropic API reference, "Errors")."""
    body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id()}
    return error_reply(status, body, headers=(("request-id", body["request_id"]), *headers))


def unauthorized() -> Reply:
    """The captured 401."""
    return error_reply(401, (ANTHROPIC_RESPONSES / "unauthorized.json").read_bytes())


def bad_request() -> Reply:
    """The captured 400."""
    return error_reply(400, (ANTHROPIC_RESPONSES / "bad_request.json").read_bytes())


def good_message_bytes() -> bytes:
    """The captured Message JSON, as bytes."""
    return (ANTHROPIC_RESPONSES / "good.aigw-393.json").read_bytes()


def good_message() -> Reply:
    return json_reply(good_message_bytes(), headers=(("request-id", request_id()),))


def message_reply(text: str, *, input_tokens: int = 20, output_tokens: int = 5, model: str = MODEL) -> Reply:
    """A Message answering ``text``."""
    message = {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }
    return json_reply(message, headers=(("request-id", request_id()),))


def count_tokens_reply(input_tokens: int) -> Reply:
    return json_reply({"input_tokens": input_tokens})


def capture_bytes() -> bytes:
    """The captured text stream (claude-2.1 answering "1 + 1 = 2"; 15 input, 9 output tokens)."""
    return STREAM_CAPTURE.read_bytes()


def split_bytes(data: bytes, pieces: int) -> list[bytes]:
    """``data`` cut into ``pieces`` parts at evenly spaced byte offsets (inside events, as TCP does)."""
    step = len(data) / pieces
    bounds = [round(step * i) for i in range(pieces + 1)]
    return [data[bounds[i] : bounds[i + 1]] for i in range(pieces) if bounds[i] < bounds[i + 1]]


def stream_reply(
    data: bytes | Sequence[bytes | threading.Event],
    *,
    pieces: int | None = None,
    cut: bool = False,
    headers: Iterable[tuple[str, str]] = (),
) -> Reply:
    """An event stream: ``data`` (bytes, cut into ``pieces`` arbitrary parts, default one per
    event) or a sequence of parts each sent as one flushed HTTP chunk (``threading.Event``
    items hold the stream until set). ``cut`` closes the connection after the last part."""
    if isinstance(data, bytes):
        parts: tuple = tuple(split_bytes(data, pieces)) if pieces else tuple(split_events(data))
    else:
        parts = tuple(data)
    return Reply(200, (*STREAM_HEADERS, ("request-id", request_id()), *headers), b"", parts, cut)


def capture_stream(pieces: int = 7) -> Reply:
    """The captured stream, in ``pieces`` flushed chunks cut at arbitrary byte offsets."""
    return stream_reply(capture_bytes(), pieces=pieces)


def split_events(data: bytes) -> list[bytes]:
    """``data`` cut after each event (the blank line)."""
    events = data.split(b"\n\n")
    out = [event + b"\n\n" for event in events[:-1]]
    return out + ([events[-1]] if events[-1] else [])


# -- hand-built streams


def event(name: str, payload: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def message_start(usage: dict, *, model: str = MODEL, message_id: str | None = None) -> bytes:
    message = {
        "id": message_id or "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return event("message_start", {"type": "message_start", "message": message})


def text_block(index: int, pieces: Sequence[str]) -> list[bytes]:
    out = [
        event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        )
    ]
    out += [
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}},
        )
        for piece in pieces
    ]
    out.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
    return out


def tool_use_block(index: int, tool_id: str, name: str, tool_input: dict, pieces: int = 4) -> list[bytes]:
    """A tool_use block: content_block_start with input {}, the input JSON in ``pieces``
    input_json_delta fragments, content_block_stop."""
    start = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
    out = [event("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})]
    out += [
        event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            },
        )
        for piece in fragments(json.dumps(tool_input), pieces)
    ]
    out.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
    return out


def message_delta(stop_reason: str, usage: dict) -> bytes:
    return event(
        "message_delta",
        {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": usage},
    )


MESSAGE_STOP = event("message_stop", {"type": "message_stop"})
PING = event("ping", {"type": "ping"})


def text_events(
    pieces: Sequence[str] = ("Hello", " from", " Claude."),
    *,
    start_usage: dict | None = None,
    output_tokens: int = 5,
    model: str = MODEL,
) -> list[bytes]:
    """A whole text answer, one event per item."""
    usage = start_usage or {"input_tokens": 20, "output_tokens": 1}
    return [
        message_start(usage, model=model),
        PING,
        *text_block(0, pieces),
        message_delta("end_turn", {"output_tokens": output_tokens}),
        MESSAGE_STOP,
    ]


def tool_use_events(
    tool_id: str,
    name: str,
    tool_input: dict,
    *,
    text: Sequence[str] = (),
    pieces: int = 4,
    start_usage: dict | None = None,
    output_tokens: int = 30,
    model: str = MODEL,
) -> list[bytes]:
    """Optional text, then one tool_use block; stop_reason tool_use."""
    usage = start_usage or {"input_tokens": 120, "output_tokens": 1}
    out = [message_start(usage, model=model), PING]
    index = 0
    if text:
        out += text_block(0, text)
        index = 1
    out += tool_use_block(index, tool_id, name, tool_input, pieces)
    out += [message_delta("tool_use", {"output_tokens": output_tokens}), MESSAGE_STOP]
    return out


def cached_usage_events(
    *,
    input_tokens: int = 12,
    cache_read: int = 3000,
    cache_creation: int = 500,
    output_tokens: int = 87,
    pieces: Sequence[str] = ("Cached ", "context ", "answer."),
) -> list[bytes]:
    """A text answer whose message_start usage has both cache counts and whose message_delta
    carries the final cumulative output_tokens (not an increment)."""
    start = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "output_tokens": 1,
        "service_tier": "standard",
    }
    return [
        message_start(start),
        *text_block(0, pieces),
        message_delta("end_turn", {"output_tokens": output_tokens}),
        MESSAGE_STOP,
    ]


# ---------------------------------------------------------------- the server


def _body_problems(path: str, body) -> list[str]:
    """What the Messages API rejects with 400 invalid_request_error (the fields checked here)."""
    if not isinstance(body, dict):
        return ["the body must be a JSON object"]
    problems = []
    if not isinstance(body.get("model"), str) or not body["model"]:
        problems.append("model: Field required")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        problems.append("messages: Field required (a non-empty list)")
    if path == MESSAGES_PATH:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            problems.append("max_tokens: Field required (a positive integer)")
        if "stream" in body and not isinstance(body["stream"], bool):
            problems.append("stream: Input should be a valid boolean")
    return problems


class FakeAnthropicServer(ScriptedServer):
    """A fake api.anthropic.com on ``127.0.0.1``; use as a context manager or start()/stop().

    Args:
        key: the API key accepted (``x-api-key: <key>`` or ``Authorization: Bearer <key>``).

    ``expected_key`` may be changed by a test; :meth:`restore` puts back the one given here.
    """

    name = "fake Anthropic API"
    thread_name = "fake-anthropic"
    answers_head = True  # Claude Code's pre-flights

    def __init__(self, key: str) -> None:
        super().__init__()
        self.expected_key = key
        self._initial_key = key

    def restore(self) -> None:
        """:meth:`reset`, and the key given at construction back."""
        self.reset()
        self.expected_key = self._initial_key

    def missing_reply(self, message: str) -> Reply:
        return anthropic_error(500, "api_error", message)

    def check(self, request: RecordedRequest) -> Reply | None:
        """The API's checks, in its order: method and path, query, auth, version, body."""
        if request.method == "HEAD":
            if request.path in PREFLIGHT_PATHS:
                return Reply(200, (("Content-Type", "text/plain"),), b"")
            request.problems.append(f"unexpected HEAD {request.path!r}")
            return Reply(404)
        if request.path not in (MESSAGES_PATH, COUNT_TOKENS_PATH):
            request.problems.append(f"unexpected path {request.path!r}")
            return anthropic_error(404, "not_found_error", "Not Found")
        if request.method != "POST":
            request.problems.append(f"unexpected method {request.method}")
            return anthropic_error(405, "invalid_request_error", f"Method {request.method} not allowed")
        if request.query not in ALLOWED_QUERIES:
            request.problems.append(f"unexpected query string {request.query!r}")
            return anthropic_error(400, "invalid_request_error", f"unexpected query string {request.query!r}")
        api_key, bearer = request.headers.get("x-api-key"), request.headers.get("authorization")
        if api_key is not None and bearer is not None:
            request.problems.append("both x-api-key and authorization were sent")
        if api_key != self.expected_key and bearer != f"Bearer {self.expected_key}":
            request.problems.append("missing or wrong x-api-key / Authorization: Bearer")
            return unauthorized()
        if not request.headers.get("anthropic-version"):
            request.problems.append("no anthropic-version header")
            return anthropic_error(400, "invalid_request_error", "anthropic-version: header is required")
        problems = []
        if not request.headers.get("content-type", "").startswith("application/json"):
            problems.append(f"content-type is {request.headers.get('content-type')!r}, not application/json")
        problems += _body_problems(request.path, request.body)
        if problems:
            request.problems.extend(problems)
            return anthropic_error(400, "invalid_request_error", "; ".join(problems))
        return None
