"""The checks every Anthropic stream a translator writes goes through: the shared validator
(:func:`tests.asgi_helpers.anthropic_stream`, DESIGN §6), no empty input_json_delta, and a
finished stream replayed through the Anthropic Python SDK's own stream accumulator (what
``anthropic.Anthropic().messages.stream()`` runs), which must assemble the same message."""

from __future__ import annotations

import pydantic

from bench.validate import AnthropicStream
from tests.asgi_helpers import anthropic_stream

try:
    from anthropic.lib.streaming._messages import accumulate_event
    from anthropic.types import RawMessageStreamEvent

    _SDK_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
except ImportError:  # pragma: no cover - an SDK without it still gets the shared validator
    accumulate_event = None


def validate(raw: bytes) -> AnthropicStream:
    """The shared validator on an emitted stream, no empty input_json_delta, and a finished
    stream replayed through the SDK's accumulator."""
    stream = anthropic_stream(raw)
    assert all(all(parts) for parts in stream.json_fragments.values()), "no empty input_json_delta"
    if stream.error is None:
        sdk_check(stream)
    return stream


def delta_usage(stream: AnthropicStream) -> dict:
    """The usage the stream's message_delta carried (``stream.usage`` is the cumulative one)."""
    [usage] = [data["usage"] for name, data in stream.events if name == "message_delta"]
    return usage


def sdk_check(stream: AnthropicStream) -> None:
    """Replay the events through the Anthropic SDK's accumulator; it must agree with us."""
    if accumulate_event is None:  # pragma: no cover
        return
    snapshot = None
    buffers: dict[int, bytes] = {}
    for _, data in stream.events:
        event = _SDK_EVENT.validate_python(data)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
    assert snapshot is not None
    assert snapshot.id == stream.message["id"]
    assert snapshot.stop_reason == stream.stop_reason
    compared = {"type", "text", "thinking", "id", "name", "input"}
    theirs = [block.model_dump(include=compared) for block in snapshot.content]
    ours = [{key: value for key, value in block.items() if key in compared} for block in stream.blocks]
    for mine, sdk in zip(ours, theirs, strict=False):  # unequal lengths fail the comparison below
        if mine.get("input", {}) is None:  # unfinished arguments: the SDK keeps a partial parse
            del mine["input"], sdk["input"]
    assert theirs == ours
    assert snapshot.usage.output_tokens == delta_usage(stream)["output_tokens"]
