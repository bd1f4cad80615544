"""Fuzzed request bodies over real HTTP (httpx) to each gateway (recipes.huggingface,
recipes.anthropic, recipes.config): whatever the body, the answer is a 4xx in Anthropic's error
shape or a normal 200 answer (a Message, a well-formed stream, a count), never a 5xx, and the
gateway stays up without a traceback (the ``fuzzed`` fixture checks its output).

- a value of the wrong JSON type at every path of a real Claude Code request, and every path
  removed (the whole sweep: each path gets one wrong kind in CI, all of them with AIMW_FUZZ=long);
- hypothesis: any JSON value at any path, any JSON document, any bytes, invalid UTF-8 inside a
  string, duplicate keys;
- nesting 10,000 levels deep in each part of the request; bodies of exactly the size limit
  (answered), one byte over it and 20 MiB (413 request_too_large); content-type spellings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.e2e.harness import CLIENT_KEY
from tests.fuzz_http.conftest import FUZZ, LONG, Fuzzed
from tests.fuzz_http.mutations import (
    COUNT_TOKENS_BODY,
    MESSAGES_BODY,
    VALUE_OF_KIND,
    at,
    json_paths,
    json_values,
    removed,
    replaced,
    with_duplicate_key,
    with_raw,
    wrong_kinds,
)
from tests.fuzz_http.wire import assert_anthropic_error, assert_normal_answer, exchange, request_head

pytestmark = pytest.mark.e2e

MESSAGES, COUNT_TOKENS = "/v1/messages", "/v1/messages/count_tokens"
MAX_BODY_SIZE = 8 * 1024 * 1024  # bytes: AIMW_MAX_REQUEST_BODY_SIZE's default, which the gateways run with
MESSAGE_PATHS = list(json_paths(MESSAGES_BODY))
STRING_PATHS = [path for path in MESSAGE_PATHS if isinstance(at(MESSAGES_BODY, path), str)]
OBJECT_PATHS = [(), *(path for path in MESSAGE_PATHS if isinstance(at(MESSAGES_BODY, path), dict))]
# invalid UTF-8 (RFC 3629 §3): a stray continuation byte, a truncated sequence, an encoded
# surrogate, a code point past U+10FFFF, an overlong "/", bytes that never occur
INVALID_UTF8 = (b"\x80", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xff\xfe")


@pytest.fixture
def client(fuzzed: Fuzzed) -> Iterator[httpx.Client]:
    """An HTTP client of ``fuzzed`` sending Claude Code's headers."""
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
    with httpx.Client(base_url=fuzzed.gateway.url, headers=headers, trust_env=False, timeout=30.0) as http:
        yield http


def post(client: httpx.Client, body: bytes | object, path: str = MESSAGES) -> httpx.Response:
    """POST ``body`` (bytes as they are, anything else as JSON) and check the answer's property."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path, content=content)
    assert_normal_answer(response.status_code, response.headers.get("content-type", ""), response.content)
    return response


def mutated(document: object) -> Iterator[tuple[str, object]]:
    """``(what changed, document changed)``: at each path of ``document``, a value of another
    JSON kind (one per path, rotating through the kinds; all of them with AIMW_FUZZ=long),
    then the path removed."""
    for index, path in enumerate(json_paths(document)):
        kinds = wrong_kinds(at(document, path))
        for name in kinds if LONG else [kinds[index % len(kinds)]]:
            yield f"{path} set to {VALUE_OF_KIND[name]!r}", replaced(document, path, VALUE_OF_KIND[name])
        yield f"{path} removed", removed(document, path)


def sweep(client: httpx.Client, document: object, path: str) -> None:
    """Every change of :func:`mutated` posted; a failure names the change."""
    for change, body in mutated(document):
        try:
            post(client, body, path)
        except AssertionError as failure:
            raise AssertionError(f"with {change}: {failure}") from None


# ---------------------------------------------------------------- the sweep


def test_wrong_type_at_every_field(client):
    sweep(client, MESSAGES_BODY, MESSAGES)


def test_wrong_type_at_every_count_tokens_field(client):
    sweep(client, COUNT_TOKENS_BODY, COUNT_TOKENS)


def test_the_unchanged_request_is_answered(client):
    """The sweep's control: the CLI's own request gets a whole stream."""
    assert post(client, MESSAGES_BODY).status_code == 200
    assert post(client, COUNT_TOKENS_BODY, COUNT_TOKENS).status_code == 200


# ---------------------------------------------------------------- hypothesis


@FUZZ
@given(data=st.data())
def test_any_value_at_any_field(client, data):
    path = data.draw(st.sampled_from(MESSAGE_PATHS), label="path")
    post(client, replaced(MESSAGES_BODY, path, data.draw(json_values, label="value")))


@FUZZ
@given(document=json_values)
def test_any_json_document(client, document):
    post(client, document)


@FUZZ
@given(body=st.binary(max_size=4096))
def test_any_bytes(client, body):
    assert post(client, body).status_code == 400


@FUZZ
@given(data=st.data())
def test_invalid_utf8_in_a_string(client, data):
    path = data.draw(st.sampled_from(STRING_PATHS), label="path")
    raw = b'"' + data.draw(st.sampled_from(INVALID_UTF8), label="bytes") + b'"'
    post(client, with_raw(MESSAGES_BODY, path, raw))


def test_invalid_utf8_in_a_tool_use_input(client):
    """The input of a tool_use is kept as raw JSON (msgspec.Raw, never validated as UTF-8):
    a stray byte there is the client's mistake (RFC 8259 §8.1: JSON text is UTF-8)."""
    body = with_raw(MESSAGES_BODY, ("messages", 1, "content", 1, "input", "command"), b'"echo \x80"')
    assert post(client, body).status_code == 400


@FUZZ
@given(data=st.data())
def test_duplicate_keys(client, data):
    path = data.draw(st.sampled_from(OBJECT_PATHS), label="object")
    key = data.draw(st.sampled_from(sorted(at(MESSAGES_BODY, path))), label="key")
    value = data.draw(json_values, label="value")
    post(client, with_duplicate_key(MESSAGES_BODY, path, key, value, first=data.draw(st.booleans(), label="first")))


# ---------------------------------------------------------------- shapes at the limits

DEPTH = 10_000
NESTING_PLACES = {
    "the body": (),
    "a message's content": ("messages", 0, "content"),
    "a tool_use input": ("messages", 1, "content", 1, "input"),
    "a tool_result content": ("messages", 2, "content", 0, "content"),
    "the system prompt": ("system",),
    "a tool's input_schema": ("tools", 0, "input_schema"),
    "metadata": ("metadata",),
}


@pytest.mark.parametrize("opening", [b"[", b'{"a":'], ids=["arrays", "objects"])
@pytest.mark.parametrize("place", list(NESTING_PLACES))
def test_deep_nesting_is_refused(client, fuzzed, place, opening):
    closing = b"]" if opening == b"[" else b"}"
    nested = opening * DEPTH + b"1" + closing * DEPTH
    path = NESTING_PLACES[place]
    body = with_raw(MESSAGES_BODY, path, nested) if path else nested
    before = [len(fake.requests) for fake in fuzzed.fakes]
    response = post(client, body)
    error = assert_anthropic_error(response.status_code, response.content, expected_status=400)
    assert error["type"] == "invalid_request_error"
    assert [len(fake.requests) for fake in fuzzed.fakes] == before, "a body nested 10,000 deep reached a provider"


def _sized(size: int) -> bytes:
    """The CLI's request grown to exactly ``size`` bytes by its first message's text."""
    body = json.dumps(replaced(MESSAGES_BODY, ("messages", 0, "content"), "")).encode()
    return body.replace(b'"content": ""', b'"content": "' + b"a" * (size - len(body)) + b'"', 1)


def test_a_body_of_exactly_the_limit_is_answered(client):
    body = _sized(MAX_BODY_SIZE)
    assert len(body) == MAX_BODY_SIZE
    assert post(client, body).status_code == 200


@pytest.mark.parametrize("size", [MAX_BODY_SIZE + 1, 20 * 1024 * 1024], ids=["one byte over", "20 MiB"])
def test_a_body_over_the_limit_is_refused(client, fuzzed, size):
    """413 request_too_large, read by the client even when the gateway answers (and closes)
    while the client is still sending."""
    before = [len(fake.requests) for fake in fuzzed.fakes]
    response = post(client, _sized(size))
    error = assert_anthropic_error(response.status_code, response.content, expected_status=413)
    assert error["type"] == "request_too_large"
    assert [len(fake.requests) for fake in fuzzed.fakes] == before


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/json;charset=UTF-8", True),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("application/jsonp", False),
        ("", False),
        (None, False),
    ],
)
def test_content_types(fuzzed, content_type, accepted):
    """Only JSON is taken (ClientGuard: a browser's "simple" request is refused with 403)."""
    body = json.dumps(MESSAGES_BODY).encode()
    response = exchange(fuzzed.port, request_head(body_length=len(body), content_type=content_type) + body)
    assert response is not None
    if accepted:
        assert response.status == 200, response.body[:500]
        assert_normal_answer(response.status, response.headers["content-type"], response.body)
    else:
        assert_anthropic_error(response.status, response.body, expected_status=403)
