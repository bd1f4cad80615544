"""What a trace says about the Anthropic answer the client got: its message id and
stop_reason (gen_ai.response.id, gen_ai.response.finish_reasons), read at the end from the
few bytes the tracing layer kept (the first and the last two body messages), never by
decoding the whole answer.

Anthropic Messages API reference ("Messages", "Streaming Messages"): a JSON answer is one
Message object ``{"id": ..., "stop_reason": ...}``; a stream starts with ``event:
message_start`` whose ``message`` has the id and ends with ``message_delta`` (``delta`` with
the stop_reason) and ``message_stop``. aimw's layers send a JSON answer as one body message
and a stream as whole events, so the first body message holds message_start and the last two
hold message_delta.
"""

from __future__ import annotations

import re

import msgspec

_MAX_ID_CHARS = 200  # characters: a provider's id longer than this is not kept
_MAX_STOP_REASON_CHARS = 40


class _MessageView(msgspec.Struct):
    id: str | None = None
    stop_reason: str | None = None


_message_decoder = msgspec.json.Decoder(_MessageView)
_STREAM_ID = re.compile(rb'"type"\s*:\s*"message_start"\s*,\s*"message"\s*:\s*\{\s*"id"\s*:\s*"([^"\\]{1,200})"')
_STOP_REASON = re.compile(rb'"stop_reason"\s*:\s*"([a-z_]{1,40})"')


def answer_facts(head: bytes | None, tail: bytes, *, streamed: bool, whole: bool) -> tuple[str | None, str | None]:
    """(message id, stop_reason) of an answer whose first body message was ``head`` and whose
    last two (joined) are ``tail``; ``whole``: ``head`` was the only body message. None for
    what cannot be read (an error answer, a stream cut before its message_delta)."""
    if head is None:
        return None, None
    if not streamed:
        if not whole:
            return None, None
        try:
            message = _message_decoder.decode(head)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None, None
        return _bounded(message.id, _MAX_ID_CHARS), _bounded(message.stop_reason, _MAX_STOP_REASON_CHARS)
    found = _STREAM_ID.search(head)
    stops = _STOP_REASON.findall(tail)
    return (found.group(1).decode() if found else None), (stops[-1].decode() if stops else None)


def _bounded(value: str | None, limit: int) -> str | None:
    return value if value is not None and len(value) <= limit else None
