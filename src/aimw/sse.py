"""Server-sent events: an incremental decoder and the encoder aimw emits with.

Wire format: the WHATWG HTML "Server-sent events" section (event stream interpretation):
lines end in CRLF, LF or CR; ``field: value`` lines (one optional space after the
colon); lines starting with ``:`` are comments; ``data`` lines of one event are
joined with LF; a blank line dispatches the event.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["EventTooLarge", "SSEDecoder", "ServerSentEvent", "encode_event"]


class ServerSentEvent:
    """One dispatched event: ``event`` name (``""`` when the stream gave none) and ``data`` bytes."""

    __slots__ = ("data", "event", "id")

    def __init__(self, event: str, data: bytes, id: str | None = None) -> None:  # noqa: A002 (the SSE field name)
        self.event = event
        self.data = data
        self.id = id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return (self.event, self.data, self.id) == (other.event, other.data, other.id)

    def __repr__(self) -> str:
        return f"ServerSentEvent(event={self.event!r}, data={self.data!r})"


class EventTooLarge(ValueError):
    """One event (or one line) grew past the decoder's ``max_event_size`` (bytes)."""


DEFAULT_MAX_EVENT_SIZE = 4 * 1024 * 1024  # bytes: far above any provider's event, far below a memory threat


class SSEDecoder:
    """Incremental event-stream decoder: ``feed(bytes) -> list[ServerSentEvent]``, then ``flush()``.

    Works on any split of the byte stream, including a CRLF or a UTF-8 character cut
    between two chunks, in time linear in the bytes fed: a line that spans many reads is
    kept as its pieces and joined once, when it ends. ``flush()`` dispatches an event whose
    closing blank line never came (a truncated last frame), which the spec would drop: a
    gateway would rather translate the provider's last words than lose them.

    Raises:
        EventTooLarge: from ``feed`` once the event being read holds more than
            ``max_event_size`` bytes (its data lines and its unfinished line).
    """

    __slots__ = ("_cr_pending", "_data", "_event", "_id", "_max", "_parts", "_parts_size", "_size")

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._parts: list[bytes] = []  # the unfinished line, as it came
        self._parts_size = 0
        self._size = 0  # data bytes of the current event
        self._max = max_event_size
        self._event = ""
        self._data: list[bytes] = []
        self._id: str | None = None
        self._cr_pending = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        # A chunk ending in CR ends its line now (CR-only streams must not wait for the next
        # chunk); a LF opening the next chunk is that CRLF's second half and is skipped.
        if self._cr_pending and chunk:
            self._cr_pending = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._cr_pending = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in chunk:
            if chunk:
                self._hold(chunk)
            return []
        if self._parts:
            self._parts.append(chunk)
            chunk = b"".join(self._parts)
            self._parts, self._parts_size = [], 0
        lines = chunk.split(b"\n")
        tail = lines.pop()
        events: list[ServerSentEvent] = []
        data, size, limit = self._data, self._size, self._max
        for line in lines:  # the two common lines inline (``data: …`` and the blank one): the hot path
            if not line:
                if data:
                    events.append(
                        ServerSentEvent(self._event, data[0] if len(data) == 1 else b"\n".join(data), self._id)
                    )
                    data = self._data = []
                self._event = ""
                size = 0
            elif line.startswith(b"data:"):
                value = line[6:] if line[5:6] == b" " else line[5:]
                data.append(value)
                size += len(value)
                if size > limit:
                    raise EventTooLarge(f"an event of the stream is larger than {limit} bytes")
            else:
                self._field(line)
        self._size = size
        if tail:
            self._hold(tail)
        return events

    def flush(self) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        self._cr_pending = False
        if self._parts:
            line = b"".join(self._parts)
            self._parts, self._parts_size = [], 0
            self._line(line, events)
        self._line(b"", events)
        return events

    def _hold(self, piece: bytes) -> None:
        self._parts.append(piece)
        self._parts_size += len(piece)
        if self._size + self._parts_size > self._max:
            raise EventTooLarge(f"an event of the stream is larger than {self._max} bytes")

    def _line(self, line: bytes, events: list[ServerSentEvent]) -> None:
        """One line outside :meth:`feed`'s loop (:meth:`flush`'s last ones)."""
        if not line:
            if self._data:
                events.append(ServerSentEvent(self._event, b"\n".join(self._data), self._id))
                self._data = []
            self._event = ""
            self._size = 0
        elif line.startswith(b"data:"):
            value = line[6:] if line[5:6] == b" " else line[5:]
            self._data.append(value)
            self._size += len(value)
            if self._size > self._max:
                raise EventTooLarge(f"an event of the stream is larger than {self._max} bytes")
        else:
            self._field(line)

    def _field(self, line: bytes) -> None:
        """A comment (``:``), ``event``, ``id``, or a field the spec says to ignore."""
        if line[0] == 0x3A:
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            self._id = value.decode("utf-8", "replace")
        elif name == b"data":  # "data" without a colon: an empty data line
            self._data.append(value)


_PREFIXES = MappingProxyType(
    {
        name: b"event: " + name.encode() + b"\ndata: "
        for name in (
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
            "ping",
            "error",
        )
    }
)


def encode_event(event: str, data: bytes) -> bytes:
    """Encode one event as ``event: NAME\\ndata: DATA\\n\\n`` (``data`` must hold no newline)."""
    prefix = _PREFIXES.get(event) or b"event: " + event.encode() + b"\ndata: "
    return prefix + data + b"\n\n"
