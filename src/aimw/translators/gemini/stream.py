"""Gemini ``streamGenerateContent?alt=sse`` -> Anthropic stream events (Google's API
reference, "generateContent" (streamGenerateContent) and "GenerateContentResponse";
Anthropic API reference, "Streaming Messages").

Each SSE event's ``data`` is a whole GenerateContentResponse holding the next parts, the
usage so far (cumulative) and, on the last, the finishReason; there is no end marker, the
body just ends.
"""

from __future__ import annotations

import msgspec

from aimw.exchange import Usage
from aimw.translators.anthropic.sse_stream import SSEStreamTranslator
from aimw.translators.anthropic.stream_writer import THINKING, AnthropicStreamWriter
from aimw.translators.gemini.errors import gateway_error
from aimw.translators.gemini.response import (
    UsageMetadata,
    blocked_prompt,
    emit_parts,
    failed_call,
    response_decoder,
    stop_reason_for,
    usage_to_anthropic,
)


class _WriterBlocks:
    """The BlockSink (response.emit_parts) of a stream: blocks written as they come. A
    functionCall's whole args are one input_json_delta; a signature ends its thinking block."""

    __slots__ = ("writer",)

    def __init__(self, writer: AnthropicStreamWriter) -> None:
        self.writer = writer

    def text(self, text: str) -> None:
        self.writer.text(text)

    def thinking(self, thinking: str) -> None:
        self.writer.thinking(thinking)

    def signature(self, signature: str, own_block: bool) -> None:
        writer = self.writer
        if not own_block or writer.open_block(THINKING) < 0:
            writer.close_block()
            writer.thinking("")
        writer.signature(signature)
        writer.close_block()

    def tool_use(self, tool_use_id: str, name: str, input_json: str) -> None:
        writer = self.writer
        writer.tool_use(tool_use_id, name)
        writer.input_json(input_json)
        writer.close_block()


class GeminiStreamTranslator(SSEStreamTranslator):
    """One stream's state (a :class:`~aimw.types.StreamTranslator`): Gemini SSE bytes in,
    Anthropic SSE bytes out, written by an AnthropicStreamWriter.

    Parts become blocks as response.emit_parts says (text and thought deltas continue the
    open block); the usage is replaced by each chunk's; the message ends when the body does,
    with the last finishReason (Gemini may repeat one on every chunk). An error object, a
    blocked prompt (400 invalid_request_error naming the blockReason) or a failed function
    call (api_error, which clients retry) ends it with ``event: error``; so does a body that
    ended before any response came. After that nothing more is emitted and ``error`` says
    what it was.
    """

    __slots__ = ("_blocks", "_finish_reason", "_seen", "_usage_metadata")

    def __init__(self, model: str, message_id: str | None = None) -> None:
        super().__init__(model, message_id)
        self._blocks = _WriterBlocks(self.writer)
        self._finish_reason: str | None = None
        self._seen = False  # a response came
        self._usage_metadata: UsageMetadata | None = None  # the latest, not yet the writer's usage

    @property
    def usage(self) -> Usage:
        self._settle_usage()
        return self.writer.usage

    def _settle_usage(self) -> None:
        """Each chunk's usageMetadata replaces the last (cumulative); only the latest is ever
        read, so it becomes the writer's usage when read (here, and in message_delta)."""
        metadata = self._usage_metadata
        if metadata is not None:
            self._usage_metadata = None
            self.writer.usage = usage_to_anthropic(metadata)

    def end(self) -> None:
        writer = self.writer
        self._settle_usage()
        if self._seen:
            writer.end(stop_reason_for(self._finish_reason, writer.tool_used))
        else:
            writer.fail("api_error", "upstream provider's stream ended before any Gemini response")

    def chunk(self, data: bytes) -> None:
        """Translate one event's ``data``: a GenerateContentResponse, or nothing."""
        writer = self.writer
        if writer.done:
            return
        try:
            response = response_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if data.strip():  # blank data is nothing (checked only here: never on the hot path)
                writer.fail("api_error", f"upstream provider sent an invalid stream chunk: {exc}")
            return
        self._seen = True
        if not writer.started:
            if response.model_version:
                writer.model = response.model_version
            writer.start()
        if response.error is not None:
            error = gateway_error(response.error, 200)
            writer.fail(error.error_type, error.message)
            return
        if response.prompt_feedback is not None:
            blocked = blocked_prompt(response.prompt_feedback)
            if blocked is not None:
                writer.fail(blocked.error_type, blocked.message)
                return
        if response.usage_metadata is not None:
            self._usage_metadata = response.usage_metadata
        candidates = response.candidates
        if not candidates:
            return
        candidate = candidates[0]  # Anthropic has one answer
        content = candidate.content
        parts = content.parts if content is not None else None
        if parts:
            part = parts[0]
            if (  # the common chunk, one plain text part: straight to the writer
                len(parts) == 1
                and part.text
                and part.function_call is None
                and not part.thought
                and not part.thought_signature
            ):
                writer.text(part.text)
            else:
                emit_parts(parts, self._blocks)
        finish_reason = candidate.finish_reason
        if finish_reason:  # usually on the last chunk only
            failure = failed_call(candidate)
            if failure is not None:
                writer.fail("api_error", failure)
            else:
                self._finish_reason = finish_reason
