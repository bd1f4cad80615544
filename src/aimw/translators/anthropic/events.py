"""Anthropic stream events, each encoded as one complete SSE event
(``event: NAME\\ndata: JSON\\n\\n``) in the shapes of Anthropic's "Streaming Messages"
reference, from pre-encoded fragments."""

from __future__ import annotations

import msgspec

from aimw.errors import redact
from aimw.exchange import Usage

_encode = msgspec.json.encode


def usage_json(usage: Usage) -> bytes:
    """Anthropic's usage object (tokens): input, output, cache creation, cache read."""
    return b'{"input_tokens":%d,"output_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d}' % (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    )


def message_start(message_id: str, model: str, usage: Usage) -> bytes:
    return (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":'
        + _encode(message_id)
        + b',"type":"message","role":"assistant","model":'
        + _encode(model)
        + b',"content":[],"stop_reason":null,"stop_sequence":null,"usage":'
        + usage_json(usage)
        + b"}}\n\n"
    )


def text_block_start(index: int) -> bytes:
    return (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,'
        b'"content_block":{"type":"text","text":""}}\n\n' % index
    )


def thinking_block_start(index: int) -> bytes:
    return (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,'
        b'"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n' % index
    )


def tool_use_block_start(index: int, tool_use_id: str, name: str) -> bytes:
    return (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,'
        b'"content_block":{"type":"tool_use","id":'
        % index
        + _encode(tool_use_id)
        + b',"name":'
        + _encode(name)
        + b',"input":{}}}\n\n'
    )


_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":'
TEXT_DELTA = b'{"type":"text_delta","text":'
THINKING_DELTA = b'{"type":"thinking_delta","thinking":'
SIGNATURE_DELTA = b'{"type":"signature_delta","signature":'
INPUT_JSON_DELTA = b'{"type":"input_json_delta","partial_json":'
DELTA_END = b"}}\n\n"


def delta_head(index: int, delta_type: bytes) -> bytes:
    """A content_block_delta up to its value (``delta_type``: TEXT_DELTA, THINKING_DELTA,
    SIGNATURE_DELTA or INPUT_JSON_DELTA); the event is ``head + JSON string + DELTA_END``.
    A block's deltas share theirs: the stream writer makes it once per block."""
    return _DELTA_HEAD % index + delta_type


def _block_delta(index: int, delta_type: bytes, value: str) -> bytes:
    return delta_head(index, delta_type) + _encode(value) + DELTA_END


def text_delta(index: int, text: str) -> bytes:
    return _block_delta(index, TEXT_DELTA, text)


def thinking_delta(index: int, thinking: str) -> bytes:
    return _block_delta(index, THINKING_DELTA, thinking)


def signature_delta(index: int, signature: str) -> bytes:
    return _block_delta(index, SIGNATURE_DELTA, signature)


def input_json_delta(index: int, partial_json: str) -> bytes:
    return _block_delta(index, INPUT_JSON_DELTA, partial_json)


def content_block_stop(index: int) -> bytes:
    return b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n' % index


def message_delta(stop_reason: str, usage: Usage) -> bytes:
    """``usage`` is cumulative for the whole message (Anthropic semantics)."""
    return (
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":'
        + _encode(stop_reason)
        + b',"stop_sequence":null},"usage":'
        + usage_json(usage)
        + b"}\n\n"
    )


MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def error_event(error_type: str, message: str) -> bytes:
    """An ``event: error`` (credentials in ``message`` are redacted)."""
    return (
        b'event: error\ndata: {"type":"error","error":{"type":'
        + _encode(error_type)
        + b',"message":'
        + _encode(redact(message))
        + b"}}\n\n"
    )
