"""Malformed HTTP/1.1 over raw sockets to each gateway (recipes.huggingface, recipes.anthropic,
recipes.config): broken framing, Content-Length mismatches, chunked uploads that stop, odd
request lines, targets and headers; the ``fuzzed`` fixture checks afterwards that the gateway
is up and wrote no traceback, and each test that a good request is still answered.

Who answers what:

- what reaches aimw gets an Anthropic error (400 framing or path, 403 Host, 404 route);
- what h11 cannot parse as a request never reaches aimw: Hypercorn answers it with an empty
  400 and closes (an aimw-level answer is impossible: the ASGI app is called only with a
  whole request head), and a transfer-coding other than chunked with the 501 that RFC 9112
  §6.1 prescribes ("A server that receives a request message with a transfer coding it does
  not understand SHOULD respond with 501"): the one 5xx bad input can get;
- a client that stops mid-request and closes its side gets that empty 400 or nothing.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz_http.conftest import FUZZ, Fuzzed
from tests.fuzz_http.mutations import MESSAGES_BODY
from tests.fuzz_http.wire import (
    Connection,
    RawResponse,
    assert_anthropic_error,
    assert_normal_answer,
    exchange,
    request_head,
)

pytestmark = pytest.mark.e2e

BODY = json.dumps(MESSAGES_BODY).encode()
CHUNKED = ("Transfer-Encoding", "chunked")


def good_request() -> bytes:
    return request_head(body_length=len(BODY)) + BODY


def assert_still_answers(fuzzed: Fuzzed) -> None:
    response = exchange(fuzzed.port, good_request())
    assert response is not None and response.status == 200, response
    assert_normal_answer(response.status, response.headers["content-type"], response.body)


def assert_refused_by_hypercorn(response: RawResponse | None, status: int = 400) -> None:
    """h11 could not parse the request: Hypercorn's own empty answer, and the connection closed."""
    assert response is not None
    assert (response.status, response.body) == (status, b""), response
    assert response.headers["connection"] == "close"


# ---------------------------------------------------------------- answered by aimw

ANSWERED_BY_AIMW = {
    "content-length shorter than the body": (request_head(body_length=len(BODY) - 10) + BODY, 400),
    "chunked and content-length": (request_head(body_length=len(BODY), extra=[CHUNKED]) + BODY, 400),
    "absolute-form target": (request_head(target="http://evil.example/v1/messages", body_length=len(BODY)) + BODY, 400),
    "CONNECT authority-form": (b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    "OPTIONS *": (request_head("OPTIONS", "*"), 400),
    "encoded slash in the path": (request_head(target="/v1%2Fmessages", body_length=len(BODY)) + BODY, 400),
    "HTTP/1.0 without Host": (
        b"POST /v1/messages HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(BODY), BODY),
        403,
    ),
    "a foreign Host": (request_head(body_length=len(BODY), host="evil.example") + BODY, 403),
    "an Origin": (request_head(body_length=len(BODY), extra=[("Origin", "https://evil.example")]) + BODY, 403),
    "unknown method": (request_head("BREW", body_length=len(BODY)) + BODY, 404),
    "GET on the Messages API": (request_head("GET"), 404),
    "WebSocket handshake": (
        b"GET /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        404,
    ),
}


@pytest.mark.parametrize("case", list(ANSWERED_BY_AIMW))
def test_answered_by_aimw_in_anthropic_shape(fuzzed, case):
    data, status = ANSWERED_BY_AIMW[case]
    response = exchange(fuzzed.port, data)
    assert response is not None
    assert_anthropic_error(response.status, response.body, expected_status=status)
    assert_still_answers(fuzzed)


ANSWERED_NORMALLY = {
    "chunked": request_head(extra=[CHUNKED]) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY),
    "chunked, spelled Chunked, in 1-byte chunks": request_head(extra=[("Transfer-Encoding", "Chunked")])
    + b"".join(b"1\r\n%s\r\n" % BODY[i : i + 1] for i in range(len(BODY)))
    + b"0\r\n\r\n",
    "chunk extensions and trailers": request_head(extra=[CHUNKED])
    + b"%x;name=value\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(BODY), BODY),
    "Expect: 100-continue": request_head(body_length=len(BODY), extra=[("Expect", "100-continue")]) + BODY,
    "bare LF line ends": request_head(body_length=len(BODY)).replace(b"\r\n", b"\n") + BODY,
    "a folded header line": request_head(body_length=len(BODY)).replace(b"\r\n\r\n", b"\r\nX-A: 1\r\n 2\r\n\r\n")
    + BODY,
    "a lower-case method": request_head("post", body_length=len(BODY)) + BODY,
    "junk in the query": request_head(target="/v1/messages?beta=true&x=%ff%00&&=", body_length=len(BODY)) + BODY,
    "2,000 headers": request_head(body_length=len(BODY), extra=[(f"x-h{i}", "v") for i in range(2000)]) + BODY,
}


@pytest.mark.parametrize("case", list(ANSWERED_NORMALLY))
def test_unusual_but_valid_requests_are_answered(fuzzed, case):
    response = exchange(fuzzed.port, ANSWERED_NORMALLY[case])
    assert response is not None and response.status == 200, response
    assert_normal_answer(response.status, response.headers["content-type"], response.body)


# ---------------------------------------------------------------- refused by Hypercorn (h11)

REFUSED_BY_HYPERCORN = {
    "content-length not a number": request_head(extra=[("Content-Length", "abc")]) + BODY,
    "negative content-length": request_head(extra=[("Content-Length", "-1")]) + BODY,
    "two different content-lengths": request_head(body_length=len(BODY), extra=[("Content-Length", "3")]) + BODY,
    "a chunk size that is not hex": request_head(extra=[CHUNKED]) + b"zz\r\n0123456789\r\n0\r\n\r\n",
    "a request line that is not one": b"GARBAGE\r\n\r\n",
    "HTTP/0.9": b"GET /\r\n\r\n",
    "a header line without a colon": b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nbroken\r\n\r\n",
    "a space before the colon": request_head(extra=[("X-A ", "1")]),
    "a NUL in a header value": request_head(extra=[("X-A", "a\x00b")]),
    "a non-ASCII target": request_head(target="/v1/\xe9"),
    "two Host headers": request_head(body_length=len(BODY), extra=[("Host", "127.0.0.1")]) + BODY,
    "a WebSocket upgrade without its key": (
        b"GET /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_BY_HYPERCORN))
def test_unparsable_requests_are_refused_by_hypercorn(fuzzed, case):
    assert_refused_by_hypercorn(exchange(fuzzed.port, REFUSED_BY_HYPERCORN[case]))
    assert_still_answers(fuzzed)


@pytest.mark.parametrize("coding", ["gzip", "identity", "gzip, chunked", "chunked, chunked", "xchunked"])
def test_an_unknown_transfer_coding_gets_501(fuzzed, coding):
    """RFC 9112 §6.1: 501 Not Implemented, from h11, before aimw is called."""
    data = request_head(extra=[("Transfer-Encoding", coding)]) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
    assert_refused_by_hypercorn(exchange(fuzzed.port, data), 501)
    assert_still_answers(fuzzed)


# ---------------------------------------------------------------- clients that stop


STOPPED = {
    "content-length longer than the body": request_head(body_length=len(BODY) + 10) + BODY,
    "content-length of 10^20": request_head(extra=[("Content-Length", "1" + "0" * 20)]) + BODY,
    "chunked, stopped inside a chunk": request_head(extra=[CHUNKED]) + b"%x\r\n%s" % (len(BODY), BODY[:100]),
    "chunked, stopped between chunks": request_head(extra=[CHUNKED]) + b"%x\r\n%s\r\n" % (len(BODY), BODY),
    "a chunk of 2^48 bytes announced": request_head(extra=[CHUNKED]) + b"ffffffffffff\r\nabc",
    "the head cut short": request_head(body_length=len(BODY))[:40],
}


@pytest.mark.parametrize("case", list(STOPPED))
def test_a_client_that_stops_mid_request(fuzzed, case):
    """It closes its side: h11 reads end-of-file inside the request, Hypercorn answers its empty
    400 if the client still reads (or nothing, when the app finished first), aimw is told the
    client left."""
    response = exchange(fuzzed.port, STOPPED[case], end_writing=True)
    if response is not None:
        assert_refused_by_hypercorn(response)
    assert_still_answers(fuzzed)


def test_the_connection_is_reused_after_an_error(fuzzed):
    """An Anthropic error leaves the connection usable: the next request on it is answered."""
    with Connection(fuzzed.port) as connection:
        connection.send(request_head(body_length=2) + b"[]")
        first = connection.response()
        assert first is not None
        assert_anthropic_error(first.status, first.body, expected_status=400)
        connection.send(good_request())
        second = connection.response()
        assert second is not None and second.status == 200, second


# ---------------------------------------------------------------- hypothesis

_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"  # RFC 9110 §5.6.2
_VISIBLE = "".join(chr(code) for code in range(0x21, 0x7F))
tokens = st.text(_TCHAR, min_size=1, max_size=20)
targets = st.text(_VISIBLE, min_size=1, max_size=80)
header_values = st.text(_VISIBLE + " \t", max_size=60).map(str.strip)


def assert_answer_to_fuzz(response: RawResponse | None) -> None:
    """An Anthropic error or a normal answer, or Hypercorn's empty 400 for what h11 refused."""
    assert response is not None
    if response.body or response.status == 200:
        assert_normal_answer(response.status, response.headers.get("content-type", ""), response.body)
    else:
        assert response.status == 400 and response.headers.get("connection") == "close", response


@FUZZ
@given(method=tokens, target=targets)
def test_any_method_and_target(fuzzed, method, target):
    assert_answer_to_fuzz(exchange(fuzzed.port, request_head(method, target, body_length=len(BODY)) + BODY))


@FUZZ
@given(headers=st.lists(st.tuples(tokens, header_values), max_size=8))
def test_any_extra_headers(fuzzed, headers):
    assert_answer_to_fuzz(exchange(fuzzed.port, request_head(body_length=len(BODY), extra=headers) + BODY))


@FUZZ
@given(cut=st.integers(min_value=1, max_value=len(good_request()) - 1))
def test_a_request_cut_anywhere(fuzzed, cut):
    """The first ``cut`` bytes of a good request, then the client closes its side (a connection
    closed before its first byte is held until keep_alive_timeout: test_slow_clients)."""
    response = exchange(fuzzed.port, good_request()[:cut], end_writing=True)
    if response is not None:
        assert_refused_by_hypercorn(response)
