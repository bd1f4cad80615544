"""OpenAI chat.completion.chunk stream -> Anthropic stream events (OpenAI API reference,
"The chat completion chunk object"; Anthropic API reference, "Streaming Messages")."""

from __future__ import annotations

import msgspec
from msgspec import Struct

from aimw.errors import error_type_for_status
from aimw.translators.anthropic.sse_stream import SSEStreamTranslator
from aimw.translators.anthropic.stream_writer import TEXT, THINKING
from aimw.translators.openai_chat.response import ChatUsage, ChunkError, stop_reason_for, usage_to_anthropic
from aimw.translators.openai_chat.tool_calls import ChunkToolCall, ToolCalls


class Delta(Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ChunkToolCall] | None = None


class ChunkChoice(Struct):
    delta: Delta | None = None
    finish_reason: str | None = None


class ChatChunk(Struct):
    """A chat.completion.chunk view: only what is translated. ``error`` is how vLLM, TGI and
    the Hugging Face router report a failure inside a 200 stream."""

    id: str | None = None
    model: str | None = None
    choices: list[ChunkChoice] | None = None
    usage: ChatUsage | None = None
    error: ChunkError | str | None = None


_chunk_decoder = msgspec.json.Decoder(ChatChunk)


class ChatStreamTranslator(SSEStreamTranslator):
    """One stream's state (a :class:`~aimw.types.StreamTranslator`): Chat Completions SSE
    bytes in, Anthropic SSE bytes out, written by an AnthropicStreamWriter.

    Each event's ``data`` is one chunk (empty data is ignored); the stream ends at
    ``[DONE]`` or at the end of the body, with or without a finish_reason. Tool calls are
    one tool_use block each, their arguments streamed as input_json_delta; calls whose
    fragments interleave, and text that comes while a call is unfinished, are reassembled
    (openai_chat.tool_calls). After an ``event: error`` nothing more is emitted and
    ``error`` says what it was.
    """

    __slots__ = ("_finish_reason", "_refused", "_tool_calls")

    def __init__(self, model: str, message_id: str | None = None) -> None:
        super().__init__(model, message_id)
        self._tool_calls = ToolCalls()
        self._finish_reason: str | None = None
        self._refused = False

    def chunk(self, data: bytes) -> None:
        """Translate one event's ``data``: a chunk, ``[DONE]`` or nothing."""
        writer = self.writer
        if writer.done or not data.strip():
            return
        if data == b"[DONE]":
            self.end()
            return
        try:
            chunk = _chunk_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            writer.fail("api_error", f"upstream provider sent an invalid stream chunk: {exc}")
            return
        if not writer.started:
            if not (chunk.choices or chunk.usage or chunk.error):
                return  # e.g. Azure's leading prompt_filter_results chunk: model "" and no choices
            if chunk.model:
                writer.model = chunk.model
            writer.start()
        if chunk.error is not None:
            error = chunk.error
            message = error if isinstance(error, str) else (error.message or "upstream provider stream error")
            status = error.code if not isinstance(error, str) and isinstance(error.code, int) else 500
            writer.fail(error_type_for_status(529 if status == 503 else status), message)
            return
        if chunk.usage is not None:
            writer.usage = usage_to_anthropic(chunk.usage)
        if chunk.choices:
            self._choice(chunk.choices[0])  # choices[0] only: Anthropic has one candidate

    def _choice(self, choice: ChunkChoice) -> None:
        writer = self.writer
        delta = choice.delta
        if delta is not None:
            tools = self._tool_calls  # while a tool_use block is open (open != -1) text goes through it
            reasoning = delta.reasoning_content or delta.reasoning
            if reasoning:
                if tools.open == -1:
                    writer.thinking(reasoning)
                else:
                    tools.text(THINKING, reasoning, writer)
            if delta.content:
                if tools.open == -1:
                    writer.text(delta.content)
                else:
                    tools.text(TEXT, delta.content, writer)
            if delta.refusal:
                self._refused = True
                if tools.open == -1:
                    writer.text(delta.refusal)
                else:
                    tools.text(TEXT, delta.refusal, writer)
            for call in delta.tool_calls or ():
                tools.fragment(call, writer)
                if writer.done:
                    return
        if choice.finish_reason:  # "" on every chunk (SGLang 0.4.x, older Ollama) means none yet
            self._finish_reason = choice.finish_reason
            self._tool_calls.close(writer)
            writer.close_block()

    def end(self) -> None:
        writer = self.writer
        if not writer.done:
            self._tool_calls.close(writer)
            stop_reason = "refusal" if self._refused else stop_reason_for(self._finish_reason, writer.tool_used)
            writer.end(stop_reason)
