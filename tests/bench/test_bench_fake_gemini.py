"""The fake upstream speaking Gemini: the Gemini API and Vertex AI paths, their credentials,
the token endpoint a service account is sent to, and answers that aimw's Gemini translator
turns into what the bench's validator expects."""

from __future__ import annotations

import json

import anyio
import google.auth.exceptions
import google.auth.transport.requests
import httpx
import pytest
from google.oauth2 import service_account

from aimw.translators.gemini.response import response_to_anthropic
from aimw.translators.gemini.stream import GeminiStreamTranslator
from bench import gemini
from bench.answer import Answer
from bench.fake_upstream import EncodedResponses, start_fake_upstream
from bench.http11 import ChunkedDecoder
from bench.validate import check_anthropic_message, check_anthropic_stream, parse_sse
from tests.shared_data import KONG

CHUNKS = 9
ANSWER = Answer.of(CHUNKS)
MODEL_PATH = "/v1beta/models/gemini-2.5-flash"
VERTEX_PATH = f"/v1/projects/{gemini.PROJECT}/locations/{gemini.LOCATION}/publishers/google/models/gemini-2.5-flash"
KEY = {"x-goog-api-key": gemini.API_KEY}
BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
REAL_STREAM = KONG / "gemini" / "unit" / "streaming-chunk-formats" / "gemini" / "expected-output.json"
pytestmark = pytest.mark.anyio


@pytest.fixture
async def upstream():
    server, stats = await start_fake_upstream(chunks=CHUNKS)
    port = server.sockets[0].getsockname()[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        yield client, stats
    server.close()
    await server.wait_closed()


def translated(body: bytes, pieces: int = 1) -> bytes:
    """``body`` through aimw's Gemini stream translator, fed in ``pieces`` parts."""
    translator = GeminiStreamTranslator("gemini-2.5-flash")
    size = -(-len(body) // pieces)
    out = b"".join(translator.feed(body[start : start + size]) for start in range(0, len(body), size))
    return out + translator.finish()


async def test_a_gemini_api_stream_is_one_sse_event_per_text_chunk(upstream):
    client, stats = upstream
    response = await client.post(f"{MODEL_PATH}:streamGenerateContent?alt=sse", json=BODY, headers=KEY)
    assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
    assert response.content == b"".join(gemini.stream_events(ANSWER))
    events = [json.loads(event.data) for event in parse_sse(response.content)]
    assert len(events) == CHUNKS  # as many as the OpenAI stream's text chunks
    assert "".join(event["candidates"][0]["content"]["parts"][0]["text"] for event in events) == ANSWER.text
    assert [event["candidates"][0].get("finishReason") for event in events] == [None] * (CHUNKS - 1) + ["STOP"]
    counts = [event["usageMetadata"]["candidatesTokenCount"] for event in events]
    assert counts == sorted(counts) and counts[-1] == ANSWER.completion_tokens  # cumulative, as Gemini's
    assert events[-1]["usageMetadata"]["promptTokenCount"] == ANSWER.prompt_tokens
    assert response.content.count(b"\r\n\r\n") == CHUNKS  # Google ends its events with CRLF blank lines
    assert (stats.gemini_streams, stats.streams, stats.unauthenticated) == (1, 0, 0)


async def test_translated_by_aimw_the_stream_is_what_the_validator_expects(upstream):
    client, _ = upstream
    response = await client.post(f"{MODEL_PATH}:streamGenerateContent?alt=sse", json=BODY, headers=KEY)
    for pieces in (1, 7, len(response.content)):  # whole, in pieces, byte by byte
        assert check_anthropic_stream(translated(response.content, pieces), ANSWER) == []


async def test_the_stream_has_the_shape_of_a_real_gemini_2_5_capture():
    real = [json.loads(event["data"]) for event in json.loads(REAL_STREAM.read_text()) if event["data"] != "[DONE]"]
    fake = [json.loads(event.data) for event in parse_sse(b"".join(gemini.stream_events(ANSWER)))]
    assert {key for event in fake for key in event} == {key for event in real for key in event}
    real_candidate_keys = {key for event in real for key in event["candidates"][0]}
    assert {key for event in fake for key in event["candidates"][0]} == real_candidate_keys
    real_usage_keys = {key for event in real for key in event["usageMetadata"]}
    assert {key for event in fake for key in event["usageMetadata"]} <= real_usage_keys


async def test_a_gemini_api_call_without_streaming_gets_one_response(upstream):
    client, stats = upstream
    response = await client.post(f"{MODEL_PATH}:generateContent", json=BODY, headers=KEY)
    assert response.status_code == 200 and response.content == gemini.response_body(ANSWER)
    answer = response_to_anthropic(response.content, "gemini-2.5-flash")
    assert check_anthropic_message(answer.body, ANSWER) == []
    assert stats.gemini_responses == 1


async def test_stream_frames_are_one_chunk_per_event():
    head, *frames = EncodedResponses.of(ANSWER).gemini_stream_writes
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in head
    decoder = ChunkedDecoder()
    assert [decoder.feed(frame) for frame in frames] == [[event] for event in gemini.stream_events(ANSWER)]
    assert decoder.done


async def test_the_gemini_api_refuses_a_wrong_or_missing_key_and_a_bearer(upstream):
    client, stats = upstream
    for headers in ({"x-goog-api-key": "AIza-wrong"}, {}, {"authorization": "Bearer ya29.bench-1"}):
        response = await client.post(f"{MODEL_PATH}:streamGenerateContent?alt=sse", json=BODY, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    assert (stats.unauthenticated, stats.gemini_streams) == (3, 0)


async def test_a_stream_without_alt_sse_and_other_google_paths_are_refused(upstream):
    client, stats = upstream
    no_sse = await client.post(f"{MODEL_PATH}:streamGenerateContent", json=BODY, headers=KEY)
    assert no_sse.status_code == 400 and no_sse.json()["error"]["status"] == "INVALID_ARGUMENT"
    for path in (f"{MODEL_PATH}:countTokens", "/v1beta/models:generateContent", f"/v1{MODEL_PATH[5:]}:generateContent"):
        assert (await client.post(path, json=BODY, headers=KEY)).status_code == 404, path
    assert (stats.bad_requests, stats.not_found) == (1, 3)


def test_paths_name_their_service_and_method():
    assert gemini.gemini_method(f"{MODEL_PATH}:streamGenerateContent".encode()) == (True, True)
    assert gemini.gemini_method(f"{VERTEX_PATH}:generateContent".encode()) == (False, False)
    assert gemini.gemini_method(b"/v1/chat/completions") is None
    assert gemini.gemini_method(f"{VERTEX_PATH}/extra:generateContent".encode()) is None


def _credentials(token_uri: str, email: str = gemini.SERVICE_ACCOUNT_EMAIL) -> service_account.Credentials:
    info = {**gemini.service_account_key(token_uri), "client_email": email}
    return service_account.Credentials.from_service_account_info(info, scopes=[gemini.CLOUD_PLATFORM_SCOPE])


async def test_vertex_takes_the_token_google_auth_got_from_the_token_endpoint(upstream):
    client, stats = upstream
    vertex_stream = f"{VERTEX_PATH}:streamGenerateContent?alt=sse"
    before = await client.post(vertex_stream, json=BODY, headers={"authorization": "Bearer ya29.bench-1"})
    assert before.status_code == 401  # no token issued yet
    credentials = _credentials(f"{client.base_url}{gemini.TOKEN_PATH}")
    await anyio.to_thread.run_sync(credentials.refresh, google.auth.transport.requests.Request())
    assert credentials.valid and credentials.token == "ya29.bench-1"
    response = await client.post(vertex_stream, json=BODY, headers={"authorization": f"Bearer {credentials.token}"})
    assert response.status_code == 200 and check_anthropic_stream(translated(response.content), ANSWER) == []
    key_instead = await client.post(vertex_stream, json=BODY, headers=KEY)  # Vertex AI: the token, not the key
    assert key_instead.status_code == 401
    stats_answer = (await client.get("/bench/stats")).json()
    assert stats_answer["token_requests"] == stats.token_requests == 1 and stats_answer["gemini_streams"] == 1
    assert stats_answer["unauthenticated"] == stats.unauthenticated == 2


async def test_the_token_endpoint_refuses_grants_that_are_not_the_bench_service_accounts(upstream):
    client, stats = upstream
    stranger = _credentials(f"{client.base_url}{gemini.TOKEN_PATH}", email="someone@else.iam.gserviceaccount.com")
    with pytest.raises(google.auth.exceptions.RefreshError, match="iss"):
        await anyio.to_thread.run_sync(stranger.refresh, google.auth.transport.requests.Request())
    password = await client.post(gemini.TOKEN_PATH, data={"grant_type": "password", "username": "u"})
    assert password.status_code == 400 and password.json()["error"] == "invalid_grant"
    assert (stats.token_requests, stats.token_refusals) == (0, 2)


def test_the_service_account_key_is_one_aimw_accepts():
    from aimw.providers.vertex import service_account_info

    key = gemini.service_account_key("http://127.0.0.1:1/oauth2/token")
    assert service_account_info(json.dumps(key), "GEMINI_API_KEY")["token_uri"] == "http://127.0.0.1:1/oauth2/token"
    assert key["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
