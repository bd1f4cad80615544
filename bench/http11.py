"""The few HTTP/1.1 pieces the fake upstream and the load generator share (RFC 9112).

Both sides are raw asyncio protocols: they find the end of the head, read a handful of
header fields, and frame bodies with ``Content-Length`` or chunked transfer coding.
Nothing here allocates per byte; bodies are sliced, never copied byte by byte.
"""

from __future__ import annotations

HEAD_END = b"\r\n\r\n"
MAX_HEAD_SIZE = 64 * 1024  # bytes: a longer head is refused


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 as we speak it."""


def parse_head(head: bytes) -> tuple[list[bytes], dict[bytes, bytes]]:
    """Split a request or status line and its header fields.

    ``head`` is everything before the blank line. Returns the start line's parts
    (split on the first two spaces) and the fields keyed by lower-case name; a repeated
    field keeps its last value (the ones read here never repeat).
    """
    lines = head.split(b"\r\n")
    start = lines[0].split(b" ", 2)
    if len(start) < 2:
        raise ProtocolError(f"malformed start line {lines[0][:80]!r}")
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise ProtocolError(f"malformed header line {line[:80]!r}")
        fields[name.strip().lower()] = value.strip()
    return start, fields


def body_framing(fields: dict[bytes, bytes]) -> int | None:
    """The body's length in bytes from ``content-length``, or None for chunked coding.

    Raises ProtocolError for a malformed length. A message with neither field has -1
    (a response read until the connection closes; a request with no body).
    """
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        return None
    length = fields.get(b"content-length")
    if length is None:
        return -1
    try:
        value = int(length)
    except ValueError:
        raise ProtocolError(f"malformed content-length {length[:40]!r}") from None
    if value < 0:
        raise ProtocolError(f"negative content-length {value}")
    return value


def encode_chunk(data: bytes) -> bytes:
    """One chunk of chunked transfer coding: size in hex, CRLF, data, CRLF."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


class ChunkedDecoder:
    """Incremental decoder of a chunked body: ``feed(data)`` returns the chunk payloads
    completed by ``data``; ``done`` turns true after the last chunk and its trailer, and
    ``rest`` then holds the bytes that followed (the next message on the connection).

    A chunk is returned whole once all its bytes arrived (chunks here are small).
    """

    __slots__ = ("_buffer", "done", "rest")

    def __init__(self) -> None:
        self._buffer = b""
        self.done = False
        self.rest = b""

    def feed(self, data: bytes) -> list[bytes]:
        if self.done:
            self.rest += data
            return []
        buffer = self._buffer + data if self._buffer else data
        payloads: list[bytes] = []
        position = 0
        end = len(buffer)
        while position < end:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                if end - position > 1024:
                    raise ProtocolError("chunk size line too long")
                break
            size_field = buffer[position:line_end].split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise ProtocolError(f"malformed chunk size {size_field[:40]!r}") from None
            if size == 0:
                trailer_start = line_end + 2
                if buffer.startswith(b"\r\n", trailer_start):
                    trailer_end = trailer_start + 2
                else:
                    found = buffer.find(HEAD_END, trailer_start)
                    if found < 0:
                        break
                    trailer_end = found + 4
                self.done = True
                self.rest = buffer[trailer_end:]
                position = end
                break
            data_start = line_end + 2
            data_end = data_start + size
            if data_end + 2 > end:
                break
            if buffer[data_end : data_end + 2] != b"\r\n":
                raise ProtocolError("chunk data not followed by CRLF")
            payloads.append(buffer[data_start:data_end])
            position = data_end + 2
        self._buffer = b"" if self.done else buffer[position:]
        return payloads
