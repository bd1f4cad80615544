"""The HTTP/1.1 framing shared by the fake upstream and the load generator."""

from __future__ import annotations

import random

import pytest

from bench.http11 import LAST_CHUNK, ChunkedDecoder, ProtocolError, body_framing, encode_chunk, parse_head


def test_parse_head_reads_start_line_and_lowercases_names():
    start, fields = parse_head(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Thing:  a b ")
    assert start == [b"HTTP/1.1", b"200", b"OK"]
    assert fields == {b"content-type": b"text/event-stream", b"x-thing": b"a b"}


@pytest.mark.parametrize("head", [b"garbage", b"HTTP/1.1 200 OK\r\nno colon here"])
def test_parse_head_refuses_malformed_heads(head):
    with pytest.raises(ProtocolError):
        parse_head(head)


@pytest.mark.parametrize(
    ("fields", "framing"),
    [
        ({b"content-length": b"12"}, 12),
        ({b"transfer-encoding": b"chunked"}, None),
        ({b"transfer-encoding": b"gzip, Chunked", b"content-length": b"3"}, None),
        ({}, -1),
    ],
)
def test_body_framing(fields, framing):
    assert body_framing(fields) == framing


@pytest.mark.parametrize("length", [b"abc", b"-1"])
def test_body_framing_refuses_bad_lengths(length):
    with pytest.raises(ProtocolError):
        body_framing({b"content-length": length})


def _chunked(payloads: list[bytes], trailer: bytes = b"") -> bytes:
    body = b"".join(encode_chunk(payload) for payload in payloads)
    return body + (b"0\r\n" + trailer + b"\r\n" if trailer else LAST_CHUNK)


@pytest.mark.parametrize("seed", range(20))
def test_chunked_decoder_gives_the_payloads_whatever_the_split(seed):
    rng = random.Random(seed)
    payloads = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(rng.randrange(1, 12))]
    wire = _chunked(payloads) + b"NEXT"
    cuts = sorted(rng.sample(range(1, len(wire)), k=min(len(wire) - 1, rng.randrange(0, 15))))
    decoder, got = ChunkedDecoder(), []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        got += decoder.feed(wire[start:end])
    assert got == payloads
    assert decoder.done
    assert decoder.rest == b"NEXT"


def test_chunked_decoder_skips_extensions_and_trailers():
    wire = b"5;name=value\r\nhello\r\n0\r\nx-trailer: 1\r\n\r\n"
    decoder = ChunkedDecoder()
    assert decoder.feed(wire) == [b"hello"]
    assert decoder.done and decoder.rest == b""


def test_chunked_decoder_is_not_done_before_the_last_chunk():
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3\r\nabc\r\n0\r\n") == [b"abc"]
    assert not decoder.done
    assert decoder.feed(b"\r\n") == []
    assert decoder.done


@pytest.mark.parametrize("wire", [b"zz\r\nabc\r\n", b"3\r\nabcXY"])
def test_chunked_decoder_refuses_malformed_framing(wire):
    with pytest.raises(ProtocolError):
        ChunkedDecoder().feed(wire)
