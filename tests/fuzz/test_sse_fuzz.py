"""Property: the SSE decoder (aimw.sse.SSEDecoder) takes any bytes, cut anywhere.

Whatever it is fed, ``feed`` and ``flush`` raise nothing but the decoder's own EventTooLarge
(an event, or an unfinished line, past ``max_event_size`` bytes); and as long as neither
way raises, the events of a stream cut into pieces are exactly those of the stream fed
whole. The bytes are arbitrary, and also drawn from SSE's own alphabet (field names, colons,
CR, LF, CRLF, multi-byte UTF-8 and its halves) so that every kind of line is met often.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from aimw.sse import EventTooLarge, ServerSentEvent, SSEDecoder
from tests.fuzz.budget import fuzz

_TOKENS = st.sampled_from(
    [
        b"data:",
        b"data: ",
        b"data",
        b"event:",
        b"event: message_start",
        b"id: 7",
        b"id",
        b"retry: 10",
        b":",
        b": comment",
        b"\r",
        b"\n",
        b"\r\n",
        b"\n\n",
        b"\r\n\r\n",
        b" ",
        b"{}",
        b"x",
        "é".encode(),
        "日".encode(),
        "日".encode()[:2],
        b"\xff",
        b"\x00",
    ]
)
SSE_LIKE = st.lists(_TOKENS, max_size=40).map(b"".join)
STREAMS = st.one_of(st.binary(max_size=200), SSE_LIKE)


def decode(pieces: list[bytes], max_event_size: int | None = None) -> list[ServerSentEvent]:
    decoder = SSEDecoder() if max_event_size is None else SSEDecoder(max_event_size)
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.flush()


def cut(data: bytes, cuts: set[int]) -> list[bytes]:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
    return [data[start:end] for start, end in pairwise(bounds)]


@fuzz(400)
@given(STREAMS, st.data())
def test_any_split_gives_the_events_of_the_whole(data: bytes, draw: st.DataObject) -> None:
    cuts = draw.draw(st.sets(st.integers(0, max(len(data), 1)), max_size=60), label="cuts")
    assert decode(cut(data, cuts)) == decode([data])


@fuzz(400)
@given(STREAMS, st.data(), st.integers(0, 64))
def test_a_small_limit_raises_only_event_too_large(data: bytes, draw: st.DataObject, limit: int) -> None:
    """With a limit a few bytes long, EventTooLarge is the only exception; a stream that fits
    either way decodes the same cut or whole."""
    cuts = draw.draw(st.sets(st.integers(0, max(len(data), 1)), max_size=60), label="cuts")
    results = []
    for pieces in ([data], cut(data, cuts)):
        try:
            results.append(decode(pieces, limit))
        except EventTooLarge:
            results.append(None)
    if None not in results:
        assert results[0] == results[1]


def test_the_fuzzed_alphabet_reaches_every_kind_of_line() -> None:
    """The SSE-like bytes are decodable streams: events with data, names and ids come out."""
    stream = b"event: message_start\r\ndata: {}\r\nid: 7\r\n\r\n: comment\ndata\n\ndata: \xe6\x97\xa5\r\r"
    events = decode([stream])
    assert events == [
        ServerSentEvent("message_start", b"{}", "7"),
        ServerSentEvent("", b"", "7"),
        ServerSentEvent("", "日".encode(), "7"),
    ]
    assert decode([stream[i : i + 1] for i in range(len(stream))]) == events
