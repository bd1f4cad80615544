"""The Anthropic side of every translated stream, written once: every stream translator
drives an :class:`AnthropicStreamWriter` with what its provider said.

DESIGN §6's invariants hold by construction: message_start first (with usage), one content
block open at a time, every content_block_start closed by a content_block_stop with the
same index, indices increasing from 0, message_delta with the stop_reason and cumulative
usage, then message_stop; or an ``event: error`` after which nothing more is written.
"""

from __future__ import annotations

import os

import msgspec

from aimw.errors import redact
from aimw.exchange import Usage
from aimw.translators.anthropic import events
from aimw.translators.anthropic.events import DELTA_END

_encode = msgspec.json.encode

TEXT, THINKING, TOOL_USE = 1, 2, 3  # kinds of content block


def new_message_id() -> str:
    """A message id (128 random bits, as uuid4 has)."""
    return "msg_" + os.urandom(16).hex()


def new_tool_use_id() -> str:
    """A tool_use id for a call the provider gave none (128 random bits)."""
    return "toolu_" + os.urandom(16).hex()


class AnthropicStreamWriter:
    """One Anthropic stream being written; :meth:`take` returns what was written since the
    last call (bytes, possibly ``b""``).

    ``model`` may change until :meth:`start` (the provider names it in its first chunk);
    ``usage`` is updated in place by the translator and written, cumulative, in message_delta.
    ``content_chars`` counts the characters of content written (text, thinking, tool names
    and input JSON), for an estimate of the output when the stream ends before the provider's usage.
    Once :meth:`end` or :meth:`fail` ran, every call writes nothing.
    """

    __slots__ = (
        "_head",
        "_index",
        "_kind",
        "_next",
        "_out",
        "content_chars",
        "done",
        "error",
        "message_id",
        "model",
        "started",
        "tool_used",
        "usage",
    )

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.model = model
        self.message_id = message_id or new_message_id()
        self.usage = Usage()
        self.error: str | None = None
        self.started = False
        self.done = False
        self.tool_used = False
        self.content_chars = 0
        self._out: list[bytes] = []
        self._next = 0  # index of the next content block
        self._kind = 0  # kind of the open block, 0 when none is open
        self._index = -1  # index of the open block
        self._head = b""  # the open block's deltas up to their value (events.delta_head)

    def take(self) -> bytes:
        out, self._out = self._out, []
        return out[0] if len(out) == 1 else b"".join(out)

    @property
    def has_content(self) -> bool:
        """True once a content block has been started."""
        return self._next > 0

    def open_block(self, kind: int) -> int:
        """Index of the open block when it is of ``kind``, else -1."""
        return self._index if self._kind == kind else -1

    def start(self) -> None:
        """Write message_start (usage all zero: providers report it at the end) if not yet."""
        if not self.started:
            self.started = True
            self._out.append(events.message_start(self.message_id, self.model, Usage()))

    def text(self, text: str) -> None:
        if not self.done:
            if self._kind != TEXT:
                self._open(TEXT, events.text_block_start(self._next), events.TEXT_DELTA)
            self.content_chars += len(text)
            self._out.append(self._head + _encode(text) + DELTA_END)

    def thinking(self, thinking: str) -> None:
        if not self.done:
            if self._kind != THINKING:
                self._open(THINKING, events.thinking_block_start(self._next), events.THINKING_DELTA)
            self.content_chars += len(thinking)
            self._out.append(self._head + _encode(thinking) + DELTA_END)

    def signature(self, signature: str) -> None:
        """A signature_delta for the open thinking block (ignored when none is open)."""
        if self._kind == THINKING:
            self._out.append(events.signature_delta(self._index, signature))

    def tool_use(self, tool_use_id: str, name: str) -> int:
        """Open a new tool_use block; returns its index (-1 once the stream has ended)."""
        if self.done:
            return -1
        self.tool_used = True
        self.content_chars += len(name)
        self._open(TOOL_USE, events.tool_use_block_start(self._next, tool_use_id, name), events.INPUT_JSON_DELTA)
        return self._index

    def input_json(self, partial_json: str) -> None:
        """A piece of the open tool_use block's input (JSON text, as it arrives)."""
        if self._kind == TOOL_USE and partial_json:
            self.content_chars += len(partial_json)
            self._out.append(self._head + _encode(partial_json) + DELTA_END)

    def close_block(self) -> None:
        if self._kind:
            self._kind = 0
            self._out.append(events.content_block_stop(self._index))

    def end(self, stop_reason: str) -> None:
        """Close the message: message_delta with ``stop_reason`` and usage, message_stop."""
        if self.done:
            return
        self.start()
        self.close_block()
        self._out += (events.message_delta(stop_reason, self.usage), events.MESSAGE_STOP)
        self.done = True

    def fail(self, error_type: str, message: str) -> None:
        """End the stream with ``event: error`` (after message_start); ``error`` records it."""
        if self.done:
            return
        self.start()
        self.done = True
        self._kind = 0  # the open block, if any, ends with the stream
        self.error = redact(f"{error_type}: {message}")
        self._out.append(events.error_event(error_type, message))

    def _open(self, kind: int, block_start: bytes, delta_type: bytes) -> None:
        self.start()
        self.close_block()
        self._kind = kind
        self._index = index = self._next
        self._next += 1
        self._head = events.delta_head(index, delta_type)
        self._out.append(block_start)
