"""SSEStreamTranslator: what every translator of a provider's SSE stream shares, so that each
one only says what one event means (``chunk``) and how the message ends (``end``).

It decodes the provider's bytes (aimw.sse, any split, one event capped), hands each event's
``data`` to ``chunk``, writes through an AnthropicStreamWriter, and exposes what the
:class:`~aimw.types.StreamTranslator` protocol reads (usage, model, has_content, error,
content_chars).
"""

from __future__ import annotations

from aimw.exchange import Usage
from aimw.sse import DEFAULT_MAX_EVENT_SIZE, EventTooLarge, SSEDecoder
from aimw.translators.anthropic.stream_writer import AnthropicStreamWriter


class SSEStreamTranslator:
    """Provider SSE bytes in, Anthropic SSE bytes out; subclasses define :meth:`chunk` (one
    event's data, written through ``self.writer``) and :meth:`end` (the body ended and the
    stream is not done yet)."""

    __slots__ = ("_between_events", "_decoder", "writer")

    rewrites_headers = True

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.writer = AnthropicStreamWriter(model, message_id)
        self._decoder = SSEDecoder()  # max_event_size: DEFAULT_MAX_EVENT_SIZE, as feed's fast path assumes
        self._between_events = True  # the decoder holds nothing of an unfinished event

    @property
    def usage(self) -> Usage:
        return self.writer.usage

    @property
    def model(self) -> str | None:
        return self.writer.model if self.writer.started else None

    @property
    def has_content(self) -> bool:
        return self.writer.has_content

    @property
    def error(self) -> str | None:
        return self.writer.error

    @property
    def content_chars(self) -> int:
        return self.writer.content_chars

    @property
    def done(self) -> bool:
        return self.writer.done

    @property
    def cut(self) -> bool:
        """True once an ``event: error`` ended the stream (too large, unreadable, the provider's)."""
        return self.writer.error is not None

    def feed(self, chunk: bytes) -> bytes:
        writer = self.writer
        if writer.done:
            return b""
        # The common read is one whole ``data: …`` event ended by a blank line (LF or CRLF,
        # no other line break) while the decoder is between events: its data goes straight
        # to chunk(), as the decoder would have given it.
        if self._between_events and chunk.startswith(b"data: ") and len(chunk) <= DEFAULT_MAX_EVENT_SIZE:
            if chunk.endswith(b"\r\n\r\n"):
                if chunk.count(b"\n") == 2 and chunk.count(b"\r") == 2:
                    self.chunk(chunk[6:-4])
                    return writer.take()
            elif chunk.endswith(b"\n\n") and chunk.count(b"\n") == 2 and b"\r" not in chunk:
                self.chunk(chunk[6:-2])
                return writer.take()
        if chunk:  # a read ending in a blank line leaves the decoder between events
            self._between_events = chunk.endswith((b"\n\n", b"\r\n\r\n"))
        try:
            events = self._decoder.feed(chunk)
        except EventTooLarge as exc:
            writer.fail("api_error", f"upstream provider sent an oversized stream event: {exc}")
            return writer.take()
        for event in events:
            self.chunk(event.data)
        return writer.take()

    def finish(self) -> bytes:
        if not self.writer.done:
            for event in self._decoder.flush():
                self.chunk(event.data)
            if not self.writer.done:
                self.end()
        return self.writer.take()

    def fail(self, error_type: str, message: str) -> bytes:
        self.writer.fail(error_type, message)
        return self.writer.take()

    def chunk(self, data: bytes) -> None:
        """Translate one event's ``data`` (the provider's format)."""
        raise NotImplementedError

    def end(self) -> None:
        """Close the message after the provider's body ended (stop_reason, or an error)."""
        raise NotImplementedError
