"""SSEStreamTranslator: what every translator of a provider's SSE stream shares, so that each
one only says what one event means (``chunk``) and how the message ends (``end``).

It decodes the provider's bytes (aimw.sse, any split, one event capped), hands each event's
``data`` to ``chunk``, writes through an AnthropicStreamWriter, and exposes what the
:class:`~aimw.types.StreamTranslator` protocol reads (usage, model, has_content, error).
"""

from __future__ import annotations

from aimw.exchange import Usage
from aimw.sse import EventTooLarge, SSEDecoder
from aimw.translators.anthropic.stream_writer import AnthropicStreamWriter


class SSEStreamTranslator:
    """Provider SSE bytes in, Anthropic SSE bytes out; subclasses define :meth:`chunk` (one
    event's data, written through ``self.writer``) and :meth:`end` (the body ended and the
    stream is not done yet)."""

    __slots__ = ("_decoder", "writer")

    rewrites_headers = True

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.writer = AnthropicStreamWriter(model, message_id)
        self._decoder = SSEDecoder()

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
    def done(self) -> bool:
        return self.writer.done

    @property
    def cut(self) -> bool:
        """True once an ``event: error`` ended the stream (too large, unreadable, the provider's)."""
        return self.writer.error is not None

    def feed(self, chunk: bytes) -> bytes:
        if self.writer.done:
            return b""
        try:
            events = self._decoder.feed(chunk)
        except EventTooLarge as exc:
            self.writer.fail("api_error", f"upstream provider sent an oversized stream event: {exc}")
            return self.writer.take()
        for event in events:
            self.chunk(event.data)
        return self.writer.take()

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
