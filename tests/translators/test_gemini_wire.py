"""Gemini, the WireFormat object: the path and query come from GeminiOptions, the model
and whether the client streams (never from the client's path or query); Google errors
become Anthropic errors."""

from __future__ import annotations

import json

import pytest

from aimw.errors import GatewayError
from aimw.translators import gemini
from aimw.translators.anthropic.messages import decode_request
from aimw.translators.wire import AnthropicCall, UpstreamRequest

MODEL = "gemini-2.5-flash"


def call(*, stream: bool, model: str = MODEL, path: str = "/client/prefix/v1/messages") -> AnthropicCall:
    body = json.dumps(
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "stream": stream,
            "messages": [{"role": "user", "content": "Hi"}],
        }
    ).encode()
    return AnthropicCall(body, decode_request(body), model, stream, path, b"beta=true")


def test_the_format_says_what_it_is() -> None:
    wire = gemini.Gemini()
    assert (wire.name, wire.passthrough, wire.parses_request) == ("gemini", False, True)
    assert wire.options == gemini.GeminiOptions()
    assert "/v1beta/models/{model}" in repr(wire)


@pytest.mark.parametrize(
    ("stream", "path", "query"),
    [
        (False, "/v1beta/models/gemini-2.5-flash:generateContent", b""),
        (True, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", b"alt=sse"),
    ],
)
def test_gemini_api_paths(stream: bool, path: str, query: bytes) -> None:
    upstream = gemini.Gemini().build_request(call(stream=stream))
    assert isinstance(upstream, UpstreamRequest)
    assert (upstream.path, upstream.query) == (path, query)
    assert upstream.body == gemini.request_from_anthropic(decode_request(call(stream=stream).body))
    assert "model" not in json.loads(upstream.body) and "stream" not in json.loads(upstream.body)


@pytest.mark.parametrize("stream", [False, True])
def test_vertex_ai_paths(stream: bool) -> None:
    wire = gemini.Gemini(gemini.GeminiOptions.vertex("my-project", "us-central1"))
    upstream = wire.build_request(call(stream=stream))
    method = ":streamGenerateContent" if stream else ":generateContent"
    assert (
        upstream.path
        == f"/v1/projects/my-project/locations/us-central1/publishers/google/models/gemini-2.5-flash{method}"
    )
    assert upstream.query == (b"alt=sse" if stream else b"")


def test_the_model_and_options_are_percent_encoded_into_one_segment() -> None:
    wire = gemini.Gemini(gemini.GeminiOptions.vertex("p/../x", "us central1"))
    upstream = wire.build_request(call(stream=False, model="../../v1/other?key=1#x@001"))
    assert upstream.path == (
        "/v1/projects/p%2F..%2Fx/locations/us%20central1/publishers/google/models/"
        "..%2F..%2Fv1%2Fother%3Fkey%3D1%23x@001:generateContent"
    )
    assert upstream.query == b""


@pytest.mark.parametrize("path", ["/v1/messages", "/anything/v1/messages"])
def test_the_clients_path_and_query_never_reach_the_provider(path: str) -> None:
    upstream = gemini.Gemini().build_request(call(stream=True, path=path))
    assert upstream.path.startswith("/v1beta/models/") and b"beta" not in upstream.query


@pytest.mark.parametrize(
    "options",
    [
        gemini.GeminiOptions(path="/v1beta/models/fixed"),
        gemini.GeminiOptions(path="/v1beta/{model}/{model}"),
        gemini.GeminiOptions(path="/v1/{tenant}/{model}"),
        gemini.GeminiOptions(path=gemini.VERTEX_AI_PATH, project="p"),
    ],
)
def test_options_that_name_no_usable_path_are_refused_at_assembly(options: gemini.GeminiOptions) -> None:
    with pytest.raises(ValueError, match="Gemini path"):
        gemini.Gemini(options)


def test_build_request_needs_the_parsed_request_and_a_model() -> None:
    unparsed = AnthropicCall(b"{}", None, MODEL, False, "/v1/messages", b"")
    with pytest.raises(GatewayError) as caught:
        gemini.Gemini().build_request(unparsed)
    assert caught.value.status == 500
    with pytest.raises(GatewayError) as caught:
        gemini.Gemini().build_request(call(stream=False, model=""))
    assert caught.value.status == 400


def test_answers_and_streams_are_the_modules() -> None:
    wire = gemini.Gemini()
    body = json.dumps({"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}).encode()
    assert json.loads(wire.response_to_anthropic(body, MODEL).body)["content"] == [{"type": "text", "text": "hi"}]
    stream = wire.new_stream(MODEL)
    assert isinstance(stream, gemini.GeminiStreamTranslator)
    assert b'"model":"gemini-2.5-flash"' in stream.feed(b'data: {"candidates":[]}\n\n')


# ---------------------------------------------------------------- errors


def google(code: int, status: str, message: str, *details: dict) -> bytes:
    error: dict = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("http", "status", "client", "error_type"),
    [
        (400, "INVALID_ARGUMENT", 400, "invalid_request_error"),
        (400, "FAILED_PRECONDITION", 400, "invalid_request_error"),
        (401, "UNAUTHENTICATED", 401, "authentication_error"),
        (403, "PERMISSION_DENIED", 403, "permission_error"),
        (404, "NOT_FOUND", 404, "not_found_error"),
        (429, "RESOURCE_EXHAUSTED", 429, "rate_limit_error"),
        (500, "INTERNAL", 500, "api_error"),
        (503, "UNAVAILABLE", 529, "overloaded_error"),
        (504, "DEADLINE_EXCEEDED", 504, "timeout_error"),
        (409, "ABORTED", 409, "invalid_request_error"),
    ],
)
def test_google_errors(http: int, status: str, client: int, error_type: str) -> None:
    got_status, body = gemini.Gemini().error_to_anthropic(http, google(http, status, "Google says why."))
    assert got_status == client
    assert json.loads(body) == {
        "type": "error",
        "error": {"type": error_type, "message": f"{status}: Google says why."},
    }


def test_an_error_array_body_and_retry_info() -> None:
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36.2s"}
    quota = {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "m"}]}
    body = b"[" + google(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", quota, retry) + b"]"
    status, answer = gemini.error_to_anthropic(429, body)
    assert status == 429
    assert json.loads(answer)["error"] == {
        "type": "rate_limit_error",
        "message": "RESOURCE_EXHAUSTED: You exceeded your current quota. (retry after 37 s)",
    }
    assert gemini.retry_after(429, body) == 37
    assert gemini.retry_after(429, google(429, "RESOURCE_EXHAUSTED", "no detail")) is None
    assert gemini.retry_after(200, body) is None


def test_a_body_that_is_not_googles_is_mapped_by_its_status() -> None:
    status, body = gemini.error_to_anthropic(503, b"<html>Service Unavailable</html>")
    assert status == 529 and json.loads(body)["error"]["type"] == "overloaded_error"
    status, body = gemini.error_to_anthropic(502, b'{"error": {"message": "no status here"}}')
    assert status == 502 and json.loads(body)["error"] == {"type": "api_error", "message": "no status here"}


def test_secrets_in_google_messages_are_redacted() -> None:
    _, body = gemini.error_to_anthropic(
        400, google(400, "INVALID_ARGUMENT", "API key AIzaSyA1234567890abcdefgh not valid")
    )
    assert b"AIzaSy" not in body and b"[REDACTED]" in body
