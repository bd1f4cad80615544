"""OpenAI chat.completion.chunk stream -> Anthropic stream events (OpenAI API reference,
"The chat completion chunk object"; Anthropic API reference, "Streaming Messages")."""

from __future__ import annotations

import msgspec
from msgspec import Struct

from aimw.errors import error_type_for_status, redact
from aimw.translators import anthropic as a
from aimw.translators.openai_chat.response import (
    ChatUsage,
    ChunkError,
    new_message_id,
    new_tool_use_id,
    reasoning_tokens_of,
    stop_reason_for,
    usage_to_anthropic,
)

class ChunkFunction(Struct):
    """``arguments`` is a piece of a JSON string, or a whole JSON object (TGI, some llama.cpp builds)."""

    name: str | None = None
    arguments: str | dict | None = None


class ChunkToolCall(Struct):
    index: int | None = None
    id: str | None = None
    function: ChunkFunction | None = None


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

_TEXT, _THINKING, _TOOL = 1, 2, 3


class ChatStreamTranslator:
    """One stream's state: Chat Completions chunks in, Anthropic SSE events out.

    ``feed(data)`` takes the ``data`` of one provider event (bytes; empty data is ignored) and returns the encoded
    Anthropic events it yields (possibly ``b""``); ``finish()`` returns the closing events
    when the provider stream ends (``[DONE]`` or end of body, with or without a
    finish_reason). Emitted streams keep DESIGN §6's invariants: message_start first, one
    block open at a time, indices from 0, message_delta with cumulative usage, message_stop.
    After an ``event: error`` nothing more is emitted and ``error`` says what it was.
    """

    __slots__ = (
        "model",
        "message_id",
        "usage",
        "reasoning_tokens",
        "error",
        "started",
        "done",
        "_next_index",
        "_open",
        "_open_index",
        "_tool_blocks",
        "_tool_ids",
        "_last_tool",
        "_tool_used",
        "_finish_reason",
        "_refused",
    )

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.model = model
        self.message_id = message_id or new_message_id()
        self.usage = a.ResponseUsage()
        self.reasoning_tokens = 0
        self.error: str | None = None
        self.started = False
        self.done = False
        self._next_index = 0
        self._open = 0
        self._open_index = -1
        self._tool_blocks: dict[int, int] = {}  # tool_calls index -> block index of its latest call
        self._tool_ids: dict[int, str] = {}  # block index -> tool_use id
        self._last_tool = -1  # block index of the latest tool_use block
        self._tool_used = False
        self._finish_reason: str | None = None
        self._refused = False

    def feed(self, data: bytes) -> bytes:
        if self.done:
            return b""
        if data == b"[DONE]":
            return self.finish()
        if not data.strip():
            return b""
        try:
            chunk = _chunk_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return self._fail("api_error", f"upstream provider sent an invalid stream chunk: {exc}")
        out: list[bytes] = []
        if not self.started:
            if not (chunk.choices or chunk.usage or chunk.error):
                return b""  # e.g. Azure's leading prompt_filter_results chunk: model "" and no choices
            if chunk.model:
                self.model = chunk.model
            out.append(self._start())
        if chunk.error is not None:
            error = chunk.error
            message = error if isinstance(error, str) else (error.message or "upstream provider stream error")
            status = error.code if not isinstance(error, str) and isinstance(error.code, int) else 500
            out.append(self._fail(error_type_for_status(529 if status == 503 else status), message))
            return b"".join(out)
        if chunk.usage is not None:
            self.usage = usage_to_anthropic(chunk.usage)
            self.reasoning_tokens = reasoning_tokens_of(chunk.usage)
        for choice in chunk.choices or ():
            delta = choice.delta
            if delta is not None:
                reasoning = delta.reasoning_content or delta.reasoning
                if reasoning:
                    out.append(self._delta(_THINKING, reasoning))
                if delta.content:
                    out.append(self._delta(_TEXT, delta.content))
                if delta.refusal:
                    self._refused = True
                    out.append(self._delta(_TEXT, delta.refusal))
                if delta.tool_calls:
                    for call in delta.tool_calls:
                        piece = self._tool_call(call)
                        if piece:
                            out.append(piece)
                            if self.done:
                                return b"".join(out)
            if choice.finish_reason:  # "" on every chunk (SGLang 0.4.x, older Ollama) means none yet
                self._finish_reason = choice.finish_reason
                out.append(self._close())
            break  # choices[0] only: Anthropic has one candidate
        return b"".join(out)

    def finish(self) -> bytes:
        if self.done:
            return b""
        out = [b"" if self.started else self._start(), self._close()]
        stop_reason = "refusal" if self._refused else stop_reason_for(self._finish_reason, self._tool_used)
        out.append(a.message_delta(stop_reason, self.usage))
        out.append(a.MESSAGE_STOP)
        self.done = True
        return b"".join(out)

    @property
    def has_content(self) -> bool:
        """True once a content block has been emitted."""
        return self._next_index > 0

    def _start(self) -> bytes:
        self.started = True
        return a.message_start(self.message_id, self.model, a.ResponseUsage())

    def _fail(self, error_type: str, message: str) -> bytes:
        out = b"" if self.started else self._start()
        self.done = True
        self.error = redact(f"{error_type}: {message}")
        return out + a.error_event(error_type, message)

    def _close(self) -> bytes:
        if not self._open:
            return b""
        self._open = 0
        return a.content_block_stop(self._open_index)

    def _open_block(self, kind: int) -> bytes:
        out = self._close()
        self._open = kind
        self._open_index = index = self._next_index
        self._next_index += 1
        return out + (a.text_block_start(index) if kind == _TEXT else a.thinking_block_start(index))

    def _delta(self, kind: int, text: str) -> bytes:
        out = b"" if self._open == kind else self._open_block(kind)
        if kind == _TEXT:
            return out + a.text_delta(self._open_index, text)
        return out + a.thinking_delta(self._open_index, text)

    def _tool_call(self, call: ChunkToolCall) -> bytes:
        """One tool_calls fragment. It continues the tool_use block its ``index`` maps to, or
        the latest one when it has no index (Gemini's OpenAI-compatible API, mistral.rs and
        some Ollama builds send none), unless it carries an ``id`` other than that block's:
        then it is a new call (some Ollama and Dynamo builds give parallel calls one index).
        Object ``arguments`` go out as one input_json_delta of their JSON."""
        function = call.function or ChunkFunction()
        block = self._last_tool if call.index is None else self._tool_blocks.get(call.index, -1)
        out = b""
        if block < 0 or (call.id and call.id != self._tool_ids[block]):
            out = self._close()
            block = self._open_index = self._next_index
            self._next_index += 1
            self._open, self._last_tool, self._tool_used = _TOOL, block, True
            if call.index is not None:
                self._tool_blocks[call.index] = block
            tool_use_id = self._tool_ids[block] = call.id or new_tool_use_id()
            out += a.tool_use_block_start(block, tool_use_id, function.name or "")
        elif self._open != _TOOL or self._open_index != block:
            return self._fail("api_error", "upstream provider interleaved the arguments of parallel tool calls")
        arguments = function.arguments
        if isinstance(arguments, dict):
            arguments = msgspec.json.encode(arguments).decode()
        if arguments:
            out += a.input_json_delta(block, arguments)
        return out
