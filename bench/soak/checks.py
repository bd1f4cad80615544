"""What each exchange must have got, by its plan's kind (:mod:`bench.soak.plan`).

Every answered exchange is either a valid Anthropic stream (``bench.validate``'s DESIGN §6
invariants: message_start first, blocks opened and closed in order, message_delta, message_stop)
or one ended by a well-formed ``event: error``, or an Anthropic-shaped error answer
``{"type": "error", "error": {"type", "message"}}`` with the status its fault maps to. A
normal (or held) stream must also hold every token once, in order, with the words the fake
sent, and the fake's usage. A departure must have left before its answer ended.
"""

from __future__ import annotations

import json
import re

from bench.soak.chat import WORDS
from bench.soak.plan import HOLD_MAX_TOKENS, HTTP_FAULTS, STREAM_FAULTS, Plan
from bench.validate import AnthropicStream, read_anthropic_stream

_TOKEN = re.compile(r"([^~]*)~(\d+)~(\d+)~ ")  # <word>~<index>~<ns>~ (no word holds a ~)
_EXPECTED_WORDS = tuple(WORDS[index % len(WORDS)] for index in range(HOLD_MAX_TOKENS + 1))
_INDICES = tuple(str(index) for index in range(HOLD_MAX_TOKENS + 1))
# The shape of a whole aimw text stream, its text deltas apart (those are matched exactly, one
# JSON string each): what most soak streams are, checked at regex speed. Anything else goes
# through the full validator event by event.
_DELTA = (
    rb'event: content_block_delta\ndata: \{"type":"content_block_delta","index":0,'
    rb'"delta":\{"type":"text_delta","text":("[^"\\\n]*(?:\\.[^"\\\n]*)*")\}\}\n\n'
)
_TEXT_STREAM = re.compile(
    rb"(event: message_start\ndata: [^\n]*\n\n"
    rb'event: content_block_start\ndata: \{"type":"content_block_start","index":0,'
    rb'"content_block":\{"type":"text","text":""\}\}\n\n)'
    rb"((?:" + _DELTA.replace(b"(", b"(?:", 1) + rb")*)"
    rb"(event: content_block_stop\ndata: [^\n]*\n\nevent: message_delta\ndata: [^\n]*\n\n"
    rb"event: message_stop\ndata: [^\n]*\n\n)\Z"
)
_DELTA_TEXT = re.compile(_DELTA)
_TIMEOUT = "ReadTimeout"  # in the error event of a stream whose provider went silent past the timeout
DEPARTED_ENDS = {
    "depart_upload": ("left_upload",),
    "depart_head": ("left_before_head", "left_after_head"),
    "depart_stream": ("left_mid_stream",),
}


def expected_status(plan: Plan) -> int:
    """The status the client must get for ``plan`` (departures: what they would have got)."""
    if plan.kind in HTTP_FAULTS:
        return HTTP_FAULTS[plan.kind][1]
    return 504 if plan.kind == "stall_head" else 200


def answer_problems(plan: Plan, end: str, status: int, body: bytes) -> tuple[list[str], bool]:
    """What is wrong with what the client got (empty: as it must be), and whether the
    gateway gave up on the provider with its own timeout instead of answering as the plan
    says (an Anthropic ``504 timeout_error``, or a stream ended by an error event for a read
    timeout): what a saturated gateway does with a short AIMW_UPSTREAM_TIMEOUT, counted apart."""
    if plan.departs:
        left = end in DEPARTED_ENDS[plan.kind]
        return ([] if left else [f"the client was to leave, but the exchange ended {end!r}"]), False
    if end != "complete":
        return [f"ended {end!r} (status {status}): {body[-200:]!r}"], False
    if status == 504 and plan.kind != "stall_head":
        return _error_answer_problems(body, "timeout_error"), True
    expected = expected_status(plan)
    if status != expected:
        return [f"status {status}, expected {expected}: {body[:200]!r}"], False
    if status != 200:
        return _error_answer_problems(
            body, HTTP_FAULTS[plan.kind][2] if plan.kind in HTTP_FAULTS else "timeout_error"
        ), False
    stream, text = read_stream(body)
    if stream.problems:
        return list(stream.problems), False
    tokens, problems = _tokens(text)
    if stream.error is not None and plan.kind in ("normal", "hold") and _TIMEOUT in stream.error["message"]:
        return problems, True
    if plan.kind in ("normal", "hold"):
        if stream.error is not None:
            problems.append(f"error event {stream.error}")
        if stream.stop_reason != "end_turn":
            problems.append(f"stop_reason {stream.stop_reason!r}")
        # a held stream ends when released: its usage is what it sent
        expected_usage = (plan.prompt_tokens, plan.tokens if plan.kind == "normal" else tokens)
        usage = (stream.usage.get("input_tokens"), stream.usage.get("output_tokens"))
        if usage != expected_usage:
            problems.append(f"usage {usage}, expected {expected_usage}")
        if tokens != plan.tokens and (plan.kind == "normal" or not 0 < tokens < plan.tokens):
            problems.append(f"{tokens} tokens, expected {plan.tokens}")
    elif plan.kind in STREAM_FAULTS:
        if stream.error is None:
            problems.append(f"a {plan.kind} stream did not end with an error event")
        # a reset may lose what the gateway had not read yet; a stall or a cut JSON loses nothing
        if tokens > plan.at or (plan.kind != "reset" and tokens != plan.at):
            problems.append(f"{tokens} tokens before the {plan.kind}, which came after {plan.at}")
    return problems, False


def read_stream(body: bytes) -> tuple[AnthropicStream, str]:
    """The stream as :func:`bench.validate.read_anthropic_stream` reads it, and its text. A
    plain text stream (one text block, nothing but its deltas between) is read fast: its
    skeleton by the full validator, its deltas by one regex and one JSON decode."""
    shape = _TEXT_STREAM.match(body)
    if shape is None:
        stream = read_anthropic_stream(body)
        return stream, stream.text
    stream = read_anthropic_stream(shape.group(1) + shape.group(3))
    pieces = _DELTA_TEXT.findall(shape.group(2))
    return stream, "".join(json.loads(b"[" + b",".join(pieces) + b"]"))


def _error_answer_problems(body: bytes, error_type: str) -> list[str]:
    try:
        answer = json.loads(body)
    except ValueError:
        return [f"error answer is not JSON: {body[:200]!r}"]
    error = answer.get("error") if isinstance(answer, dict) else None
    if (
        not isinstance(error, dict)
        or answer.get("type") != "error"
        or not isinstance(error.get("message"), str)
        or not error["message"]
    ):
        return [f"error answer not in Anthropic's shape: {body[:200]!r}"]
    if error.get("type") != error_type:
        return [f"error type {error.get('type')!r}, expected {error_type!r}"]
    return []


def _tokens(text: str) -> tuple[int, list[str]]:
    """How many of the fake's tokens ``text`` holds; problems if any is missing, repeated,
    out of order or changed (its word), or if anything else is there. (Compared a whole
    column at a time: a held stream has thousands of tokens, all checked at its end.)"""
    found = _TOKEN.findall(text)
    if not found:
        return 0, [] if not text else [f"text without tokens: {text[:60]!r}"]
    words, indices, stamps = zip(*found, strict=True)
    count = len(found)
    if words != _EXPECTED_WORDS[:count] or indices != _INDICES[:count]:
        first = next(i for i in range(count) if (words[i], indices[i]) != (_EXPECTED_WORDS[i], _INDICES[i]))
        return first, [f"token {first}: got {words[first][:40]!r}~{indices[first]}~"]
    size = sum(map(len, words)) + sum(map(len, indices)) + sum(map(len, stamps)) + 4 * count
    if size != len(text):
        return count, [f"text besides the {count} tokens: {text[:60]!r}..."]
    return count, []
