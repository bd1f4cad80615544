"""The tool calls of one Chat Completions stream, as Anthropic tool_use blocks (OpenAI API
reference, "The chat completion chunk object": ``delta.tool_calls[]`` {index, id, function
{name, arguments}}; Anthropic API reference, "Streaming Messages": one content block open at
a time, tool input as input_json_delta).

Calls are numbered as they first arrive; the open call's fragments stream as they come. A
new call opens its own block at once (closing the open one) when both look whole (a JSON
object's text ends with ``}``): OpenAI and vLLM send parallel calls one after the other.
When only the open call looks finished, the new call is held until what comes next tells:
more of the new call means the open call was done (the new call then opens its block and
streams on); anything else (more of the open call, another call, text, the end) is taken as
interleaving, which holding handles whether or not it is. When
the open call is not finished, the provider interleaves (index 0, 1, 0, 1 ...): the new call
and its later fragments are held and written, each as its own complete block in tool_calls
index order, when the open block closes (the finish_reason, ``[DONE]``, the end of the body).

Text or reasoning that comes while a tool_use block is open closes it when its call looks
finished and nothing is held, and is written where it came; otherwise it is held too and
follows the tool_use blocks, so that the open call's remaining fragments still have their
block. What is held is bounded by :data:`MAX_HELD_BYTES`.
"""

from __future__ import annotations

import msgspec
from msgspec import Struct

from aimw.translators.anthropic.stream_writer import TEXT, AnthropicStreamWriter, new_tool_use_id

MAX_HELD_BYTES = 1024 * 1024
"""Bytes one stream may hold back while a tool_use block is open (see :class:`_Held`): the
UTF-8 arguments of other tool calls and text that came meanwhile, plus ``_RECORD_BYTES`` per
held call or text run. A held call is one whole tool input, and Claude Code's largest (a
Write of a whole file) are tens of KB, so 1 MiB holds any real set of parallel calls; a
provider that never finishes its first call cannot make a stream grow past it."""

_RECORD_BYTES = 128  # what one held record costs beyond its bytes (its object and buffer)


class ChunkFunction(Struct):
    """``arguments`` is a piece of a JSON string, or a whole JSON object (TGI, some llama.cpp builds)."""

    name: str | None = None
    arguments: str | dict[str, object] | None = None


class ChunkToolCall(Struct):
    index: int | None = None
    id: str | None = None
    function: ChunkFunction | None = None


_NO_FUNCTION = ChunkFunction()


class ToolCalls:
    """The tool calls of one stream (see the module's docstring): which call each tool_calls
    fragment belongs to, the one tool_use block open at a time, what is held meanwhile."""

    __slots__ = ("by_id", "by_index", "held", "ids", "last", "open", "settling", "tail")

    def __init__(self) -> None:
        self.by_index: dict[int, int] = {}  # tool_calls index -> number of its latest call
        self.by_id: dict[str, int] = {}  # tool_use id -> call number
        self.ids: list[str] = []  # call number -> tool_use id
        self.last = -1  # number of the latest call
        self.open = -1  # the call streaming into the open tool_use block; -1 when none, or _SETTLING
        self.settling = -1  # while open is _SETTLING: the call whose block is open, looking finished
        self.tail = ""  # the open call's latest arguments piece
        self.held = _Held()

    def fragment(self, call: ChunkToolCall, writer: AnthropicStreamWriter) -> None:
        """One tool_calls fragment, of the call its ``index`` maps to or, without one (Gemini's
        OpenAI-compatible API, mistral.rs, some Ollama builds), the latest; but one with another
        ``id`` is the call of that id or a new one (some Ollama and Dynamo builds give parallel
        calls one index). Object ``arguments`` count as the text of their JSON."""
        index = call.index
        if index is None:
            number = self.by_id.get(call.id, -1) if call.id else self.last
        else:
            number = self.by_index.get(index, -1)
            if call.id and number >= 0 and call.id != self.ids[number]:
                number = self.by_id.get(call.id, -1)
        function = call.function or _NO_FUNCTION
        arguments = function.arguments
        if isinstance(arguments, dict):
            arguments = msgspec.json.encode(arguments).decode()
        if number < 0:
            self._start(call, function.name or "", arguments, writer)
        elif number != self.open:
            self._more(number, function.name, arguments, writer)
        elif arguments:
            writer.input_json(arguments)
            self.tail = arguments

    def text(self, kind: int, text: str, writer: AnthropicStreamWriter) -> None:
        """Text (``TEXT``) or reasoning (``THINKING``) while a tool_use block is open."""
        if self.open == _SETTLING:
            self._interleaved()
        held = self.held
        if held.calls or held.runs or not _looks_whole(self.tail):
            held.text(kind, text, writer)
        else:
            self.open = -1
            (writer.text if kind == TEXT else writer.thinking)(text)

    def close(self, writer: AnthropicStreamWriter) -> None:
        """Close the open tool_use block, then write what was held."""
        if self.open == _SETTLING:
            self._interleaved()
        if self.open >= 0:
            self.open = -1
            writer.close_block()
            self.held.write(writer)

    def _start(self, call: ChunkToolCall, name: str, arguments: str | None, writer: AnthropicStreamWriter) -> None:
        if self.open == _SETTLING:
            self._interleaved()
        number = len(self.ids)
        tool_use_id = call.id or new_tool_use_id()
        self.ids.append(tool_use_id)
        self.by_id[tool_use_id] = number
        if call.index is not None:
            self.by_index[call.index] = number
        self.last = number
        if self.open >= 0:
            open_whole = _looks_whole(self.tail)
            if self.held.calls or not open_whole or not _looks_whole(arguments or ""):
                settles = open_whole and not self.held.calls
                self.held.call(number, _HeldCall(tool_use_id, name, call.index), arguments or "", writer)
                if settles:
                    self.settling, self.open = self.open, _SETTLING
                return
        writer.tool_use(tool_use_id, name)
        self.open = number
        self.tail = arguments or ""
        if arguments:
            writer.input_json(arguments)

    def _more(self, number: int, name: str | None, arguments: str | None, writer: AnthropicStreamWriter) -> None:
        """A fragment of a call other than the open one (or of either while settling): held with
        its call, or, its block being closed, an error unless it carries no arguments."""
        if self.open == _SETTLING:
            if number in self.held.calls:
                self._settle(writer)
            else:
                self._interleaved()
            if number == self.open:
                if arguments:
                    writer.input_json(arguments)
                    self.tail = arguments
                return
        held = self.held.calls.get(number)
        if held is not None:
            self.held.more(held, name, arguments, writer)
        elif arguments and not arguments.isspace():
            call_id = self.ids[number]
            writer.fail("api_error", f"upstream provider sent arguments for tool call {call_id} after its block closed")

    def _interleaved(self) -> None:
        """What came after the new call was not more of it: the open call streams on, the new
        one stays held (right whether the provider interleaves or not)."""
        self.open, self.settling = self.settling, -1

    def _settle(self, writer: AnthropicStreamWriter) -> None:
        """The new call went on: the open call was finished. The new call (the only one held)
        opens its block, closing the other, with its held arguments, and streams from now on."""
        number, call = self.held.take()
        self.settling = -1
        writer.tool_use(call.tool_use_id, call.name)
        self.open = number
        self.tail = call.arguments.decode()
        if self.tail:
            writer.input_json(self.tail)


_SETTLING = -2  # ToolCalls.open while a new call waits to tell whether the open call was finished


def _looks_whole(arguments: str) -> bool:
    """Whether tool call arguments may be a whole JSON object: their text ends with ``}``."""
    return arguments.rstrip().endswith("}")


class _HeldCall:
    """A tool call held back: its tool_use id, name, tool_calls index, arguments (UTF-8)."""

    __slots__ = ("arguments", "index", "name", "tool_use_id")

    def __init__(self, tool_use_id: str, name: str, index: int | None) -> None:
        self.tool_use_id = tool_use_id
        self.name = name
        self.index = index
        self.arguments = bytearray()


class _Held:
    """What one stream holds back while a tool_use block is open: calls (by call number, in
    arrival order) and runs of text or reasoning (``TEXT`` or ``THINKING``, UTF-8), at most
    ``MAX_HELD_BYTES`` in all; past it the stream ends with an api_error event."""

    __slots__ = ("calls", "runs", "size")

    def __init__(self) -> None:
        self.calls: dict[int, _HeldCall] = {}
        self.runs: list[tuple[int, bytearray]] = []
        self.size = 0  # bytes held, each record counted as _RECORD_BYTES more

    def call(self, number: int, call: _HeldCall, arguments: str, writer: AnthropicStreamWriter) -> None:
        self.calls[number] = call
        self.add(call.arguments, arguments, writer, _RECORD_BYTES + len(call.tool_use_id) + len(call.name))

    def more(self, call: _HeldCall, name: str | None, arguments: str | None, writer: AnthropicStreamWriter) -> None:
        """A later fragment of held ``call``: the name it lacked, more arguments."""
        if name and not call.name:
            call.name = name
            self.size += len(name)
        if arguments:
            self.add(call.arguments, arguments, writer)

    def take(self) -> tuple[int, _HeldCall]:
        """The only held call, no longer held."""
        [(number, call)] = self.calls.items()
        self.calls.clear()
        self.size -= _RECORD_BYTES + len(call.tool_use_id) + len(call.name) + len(call.arguments)
        return number, call

    def text(self, kind: int, text: str, writer: AnthropicStreamWriter) -> None:
        runs = self.runs
        if runs and runs[-1][0] == kind:
            self.add(runs[-1][1], text, writer)
        else:
            runs.append((kind, bytearray()))
            self.add(runs[-1][1], text, writer, _RECORD_BYTES)

    def add(self, held: bytearray, piece: str, writer: AnthropicStreamWriter, record: int = 0) -> None:
        data = piece.encode()
        self.size += len(data) + record
        if self.size > MAX_HELD_BYTES:
            self.calls.clear()
            self.runs.clear()
            writer.fail(
                "api_error",
                f"upstream provider interleaved parallel tool calls or text past aimw's bound on held stream "
                f"content ({MAX_HELD_BYTES} bytes held while one tool_use block was open)",
            )
            return
        held += data

    def write(self, writer: AnthropicStreamWriter) -> None:
        """Each held call as its own tool_use block, in tool_calls index order (arrival order
        among calls of one index or none), then the held text and reasoning; then empty."""
        for call in sorted(self.calls.values(), key=_index_order):
            writer.tool_use(call.tool_use_id, call.name)
            if call.arguments:
                writer.input_json(call.arguments.decode())
            writer.close_block()
        for kind, run in self.runs:
            (writer.text if kind == TEXT else writer.thinking)(run.decode())
        self.calls.clear()
        self.runs.clear()
        self.size = 0


def _index_order(call: _HeldCall) -> tuple[bool, int]:
    return call.index is None, call.index or 0
