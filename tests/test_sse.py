"""SSEDecoder / encode_event: the WHATWG event-stream rules on every split of the bytes, and
Kong's real text/event-stream fixtures."""

from __future__ import annotations

import json
import random
from itertools import pairwise

import pytest

from aimw.sse import EventTooLarge, ServerSentEvent, SSEDecoder, encode_event
from tests.shared_data import KONG

KONG_TEXT_EVENT_STREAM = KONG / "openai" / "unit" / "streaming-chunk-formats" / "text-event-stream"


def decode(pieces: list[bytes], *, flush: bool = True) -> list[tuple[str, bytes]]:
    """Feed ``pieces`` one by one (then flush) and return (event, data) pairs."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    if flush:
        events.extend(decoder.flush())
    return [(event.event, event.data) for event in events]


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[start:end] for start, end in pairwise(bounds)]


def random_splits(data: bytes, seed: int, count: int) -> list[list[bytes]]:
    rng = random.Random(seed)
    splits = []
    for _ in range(count):
        cuts = rng.sample(range(1, len(data)), k=rng.randint(1, min(12, len(data) - 1)))
        splits.append(split_at(data, cuts))
    return splits


STREAM = (
    b": keep-alive comment\n"
    b"event: message_start\n"
    b'data: {"a": 1}\n'
    b"\n"
    b"data: first line\n"
    b"data: second line\n"
    b"\n"
    b"event: custom\n"
    b"data:no-space\n"
    b"data:  two spaces\n"
    b"\n"
    b"data: [DONE]\n"
    b"\n"
)

STREAM_EVENTS = [
    ("message_start", b'{"a": 1}'),
    ("", b"first line\nsecond line"),
    ("custom", b"no-space\n two spaces"),
    ("", b"[DONE]"),
]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_ending_gives_the_same_events(eol: bytes) -> None:
    stream = STREAM.replace(b"\n", eol)
    assert decode([stream]) == STREAM_EVENTS
    # every event here ends with a blank line, so feed() alone dispatches them all
    assert decode([stream], flush=False) == STREAM_EVENTS


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_two_piece_split_gives_the_same_events(eol: bytes) -> None:
    stream = STREAM.replace(b"\n", eol)
    for cut in range(1, len(stream)):
        assert decode(split_at(stream, [cut])) == STREAM_EVENTS, cut


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_random_multi_piece_splits_give_the_same_events(eol: bytes) -> None:
    stream = STREAM.replace(b"\n", eol)
    for pieces in random_splits(stream, seed=1729, count=150):
        assert decode(pieces) == STREAM_EVENTS


def test_byte_by_byte_feed() -> None:
    stream = STREAM.replace(b"\n", b"\r\n")
    assert decode([stream[i : i + 1] for i in range(len(stream))]) == STREAM_EVENTS


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    # If the CR and the LF were read as two line ends, the blank line would dispatch "a" alone.
    assert decode([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [("", b"a\nb")]
    assert decode([b"data: a\r", b"\n", b"\r", b"\n"]) == [("", b"a")]
    # An empty chunk between the CR and the LF changes nothing.
    assert decode([b"data: a\r", b"", b"\ndata: b\r\n\r\n"]) == [("", b"a\nb")]


def test_an_event_ending_in_cr_is_dispatched_without_waiting_for_the_next_chunk() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r\r") == [ServerSentEvent("", b"x")]
    # CRLF cut after the blank line's CR: the event is complete already
    assert decoder.feed(b"data: y\r\n\r") == [ServerSentEvent("", b"y")]
    # ... and the LF that follows is that CRLF's second half, not another blank line
    assert decoder.feed(b"\ndata: z\r\n") == []
    assert decoder.feed(b"\r\n") == [ServerSentEvent("", b"z")]


def test_cr_then_cr_is_a_blank_line() -> None:
    assert decode([b"data: a\r", b"\rdata: b\r\r"]) == [("", b"a"), ("", b"b")]


def test_multi_line_data_is_joined_with_lf() -> None:
    assert decode([b'data: {\ndata:   "k": 1\ndata: }\n\n']) == [("", b'{\n  "k": 1\n}')]


def test_comments_are_ignored() -> None:
    assert decode([b": ping\n\n:\n\n: x\ndata: 1\n: y\n\n"]) == [("", b"1")]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert decode([b"\n\n\n\r\n\r\n"]) == []
    # an event name alone (no data) is not an event, and does not leak into the next one
    assert decode([b"event: lonely\n\ndata: x\n\n"]) == [("", b"x")]


def test_event_name_resets_after_each_event() -> None:
    assert decode([b"event: a\ndata: 1\n\ndata: 2\n\nevent: c\ndata: 3\n\n"]) == [
        ("a", b"1"),
        ("", b"2"),
        ("c", b"3"),
    ]


def test_field_without_colon_and_empty_data() -> None:
    # "data" alone is the data field with an empty value; "data:" likewise.
    assert decode([b"data\n\n"]) == [("", b"")]
    assert decode([b"data:\ndata:\n\n"]) == [("", b"\n")]


def test_unknown_fields_are_ignored_and_id_is_kept() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"id: 7\nretry: 1000\nfoo: bar\ndata: x\n\n")
    assert [(e.event, e.data, e.id) for e in events] == [("", b"x", "7")]


def test_flush_dispatches_a_truncated_last_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\n\ndata: trunc") == [ServerSentEvent("", b"1")]
    assert decoder.flush() == [ServerSentEvent("", b"trunc")]
    # the decoder is empty afterwards
    assert decoder.flush() == []
    assert decoder.feed(b"data: next\n\n") == [ServerSentEvent("", b"next")]


def test_flush_dispatches_an_event_missing_only_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: e\ndata: 1\ndata: 2\n") == []
    assert decoder.flush() == [ServerSentEvent("e", b"1\n2")]


def test_flush_with_a_pending_cr() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.flush() == [ServerSentEvent("", b"x")]


def test_flush_of_an_empty_decoder() -> None:
    assert SSEDecoder().flush() == []


def test_utf8_character_split_across_chunks() -> None:
    text = "h\u00e9llo \u20ac \U0001f600 \u65e5\u672c"
    stream = b"event: caf\xc3\xa9\ndata: " + text.encode() + b"\n\n"
    for cut in range(1, len(stream)):
        events = decode(split_at(stream, [cut]))
        assert len(events) == 1, cut
        assert events[0][0] == "caf\u00e9"
        assert events[0][1].decode("utf-8") == text


def test_kong_text_event_stream_fixture() -> None:
    """Kong's master fixture: four ``data:`` events; the last (``[DONE]``) has no closing blank
    line, so Kong's parser (and a spec-following feed) yields the first three, and aimw's
    flush() also dispatches the truncated ``[DONE]``."""
    stream = (KONG_TEXT_EVENT_STREAM / "input.bin").read_bytes()
    expected = [
        item["data"].encode() for item in json.loads((KONG_TEXT_EVENT_STREAM / "expected-output.json").read_text())
    ]
    assert len(expected) == 3
    decoder = SSEDecoder()
    fed = decoder.feed(stream)
    assert [event.data for event in fed] == expected
    assert all(event.event == "" for event in fed)
    assert [event.data for event in decoder.flush()] == [b"[DONE]"]
    for json_data in expected:
        json.loads(json_data)  # each is a whole chunk
    for pieces in random_splits(stream, seed=393, count=100):
        assert decode(pieces) == [("", data) for data in [*expected, b"[DONE]"]]


def test_kong_aigw_393_single_newline_fixture() -> None:
    """The aigw-393 variant separates its four ``data:`` lines with one CRLF each (no blank line
    between them). Kong's line parser expects four events; under the WHATWG rules aimw follows,
    those lines are ONE event whose data lines are joined with LF, in the same order."""
    stream = (KONG_TEXT_EVENT_STREAM / "input.aigw-393.bin").read_bytes()
    expected = [
        item["data"].encode()
        for item in json.loads((KONG_TEXT_EVENT_STREAM / "expected-output.aigw-393.json").read_text())
    ]
    assert expected[-1] == b"[DONE]" and len(expected) == 4
    events = decode([stream])
    assert len(events) == 1
    assert events[0][1].split(b"\n") == expected
    for pieces in random_splits(stream, seed=394, count=100):
        assert decode(pieces) == events


@pytest.mark.parametrize(
    "name",
    ["message_start", "content_block_delta", "message_stop", "ping", "error", "some_future_event"],
)
def test_encode_event_decodes_back(name: str) -> None:
    data = json.dumps({"type": name, "text": "caf\u00e9 \u20ac", "n": [1, 2]}, ensure_ascii=False).encode()
    encoded = encode_event(name, data)
    assert encoded.startswith(b"event: " + name.encode() + b"\n")
    assert encoded.endswith(b"\n\n")
    assert decode([encoded], flush=False) == [(name, data)]


def test_encoded_events_concatenate_into_a_stream() -> None:
    events = [("message_start", b'{"x":1}'), ("ping", b'{"type":"ping"}'), ("message_stop", b"{}")]
    stream = b"".join(encode_event(name, data) for name, data in events)
    assert decode([stream], flush=False) == events
    for pieces in random_splits(stream, seed=5, count=50):
        assert decode(pieces, flush=False) == events


# ---------------------------------------------------------------- hostile streams (issue 8, finding 7)


def test_a_long_line_over_many_reads_is_joined_once_and_intact() -> None:
    line = b"data: " + b"x" * 3_000_000
    decoder = SSEDecoder()
    pieces = [line[i : i + 1000] for i in range(0, len(line), 1000)]
    for piece in pieces:
        assert decoder.feed(piece) == []
    [event] = decoder.feed(b"\n\n")
    assert event.data == line[6:]


@pytest.mark.parametrize("newline", [False, True])
def test_an_event_past_max_event_size_raises(newline: bool) -> None:
    """One 5 MiB line without a newline, or 5 MiB of data lines in one event: past the cap."""
    decoder = SSEDecoder(max_event_size=4 * 1024 * 1024)
    piece = b"data: " + b"y" * 65_530 + (b"\n" if newline else b"")
    with pytest.raises(EventTooLarge, match="larger than 4194304 bytes"):
        for _ in range(80):
            decoder.feed(piece)


def test_the_cap_counts_one_event_at_a_time() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    event = b"data: " + b"z" * 900 + b"\n\n"
    for _ in range(50):  # 45 KB in all, every event under the cap
        [decoded] = decoder.feed(event)
        assert len(decoded.data) == 900
