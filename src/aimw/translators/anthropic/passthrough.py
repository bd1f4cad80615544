"""Anthropic's own Messages API as a wire format: nothing to translate, only to read.

The request passes as the client sent it (after StripFields); a JSON answer and an
Anthropic error pass byte for byte, with their usage and model read on the way; an event
stream passes byte for byte, released a whole event at a time (events end with a blank
line, LF or CRLF) so that an ``event: error`` can always follow a whole event, and read for
usage (message_start's input, message_delta's output), model, errors and the size of its
content. Source: Anthropic API reference, "Messages", "Streaming Messages", "Errors".
"""

from __future__ import annotations

import msgspec

from aimw.errors import error_from_provider
from aimw.exchange import Usage, token_count
from aimw.sse import DEFAULT_MAX_EVENT_SIZE, EventTooLarge, SSEDecoder
from aimw.translators.anthropic.events import error_event
from aimw.translators.wire import AnthropicAnswer, AnthropicCall, UpstreamRequest


class _UsageView(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _MessageView(msgspec.Struct):
    model: str | None = None
    usage: _UsageView | None = None


class _ErrorView(msgspec.Struct):
    type: str | None = None
    message: str | None = None


class _BlockView(msgspec.Struct):
    type: str = ""


class _BlockStartView(msgspec.Struct):
    """content_block_start (only what is read)."""

    index: int = 0
    content_block: _BlockView | None = None


class _EventView(msgspec.Struct):
    """An Anthropic stream event or a whole Message / error body (only what is read)."""

    type: str | None = None
    message: _MessageView | None = None
    model: str | None = None
    usage: _UsageView | None = None
    error: _ErrorView | None = None


_view_decoder = msgspec.json.Decoder(_EventView)
_block_start_decoder = msgspec.json.Decoder(_BlockStartView)
_READ_EVENTS = frozenset(("message_start", "message_delta", "error"))
# Each kind of content block's deltas: (delta type, the field holding the content).
_DELTA_FIELDS = {
    "text": (b"text_delta", b"text"),
    "thinking": (b"thinking_delta", b"thinking"),
    "tool_use": (b"input_json_delta", b"partial_json"),
    "server_tool_use": (b"input_json_delta", b"partial_json"),
}


def _delta_head_size(index: int, block_type: str) -> int:
    """Bytes of a content_block_delta's data before its content, as Anthropic writes it
    (compact JSON, content last): ``{"type":"content_block_delta","index":0,"delta":
    {"type":"text_delta","text":"`` (Anthropic pads events with spaces after the content,
    never before it)."""
    delta_type, field = _DELTA_FIELDS.get(block_type, _DELTA_FIELDS["text"])
    return len(b'{"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":"' % (index, delta_type, field))


_FIRST_DELTA_HEAD_SIZE = _delta_head_size(0, "text")


def _add_usage(usage: Usage, view: _UsageView | None, *, output: bool = True) -> None:
    """Anthropic usage is cumulative: a later value replaces an earlier one. Without
    ``output`` the output_tokens are not taken (message_start's: 1 or so, before any content)."""
    if view is None:
        return
    if view.input_tokens is not None:
        usage.input_tokens = token_count(view.input_tokens)
    if output and view.output_tokens is not None:
        usage.output_tokens = token_count(view.output_tokens)
    if view.cache_read_input_tokens is not None:
        usage.cache_read_input_tokens = token_count(view.cache_read_input_tokens)
    if view.cache_creation_input_tokens is not None:
        usage.cache_creation_input_tokens = token_count(view.cache_creation_input_tokens)


class AnthropicMessages:
    """The :class:`~aimw.types.WireFormat` of Anthropic itself (the pass-through recipe)."""

    name = "anthropic"
    passthrough = True
    parses_request = False

    def build_request(self, call: AnthropicCall) -> UpstreamRequest:
        return UpstreamRequest(call.path, call.query, call.body)

    def response_to_anthropic(self, body: bytes, model: str) -> AnthropicAnswer:
        usage = Usage()
        try:
            view = _view_decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return AnthropicAnswer(body, usage, None)
        _add_usage(usage, view.usage)
        return AnthropicAnswer(body, usage, view.model)

    def error_to_anthropic(self, status: int, body: bytes) -> tuple[int, bytes]:
        """Anthropic's own errors (an ``error`` object with ``type`` and ``message``) pass
        unchanged; anything else (a proxy's HTML page) is mapped like any provider's."""
        try:
            view = _view_decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            view = _EventView()
        if view.error is not None and view.error.type and view.error.message is not None:
            return status, body
        return error_from_provider(status, body)

    def retry_after(self, status: int, body: bytes) -> int | None:
        """None: Anthropic says it in its own ``retry-after`` header."""
        return None

    def new_stream(self, model: str) -> AnthropicEventStream:
        return AnthropicEventStream()


class AnthropicEventStream:
    """An Anthropic event stream passed on (a :class:`~aimw.types.StreamTranslator` that
    rewrites nothing). After ``message_stop`` or the provider's own ``event: error`` a failure
    adds no error event. Each byte is scanned once; an event past ``max_event_size`` bytes
    ends the stream with ``event: error`` (``cut``: nothing more is passed).

    ``usage``: message_start's input, message_delta's output (message_start's output count
    is not taken, so a stream that ends before message_delta has no output figure and gets
    an estimate). ``content_chars``: the JSON-escaped bytes of the deltas' content (text,
    thinking, signatures, tool input JSON), each delta measured from its head (known from its
    block's content_block_start) to its last quote, without decoding it."""

    __slots__ = (
        "_content",
        "_decoder",
        "_delta_head",
        "_held",
        "_held_size",
        "_max",
        "cut",
        "done",
        "error",
        "has_content",
        "model",
        "usage",
    )

    rewrites_headers = False

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._held: list[bytes] = []  # bytes after the last whole event, as they came
        self._held_size = 0
        self._max = max_event_size
        self.cut = False  # ended here: an event was too large
        self.done = False
        self.usage = Usage()
        self.model: str | None = None
        self.error: str | None = None
        self.has_content = False
        self._content = 0  # bytes of content in the deltas so far
        self._delta_head = _FIRST_DELTA_HEAD_SIZE  # bytes before the content in the open block's deltas
        self._decoder = SSEDecoder(max_event_size)

    @property
    def content_chars(self) -> int:
        return max(self._content, 0)  # a provider writing its JSON otherwise could make it < 0

    def feed(self, chunk: bytes) -> bytes:
        if not chunk or self.cut:
            return b""
        held = self._held
        before = held[-1][-3:] if held else b""  # a blank line may straddle two reads
        window = before + chunk
        lf, crlf = window.rfind(b"\n\n"), window.rfind(b"\r\n\r\n")
        end = max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0) - len(before)
        if end <= 0:
            held.append(chunk)
            self._held_size += len(chunk)
            return self._too_large() if self._held_size > self._max else b""
        released = b"".join([*held, chunk[:end]]) if held else chunk[:end]
        rest = chunk[end:]
        self._held, self._held_size = ([rest], len(rest)) if rest else ([], 0)
        return released + self._read(released)

    def finish(self) -> bytes:
        if self.cut:
            return b""
        tail = b"".join(self._held)
        self._held, self._held_size = [], 0
        out = tail + self._read(tail) if tail else b""
        for event in self._decoder.flush():
            self._read_event(event.event, event.data)
        return out

    def fail(self, error_type: str, message: str) -> bytes:
        return b"" if self.done else error_event(error_type, message)

    def _read(self, released: bytes) -> bytes:
        """Read the events released; ``b""``, or the error event that ends an oversized stream."""
        try:
            events = self._decoder.feed(released)
        except EventTooLarge:
            return self._too_large()
        for event in events:
            self._read_event(event.event, event.data)
        return b""

    def _too_large(self) -> bytes:
        message = f"upstream provider sent a stream event larger than {self._max} bytes"
        out = self.fail("api_error", message)
        self.error, self.done, self.cut = f"api_error: {message}", True, True
        self._held, self._held_size = [], 0
        return out

    def _read_event(self, name: str, data: bytes) -> None:
        if name == "content_block_delta":
            self.has_content = True
            self._content += data.rfind(b'"') - self._delta_head
        elif name == "content_block_start":
            try:
                block = _block_start_decoder.decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return
            block_type = block.content_block.type if block.content_block is not None else ""
            self._delta_head = _delta_head_size(block.index, block_type)
        elif name == "message_stop":
            self.done = True  # complete: a failure now adds no error event
        elif name in _READ_EVENTS:
            try:
                view = _view_decoder.decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return
            if view.message is not None:
                self.model = view.message.model or self.model
                _add_usage(self.usage, view.message.usage, output=False)
            _add_usage(self.usage, view.usage)
            if view.error is not None:
                self.error = f"{view.error.type}: {view.error.message}"
                self.done = True  # the provider ended it with its own error event


ANTHROPIC_MESSAGES = AnthropicMessages()
